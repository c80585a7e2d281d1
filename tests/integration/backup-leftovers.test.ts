/**
 * Plaintext copies of the database a crashed backup, restore or restore
 * check left in the data dir are removed at server start and by the sweep
 * the scheduled backup runs first: exactly the names Candor makes, not
 * written for 10 minutes and held open by no process; one log line each,
 * naming the entry only. A file or folder of a similar name that is not
 * Candor's stays, and so does a copy a live run still has open or has just
 * written.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LEFTOVER_AGE_MS, sweepLeftovers } from '../../src/core/backup/leftovers.ts';
import { startServer, tempDir } from '../helpers/server.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A data dir with a file (or folder) at each name, written `ageMs` ago. */
function plant(dataDir: string, entries: Record<string, 'file' | 'folder'>, ageMs: number): void {
  const when = new Date(Date.now() - ageMs);
  for (const [name, kind] of Object.entries(entries)) {
    const path = join(dataDir, name);
    if (kind === 'folder') {
      mkdirSync(path);
      writeFileSync(join(path, 'candor.db'), 'SQLite format 3\0 plaintext rows');
      utimesSync(join(path, 'candor.db'), when, when);
    } else {
      writeFileSync(path, 'SQLite format 3\0 plaintext rows');
    }
    utimesSync(path, when, when);
  }
}

const OLD = LEFTOVER_AGE_MS + 60_000;
const candors = () => ({
  [`.candor-backup-${randomUUID()}.db`]: 'file' as const,
  [`.candor-backup-${randomUUID()}.db-wal`]: 'file' as const,
  [`.candor-restore-${randomUUID()}.db`]: 'file' as const,
  [`.candor-restore-${randomUUID()}.db-journal`]: 'file' as const,
  '.candor-restore-check-aZ09xQ': 'folder' as const,
  '.candor-upload-Qw3rT9': 'folder' as const,
});
/** Names like Candor's that Candor does not make (or of a kind it does not make): never touched. */
const notCandors = () => ({
  '.candor-backup-old.db': 'file' as const,
  [`candor-backup-${randomUUID()}.db`]: 'file' as const,
  [`.candor-backup-${randomUUID()}.db.keep`]: 'file' as const,
  [`.candor-backup-${randomUUID().toUpperCase()}.db`]: 'file' as const,
  '.candor-restore-check-mine': 'folder' as const,
  '.candor-restore-check-aZ09xQ7': 'folder' as const,
  '.candor-upload-mine': 'folder' as const,
  'candor-upload-Qw3rT9': 'folder' as const,
  [`.candor-restore-${randomUUID()}.db`]: 'folder' as const,
  'candor.db': 'file' as const,
});

describe('sweepLeftovers', () => {
  it('removes the copies Candor makes that nothing holds and nobody wrote for 10 minutes, one line each, and nothing else', () => {
    const dataDir = tempDir('candor-leftovers-');
    dirs.push(dataDir);
    const ours = candors();
    const theirs = notCandors();
    plant(dataDir, { ...ours, ...theirs }, OLD);
    // A symbolic link with a name Candor uses: Candor never makes one, so it is not followed nor removed.
    const elsewhere = tempDir('candor-leftovers-target-');
    dirs.push(elsewhere);
    writeFileSync(join(elsewhere, 'precious.db'), 'keep me');
    const link = `.candor-backup-${randomUUID()}.db`;
    symlinkSync(join(elsewhere, 'precious.db'), join(dataDir, link));

    const logs: string[] = [];
    const removed = sweepLeftovers(dataDir, (line) => logs.push(line));

    expect(removed.sort()).toEqual(Object.keys(ours).sort());
    expect(readdirSync(dataDir).sort()).toEqual([...Object.keys(theirs), link].sort());
    expect(existsSync(join(elsewhere, 'precious.db'))).toBe(true);
    expect(logs.sort()).toEqual(
      Object.keys(ours)
        .map((name) => `removed a plaintext copy left by a run that did not finish: ${name}`)
        .sort(),
    );
    for (const line of logs) expect(line).not.toContain(dataDir);
  });

  it('leaves a copy written in the last 10 minutes: a live run between two steps', () => {
    const dataDir = tempDir('candor-leftovers-');
    dirs.push(dataDir);
    const recent = candors();
    plant(dataDir, recent, LEFTOVER_AGE_MS - 60_000);
    // A folder whose own time is old but whose file inside was just written is recent.
    mkdirSync(join(dataDir, '.candor-restore-check-Fresh1'));
    writeFileSync(join(dataDir, '.candor-restore-check-Fresh1', 'candor.db'), 'being decrypted');
    const old = new Date(Date.now() - OLD);
    utimesSync(join(dataDir, '.candor-restore-check-Fresh1'), old, old);

    expect(sweepLeftovers(dataDir, () => undefined)).toEqual([]);
    expect(readdirSync(dataDir).sort()).toEqual([...Object.keys(recent), '.candor-restore-check-Fresh1'].sort());
  });

  it.skipIf(!existsSync('/proc/self/fd'))('leaves an old copy a live process holds open (or holds a file in), until it lets go', () => {
    const dataDir = tempDir('candor-leftovers-');
    dirs.push(dataDir);
    const snapshot = `.candor-backup-${randomUUID()}.db`;
    plant(dataDir, { [snapshot]: 'file', '.candor-restore-check-Held01': 'folder' }, OLD);
    // This process stands for a backup still encrypting its snapshot and a check still verifying its copy.
    const held = [openSync(join(dataDir, snapshot), 'r'), openSync(join(dataDir, '.candor-restore-check-Held01', 'candor.db'), 'r')];
    try {
      expect(sweepLeftovers(dataDir, () => undefined)).toEqual([]);
      expect(readdirSync(dataDir).sort()).toEqual([snapshot, '.candor-restore-check-Held01'].sort());
    } finally {
      for (const fd of held) closeSync(fd);
    }
    expect(sweepLeftovers(dataDir, () => undefined).sort()).toEqual([snapshot, '.candor-restore-check-Held01'].sort());
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe('at server start', () => {
  it('the leftovers are removed before it serves, and what is not Candor’s stays', async () => {
    const dataDir = tempDir('candor-leftovers-server-');
    dirs.push(dataDir);
    const ours = candors();
    const theirs = notCandors();
    delete (theirs as Record<string, string>)['candor.db'];
    plant(dataDir, { ...ours, ...theirs }, OLD);
    const server = await startServer({ dataDir });
    try {
      for (const name of Object.keys(ours)) {
        expect(server.output()).toContain(`[candor] removed a plaintext copy left by a run that did not finish: ${name}\n`);
        expect(existsSync(join(dataDir, name)), name).toBe(false);
      }
      for (const name of Object.keys(theirs)) expect(existsSync(join(dataDir, name)), name).toBe(true);
    } finally {
      await server.stop();
    }
  }, 180_000);
});
