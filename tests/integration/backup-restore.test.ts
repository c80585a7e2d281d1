/**
 * `candor backup` and `candor restore` against a real server in the middle
 * of a 10,000-recipient fan-out through the fake Resend: the backup is a
 * consistent snapshot taken while deliveries are being recorded, holds
 * nothing readable without the key, and restores into a fresh data dir with
 * the audit chain intact; `backup --check` proves it restores without
 * touching the live database. Wrong keys, altered, cut or foreign files and
 * a database still in use are refused with one line; a damaged database is
 * replaced and kept aside.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { addSubscribers, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { enqueueNotification } from '../helpers/outbox-on-connection.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';

const COUNT = 10_000;
const address = (i: number) => `backup${i}@customer.example`;
const KEY_HEX = (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex');

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process, awaited without blocking this process (the fake Resend lives here). */
function candor(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const child = spawn(process.execPath, ['--max-semi-space-size=4', join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dataDir,
      CANDOR_DATA_DIR: dataDir,
      CANDOR_SECRET: TEST_KEYS.secret,
      CANDOR_ENCRYPTION_KEY: KEY_HEX,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** A refusal is one line on stderr, without a stack trace. */
function refusal(run: CliRun): string {
  expect(run.code).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).not.toMatch(/\n\s+at /);
  const lines = run.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0] ?? '';
}

async function until(predicate: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let resend: ResendFake;
let server: RunningServer;
let db: Db;
let notificationId: number;
const dataDir = tempDir('candor-backup-');
const restoredDir = tempDir('candor-restored-');
const scratch = tempDir('candor-backup-files-');
const backupFile = join(scratch, 'candor.backup');
let sentBefore = 0;
let sentAfter = 0;

const count = (on: Db, sql: string, ...params: unknown[]) => (on.$client.prepare(sql).get(...params) as { n: number }).n;

beforeAll(async () => {
  resend = await startFakeResend();
  // Slow enough answers that the fan-out is still being recorded while the backup runs.
  resend.latency(600);
  db = openDatabase(join(dataDir, 'candor.db'));
  addSubscribers(db, TEST_KEYS, { count: COUNT, channel: 'email', address });
  ({ notificationId } = await enqueueNotification(
    db,
    { kind: 'incident.update', title: 'API degraded', content: emailContent(), audience: { kind: 'topic', topic: 'incidents' } },
    new Date(),
  ));
  const port = await freePort();
  server = await startServer({ port, dataDir, env: providerEnv({ port, resend, testKeys: true }) });
});

afterAll(async () => {
  db?.$client.close();
  await server?.stop();
  await resend?.close();
  for (const dir of [dataDir, restoredDir, scratch]) rmSync(dir, { recursive: true, force: true });
});

describe('candor backup', () => {
  it('takes a consistent, encrypted snapshot while a 10,000-recipient fan-out is being sent', async () => {
    await until(() => resend.emails.length >= 1000, 'the fan-out to be under way');
    sentBefore = count(db, `SELECT count(*) AS n FROM deliveries WHERE status = 'sent'`);
    const run = await candor(dataDir, ['backup', backupFile]);
    sentAfter = count(db, `SELECT count(*) AS n FROM deliveries WHERE status = 'sent'`);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^backup written: .*candor\.backup \(\d+(\.\d)? (KiB|MiB), encrypted with key [0-9a-f]{8}, schema \d{4}_\w+\)/,
    );
    // the server kept writing while the snapshot was taken
    expect(sentAfter).toBeGreaterThan(sentBefore);
    expect(sentAfter).toBeLessThan(COUNT);

    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    const raw = readFileSync(backupFile);
    expect(raw.subarray(0, 16).toString()).toBe('CANDOR-BACKUP 1\n');
    expect(raw.includes('SQLite format 3')).toBe(false);
    const sealed = (db.$client.prepare('SELECT address FROM recipients ORDER BY id LIMIT 1').get() as { address: string }).address;
    for (const clear of [address(0), address(COUNT - 1), '@customer.example', sealed, 'API degraded', 'audit_log']) {
      expect(raw.includes(clear), clear).toBe(false);
    }
    // the plaintext snapshot beside the database is gone
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.candor-'))).toEqual([]);
    expect(readdirSync(scratch)).toEqual(['candor.backup']);
    expect(db.$client.prepare(`SELECT action, target FROM audit_log WHERE action = 'backup.created'`).all()).toEqual([
      { action: 'backup.created', target: 'backup:candor.backup' },
    ]);
  });
});

describe('candor backup --check', () => {
  it('restores the file into a scratch copy and says so in one line; a tampered file fails with the reason, exit 1', async () => {
    const good = await candor(dataDir, ['backup', '--check', backupFile]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(
      /^restore check passed: .*candor\.backup \(made [^)]+\) restored in \d+ ms: integrity ok, schema \d{4}_\w+, audit chain verified \(\d+ entries\)\n$/,
    );
    const tampered = join(scratch, 'tampered-check.backup');
    copyFileSync(backupFile, tampered);
    const fd = openSync(tampered, 'r+');
    const at = Math.floor(statSync(tampered).size / 3);
    writeSync(fd, Buffer.from([(readFileSync(backupFile)[at] ?? 0) ^ 0x10]), 0, 1, at);
    closeSync(fd);
    const bad = await candor(dataDir, ['backup', '--check', tampered]);
    expect(refusal(bad)).toMatch(
      /^candor: restore check FAILED: tampered-check\.backup is damaged or was altered: its content does not authenticate \(chunk \d+, byte \d+\); it cannot be restored$/,
    );
    rmSync(tampered);
    // the scratch copies are gone, and the live database was not touched
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.candor-') || f.includes('before-restore'))).toEqual([]);
    expect(count(db, 'SELECT count(*) AS n FROM recipients')).toBe(COUNT);
  });
});

describe('candor restore', () => {
  it('brings the snapshot back into a fresh data dir: consistent counts, intact audit chain', async () => {
    const run = await candor(restoredDir, ['restore', backupFile]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/restored .*candor\.backup \(made .*, key [0-9a-f]{8}\) into .*candor\.db/);
    expect(run.stdout).toMatch(/audit log verified: \d+ entries, chain intact/);
    expect(run.stdout).not.toContain('kept as');

    const restored = openDatabase(join(restoredDir, 'candor.db'));
    try {
      expect(restored.$client.pragma('integrity_check')).toEqual([{ integrity_check: 'ok' }]);
      expect(restored.$client.pragma('foreign_key_check')).toEqual([]);
      expect(count(restored, 'SELECT count(*) AS n FROM recipients')).toBe(COUNT);
      expect(count(restored, 'SELECT count(*) AS n FROM deliveries WHERE notification_id = ?', notificationId)).toBe(COUNT);
      // one instant of the fan-out: between what was recorded when the backup started and when it ended
      const sent = count(restored, `SELECT count(*) AS n FROM deliveries WHERE status = 'sent'`);
      expect(sent).toBeGreaterThanOrEqual(sentBefore);
      expect(sent).toBeLessThanOrEqual(sentAfter);
      // a delivery and its attempt are written in one transaction: the snapshot never has one without the other
      expect(count(restored, `SELECT count(DISTINCT delivery_id) AS n FROM delivery_attempts WHERE outcome = 'sent'`)).toBe(sent);
      expect(restored.$client.prepare(`SELECT action FROM audit_log WHERE action LIKE 'backup.%'`).all()).toEqual([
        { action: 'backup.restored' },
      ]);
    } finally {
      restored.$client.close();
    }
    const verify = await candor(restoredDir, ['audit', 'verify']);
    expect(verify.stdout).toMatch(/chain intact/);
    expect(verify.code).toBe(0);
  });

  it('refuses a wrong key, an altered, cut or foreign file, a missing one, and a database in use, with one line each', async () => {
    const tampered = join(scratch, 'tampered.backup');
    copyFileSync(backupFile, tampered);
    const fd = openSync(tampered, 'r+');
    const middle = Math.floor(statSync(tampered).size / 2);
    writeSync(fd, Buffer.from([(readFileSync(backupFile)[middle] ?? 0) ^ 0x01]), 0, 1, middle);
    closeSync(fd);
    const cut = join(scratch, 'cut.backup');
    copyFileSync(backupFile, cut);
    truncateSync(cut, statSync(cut).size - 1000);
    const fresh = () => tempDir('candor-refused-');
    const dirs = [fresh(), fresh(), fresh(), fresh(), fresh()];
    const [wrongKey, altered, truncated, foreign, missing] = dirs as [string, string, string, string, string];
    const otherKey = Buffer.alloc(32, 7).toString('hex');

    const runs = await Promise.all([
      candor(wrongKey, ['restore', backupFile], { CANDOR_ENCRYPTION_KEY: otherKey }),
      candor(altered, ['restore', tampered]),
      candor(truncated, ['restore', cut]),
      candor(foreign, ['restore', join(restoredDir, 'candor.db')]),
      candor(missing, ['restore', join(scratch, 'nothing.backup')]),
      candor(dataDir, ['restore', backupFile]),
    ]);
    const [a, b, c, d, e, inUse] = runs.map(refusal);
    expect(a).toMatch(
      /^candor: candor\.backup was made with encryption key [0-9a-f]{8}, but the configured keys are [0-9a-f]{8} \(current\): set CANDOR_ENCRYPTION_KEY/,
    );
    expect(b).toMatch(/^candor: tampered\.backup is damaged or was altered: its content does not authenticate \(chunk \d+, byte \d+\)/);
    expect(c).toMatch(/^candor: cut\.backup is truncated or was altered/);
    expect(d).toBe('candor: candor.db is not a Candor backup (it does not start with "CANDOR-BACKUP")');
    expect(e).toMatch(/^candor: .*nothing\.backup: no such file$/);
    expect(inUse).toMatch(/^candor: .*candor\.db is in use: stop the server \(and any `candor worker`\) before restoring$/);
    // nothing was written where the restore was refused
    for (const dir of dirs) {
      expect(readdirSync(dir).filter((f) => f !== 'secrets.json')).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(readdirSync(dataDir).filter((f) => f.includes('before-restore') || f.startsWith('.candor-'))).toEqual([]);
    expect(count(db, 'SELECT count(*) AS n FROM recipients')).toBe(COUNT);
  });

  it('replaces a damaged database once the server is stopped, keeping the damaged one aside', async () => {
    db.$client.close();
    expect(await server.stop()).toBe(0);
    const file = join(dataDir, 'candor.db');
    const fd = openSync(file, 'r+');
    const page = 4096;
    writeSync(fd, Buffer.alloc(3 * page, 0xa5), 0, 3 * page, Math.floor(statSync(file).size / 2 / page) * page);
    closeSync(fd);

    const run = await candor(dataDir, ['restore', backupFile]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/the database it replaced is kept as .*candor\.db\.before-restore-\d{8}T\d{6}Z/);
    expect(run.stdout).toMatch(/chain intact/);
    const files = readdirSync(dataDir);
    expect(files.filter((f) => f.startsWith('candor.db.before-restore-'))).toHaveLength(1);
    expect(existsSync(`${file}-wal`)).toBe(false);
    db = openDatabase(file);
    expect(db.$client.pragma('quick_check')).toEqual([{ quick_check: 'ok' }]);
    expect(count(db, 'SELECT count(*) AS n FROM recipients')).toBe(COUNT);
  });
});
