/**
 * The daily backup on a fake clock, with two "processes" (two handles on one
 * database file): the first is planned for the next configured time, not
 * taken at once; at that time exactly one process takes it; the restore
 * check passes and records how long it took; the newest `keep` files stay
 * and nothing else in the folder is touched; a day missed while nothing ran
 * is caught up once, after the plaintext copies a crash left in the data
 * dir are removed (and a file named alike that is not Candor's kept). A damaged backup is recorded as a failed check naming
 * why, and the dashboard asks for attention; so it does after 26 hours
 * without a backup. Staff hear of each problem once, not at every look.
 */

import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import { auditKeyring } from '../../src/core/audit/key.ts';
import { recordAudit } from '../../src/core/audit/log.ts';
import { checkBackup } from '../../src/core/backup/check.ts';
import { BackupError } from '../../src/core/backup/format.ts';
import { ABANDONED_MS, type BackupRun, backupStatus, claimRun, closeAbandoned, getRun, OVERDUE_MS } from '../../src/core/backup/runs.ts';
import { alertStaff, type BackupDeps, type BackupPolicy, nextSlot, runScheduledBackup } from '../../src/core/backup/schedule.ts';
import { attention } from '../../src/core/console/dashboard.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { scheduleJob } from '../../src/core/jobs/legacy.ts';
import { runBackupRound } from '../../src/runtime/jobs.ts';
import { addSubscribers, TEST_KEYS } from '../helpers/notify.ts';
import { ROOT, tempDir } from '../helpers/server.ts';
import { openTestDb, staffMember } from '../helpers/staff.ts';

const dataDir = tempDir('candor-backup-schedule-');
const folder = join(dataDir, 'backups');
const site = loadContent(join(ROOT, 'content')).site;
const policy: BackupPolicy = { enabled: true, time: '02:30', keep: 2, directory: 'backups' };
let clock = new Date('2031-03-10T10:00:00Z');
const at = (iso: string) => {
  clock = new Date(iso);
};
const logs: string[] = [];
let a: Db;
let b: Db;
let depsA: BackupDeps;
let depsB: BackupDeps;

function depsFor(db: Db): BackupDeps {
  return {
    database: databaseOf(db),
    db,
    dataDir,
    policy,
    keys: TEST_KEYS.keys,
    secret: TEST_KEYS.secret,
    auditKeys: auditKeyring(TEST_KEYS.secret),
    staff: { keys: TEST_KEYS, staffSlack: null, publicUrl: new URL('https://trust.example/') },
    now: () => clock,
    log: (line) => logs.push(line),
  };
}

const runs = () => a.$client.prepare('SELECT * FROM backup_runs ORDER BY id').all() as Record<string, unknown>[];
const scheduledFiles = () =>
  existsSync(folder)
    ? readdirSync(folder)
        .filter((f) => f.startsWith('candor-daily-'))
        .sort()
    : [];
const backupNotices = () =>
  a.$client.prepare(`SELECT id, title FROM notifications WHERE kind = 'staff-backup' ORDER BY id`).all() as { id: number; title: string }[];
const pendingBackupJobs = () =>
  a.$client.prepare(`SELECT key, run_at FROM jobs WHERE kind = 'backups.run' AND status = 'pending'`).all() as {
    key: string;
    run_at: number;
  }[];
/** Both processes' rounds at the same instant, as two servers' timers would fire. */
const bothRounds = () => Promise.all([runBackupRound(depsA), runBackupRound(depsB)]);

beforeAll(() => {
  a = openTestDb(dataDir);
  b = openTestDb(dataDir);
  depsA = depsFor(a);
  depsB = depsFor(b);
  addSubscribers(a, TEST_KEYS, { count: 25, channel: 'email', address: (i) => `reader${i}@customer.example` });
  staffMember(a, 'owner', { enrolled: true, email: 'owner@lumenwork.example' });
  staffMember(a, 'responder', { enrolled: false, email: 'oncall@lumenwork.example' });
  recordAudit(a, { actor: { type: 'system' }, action: 'settings.test_sent', target: 'x' }, clock);
});
afterAll(() => {
  a?.$client.close();
  b?.$client.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('nextSlot', () => {
  it('is the next time the UTC clock reads HH:MM, never the present instant', async () => {
    expect(nextSlot(new Date('2031-03-10T02:29:59Z'), '02:30').toISOString()).toBe('2031-03-10T02:30:00.000Z');
    expect(nextSlot(new Date('2031-03-10T02:30:00Z'), '02:30').toISOString()).toBe('2031-03-11T02:30:00.000Z');
    expect(nextSlot(new Date('2031-12-31T23:59:00Z'), '00:00').toISOString()).toBe('2032-01-01T00:00:00.000Z');
  });
});

describe('the daily backup', () => {
  it('is planned for the next configured time, not taken at start', async () => {
    await bothRounds();
    expect(runs()).toEqual([]);
    expect(pendingBackupJobs()).toEqual([{ key: 'backups:2031-03-11T02:30:00.000Z', run_at: Date.parse('2031-03-11T02:30:00Z') }]);
    at('2031-03-11T02:29:50Z');
    await bothRounds();
    expect(runs()).toEqual([]);
    const status = await backupStatus(databaseOf(a), true, clock);
    expect(status.nextAt?.toISOString()).toBe('2031-03-11T02:30:00.000Z');
    expect(status.needsAttention).toBe(false);
  });

  it('is taken once at that time by one of two processes, restores, and records how long the restore took', async () => {
    at('2031-03-11T02:30:10Z');
    await bothRounds();
    // a process that picks the day up again (its job lease ran out during a long backup) finds it taken
    expect(await runScheduledBackup(depsB, new Date('2031-03-11T02:30:00Z'))).toBeNull();
    const rows = runs();
    expect(rows).toHaveLength(1);
    const [run] = rows as [Record<string, unknown>];
    expect(run).toMatchObject({
      slot: Date.parse('2031-03-11T02:30:00Z'),
      started_at: clock.getTime(),
      outcome: 'ok',
      error: null,
      restore_outcome: 'ok',
      restore_error: null,
      restore_checked_at: clock.getTime(),
    });
    expect(run.restore_ms).toEqual(expect.any(Number));
    expect(run.restore_ms as number).toBeGreaterThan(0);
    expect(run.file).toBe(join(folder, 'candor-daily-20310311T023010Z.backup'));
    expect(run.bytes).toBe(statSync(run.file as string).size);
    // what the snapshot held, which the check compared
    expect(JSON.parse(run.counts as string)).toMatchObject({ recipients: 25, subscribers: 25, staff: 2 });
    expect(
      readFileSync(run.file as string)
        .subarray(0, 16)
        .toString(),
    ).toBe('CANDOR-BACKUP 1\n');
    expect(statSync(run.file as string).mode & 0o777).toBe(0o600);
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    // recorded in the audit log, by the scheduler
    expect(a.$client.prepare(`SELECT user_agent, target, at FROM audit_log WHERE action = 'backup.created'`).all() as unknown[]).toEqual([
      { user_agent: 'candor scheduler', target: 'backup:candor-daily-20310311T023010Z.backup', at: clock.getTime() },
    ]);
    // nothing left behind in the data dir: no snapshot, no scratch copy
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.candor-'))).toEqual([]);
    // the next day is planned
    expect(pendingBackupJobs().map((j) => j.key)).toEqual(['backups:2031-03-12T02:30:00.000Z']);
    // the dashboard's figures
    const status = (await attention(databaseOf(a), site, clock)).backups;
    expect(status.lastBackup?.file).toBe(run.file);
    expect(status.lastVerified?.restoreMs).toBe(run.restore_ms);
    expect(status.needsAttention).toBe(false);
    // a later round the same day takes nothing more
    at('2031-03-11T02:31:00Z');
    await bothRounds();
    expect(runs()).toHaveLength(1);
    expect(backupNotices()).toEqual([]);
  });

  it('keeps the newest `keep` files it made and touches no other file in the folder', async () => {
    writeFileSync(join(folder, 'candor-20310101T000000Z.backup'), 'a backup taken by hand');
    writeFileSync(join(folder, 'notes.txt'), 'the operator’s');
    at('2031-03-12T02:30:05Z');
    await bothRounds();
    at('2031-03-13T02:30:05Z');
    await bothRounds();
    expect(runs().map((r) => [r.outcome, r.restore_outcome])).toEqual([
      ['ok', 'ok'],
      ['ok', 'ok'],
      ['ok', 'ok'],
    ]);
    expect(scheduledFiles()).toEqual(['candor-daily-20310312T023005Z.backup', 'candor-daily-20310313T023005Z.backup']);
    expect(readdirSync(folder)).toContain('candor-20310101T000000Z.backup');
    expect(readdirSync(folder)).toContain('notes.txt');
  });

  it('catches up once after days when nothing ran, first removing the plaintext copy the crash left', async () => {
    // The process died mid-backup: its snapshot and a restore check's folder stayed in the data dir.
    const snapshot = `.candor-backup-${randomUUID()}.db`;
    const longAgo = new Date(Date.now() - 3_600_000);
    writeFileSync(join(dataDir, snapshot), 'plaintext rows');
    mkdirSync(join(dataDir, '.candor-restore-check-Crash1'));
    writeFileSync(join(dataDir, '.candor-restore-check-Crash1', 'candor.db'), 'plaintext rows');
    writeFileSync(join(dataDir, '.candor-backup-mine.db'), 'the operator’s, named alike');
    for (const name of [snapshot, '.candor-restore-check-Crash1/candor.db', '.candor-restore-check-Crash1', '.candor-backup-mine.db']) {
      utimesSync(join(dataDir, name), longAgo, longAgo);
    }
    at('2031-03-15T09:00:00Z');
    await bothRounds();
    await bothRounds();
    expect(existsSync(join(dataDir, snapshot))).toBe(false);
    expect(existsSync(join(dataDir, '.candor-restore-check-Crash1'))).toBe(false);
    expect(existsSync(join(dataDir, '.candor-backup-mine.db'))).toBe(true);
    rmSync(join(dataDir, '.candor-backup-mine.db'));
    expect(logs.filter((l) => l.startsWith('removed a plaintext copy')).sort()).toEqual([
      `removed a plaintext copy left by a run that did not finish: ${snapshot}`,
      'removed a plaintext copy left by a run that did not finish: .candor-restore-check-Crash1',
    ]);
    const rows = runs();
    expect(rows).toHaveLength(4);
    // the missed day's slot, taken now
    expect(rows[3]).toMatchObject({ slot: Date.parse('2031-03-14T02:30:00Z'), started_at: clock.getTime(), outcome: 'ok' });
    expect(pendingBackupJobs().map((j) => j.key)).toEqual(['backups:2031-03-16T02:30:00.000Z']);
    // it came back in time: no overdue notice
    expect(backupNotices()).toEqual([]);
  });

  it('records a damaged backup as a failed restore check naming why, asks for attention, and tells staff once', async () => {
    depsA.afterWrite = (file) => {
      const fd = openSync(file, 'r+');
      const middle = Math.floor(statSync(file).size / 2);
      writeSync(fd, Buffer.from([(readFileSync(file)[middle] ?? 0) ^ 0x40]), 0, 1, middle);
      closeSync(fd);
    };
    depsB.afterWrite = depsA.afterWrite;
    policy.keep = 1;
    at('2031-03-16T02:30:00Z');
    try {
      await bothRounds();
    } finally {
      depsA.afterWrite = undefined;
      depsB.afterWrite = undefined;
      policy.keep = 2;
    }
    const run = runs().at(-1) as Record<string, unknown>;
    expect(run).toMatchObject({ outcome: 'ok', restore_outcome: 'failed' });
    expect(run.restore_error).toMatch(
      /^candor-daily-20310316T023000Z\.backup is damaged or was altered: its content does not authenticate \(chunk \d+, byte \d+\)/,
    );
    expect(run.restore_ms).toEqual(expect.any(Number));
    // the newest verified backup is kept although it is no longer among the newest `keep`
    expect(scheduledFiles()).toEqual(['candor-daily-20310315T090000Z.backup', 'candor-daily-20310316T023000Z.backup']);
    const needs = await attention(databaseOf(a), site, clock);
    expect(needs.backups.needsAttention).toBe(true);
    expect(needs.backups.failure).toMatchObject({ stage: 'restore check' });
    expect(needs.backups.failure?.reason).toMatch(/does not authenticate/);
    expect(needs.backups.lastVerified?.file).toBe(join(folder, 'candor-daily-20310315T090000Z.backup'));
    // one notice, to every owner, admin and responder, however often either process looks
    for (const minutes of [1, 2, 30, 300]) {
      at(new Date(Date.parse('2031-03-16T02:30:00Z') + minutes * 60_000).toISOString());
      await bothRounds();
      await alertStaff(depsA);
      await alertStaff(depsB);
    }
    const notices = backupNotices();
    expect(notices).toEqual([{ id: expect.any(Number), title: 'Backup restore check failed' }]);
    const to = a.$client.prepare('SELECT count(*) AS n FROM deliveries WHERE notification_id = ?').get(notices[0]?.id) as { n: number };
    expect(to.n).toBe(2);
    const content = JSON.parse(
      (a.$client.prepare('SELECT content FROM notifications WHERE id = ?').get(notices[0]?.id) as { content: string }).content,
    ) as { email: { text: string } };
    expect(content.email.text).toMatch(/does not authenticate/);
    expect(content.email.text).toContain('https://trust.example/console');
  });

  it('asks for attention after 26 hours without a good backup, and tells staff once per overdue spell', async () => {
    // the damaged backup does not count: the last good one is the day before
    const lastGood = () =>
      a.$client
        .prepare(`SELECT id, finished_at AS t FROM backup_runs WHERE outcome = 'ok' AND restore_outcome = 'ok' ORDER BY id DESC LIMIT 1`)
        .get() as { id: number; t: number };
    const last = lastGood();
    expect(new Date(last.t).toISOString()).toBe('2031-03-15T09:00:00.000Z');
    at(new Date(last.t + OVERDUE_MS - 60_000).toISOString());
    expect(await alertStaff(depsA)).toEqual([]);
    expect((await backupStatus(databaseOf(a), true, clock)).overdue).toBeNull();
    at(new Date(last.t + OVERDUE_MS + 60_000).toISOString());
    const status = await backupStatus(databaseOf(a), true, clock);
    expect(status.overdue).toEqual({ since: new Date(last.t), lastGoodId: last.id });
    expect((await attention(databaseOf(a), site, clock)).backups.needsAttention).toBe(true);
    expect(await alertStaff(depsB)).toEqual([`overdue:${last.id}`]);
    for (const minutes of [1, 5, 60, 600]) {
      at(new Date(last.t + OVERDUE_MS + minutes * 60_000).toISOString());
      expect([...(await alertStaff(depsA)), ...(await alertStaff(depsB))]).toEqual([]);
    }
    expect(backupNotices().map((n) => n.title)).toEqual(['Backup restore check failed', 'Backups overdue']);
    const overdueNotice = JSON.parse(
      (a.$client.prepare('SELECT content FROM notifications WHERE id = ?').get(backupNotices()[1]?.id) as { content: string }).content,
    ) as { email: { text: string } };
    expect(overdueNotice.email.text).toMatch(/^Backups overdue: no good backup .* for 26 hours \(since 2031-03-15 09:00 UTC\)/);
    // backups turned off: nothing is overdue, nothing asks for attention
    expect((await backupStatus(databaseOf(a), false, clock)).needsAttention).toBe(false);
    // the next day's backup is good: the spell ends
    at('2031-03-17T02:30:00Z');
    await bothRounds();
    expect(runs().at(-1)).toMatchObject({ outcome: 'ok', restore_outcome: 'ok' });
    expect((await backupStatus(databaseOf(a), true, clock)).needsAttention).toBe(false);
    expect(backupNotices()).toHaveLength(2);
    // then nothing runs any more (the job is gone): a new spell, told again once
    a.$client.prepare(`UPDATE jobs SET status = 'cancelled' WHERE kind = 'backups.run' AND status = 'pending'`).run();
    const again = lastGood();
    at(new Date(again.t + OVERDUE_MS + 60_000).toISOString());
    expect(await alertStaff(depsA)).toEqual([`overdue:${again.id}`]);
    expect(await alertStaff(depsB)).toEqual([]);
    expect(backupNotices().map((n) => n.title)).toEqual(['Backup restore check failed', 'Backups overdue', 'Backups overdue']);
  });

  it('records a backup that cannot be written, and tells staff', async () => {
    writeFileSync(join(dataDir, 'not-a-folder'), '');
    const blocked: BackupDeps = { ...depsA, policy: { ...policy, directory: 'not-a-folder/backups' } };
    const run = (await runScheduledBackup(blocked, new Date('2031-04-01T02:30:00Z'))) as BackupRun;
    expect(run.outcome).toBe('failed');
    expect(run.error).toMatch(/ENOTDIR|not a directory/);
    expect(run.restoreOutcome).toBeNull();
    expect((await backupStatus(databaseOf(a), true, clock)).failure).toMatchObject({ stage: 'backup' });
    expect(backupNotices().at(-1)?.title).toBe('Backup failed');
  });
});

describe('a backup interrupted by a stop', () => {
  it('gives its day back, leaves nothing behind, and is taken at the next start', async () => {
    at('2031-04-02T02:30:00Z');
    a.$client.prepare(`UPDATE jobs SET status = 'cancelled' WHERE kind = 'backups.run' AND status = 'pending'`).run();
    scheduleJob(a, 'backups:2031-04-02T02:30:00.000Z', 'backups.run', clock, { slot: clock.getTime() }, clock);
    const stopping = new AbortController();
    stopping.abort();
    const before = runs().length;
    await runBackupRound({ ...depsA, signal: stopping.signal });
    expect(runs()).toHaveLength(before);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.candor-'))).toEqual([]);
    expect(readdirSync(folder).filter((f) => f.includes('20310402') || f.includes('.partial'))).toEqual([]);
    // restarted a moment later: the retry is not replaced by tomorrow's plan, and it runs when due
    at('2031-04-02T02:30:20Z');
    await bothRounds();
    expect(runs()).toHaveLength(before);
    at('2031-04-02T02:31:30Z');
    await bothRounds();
    expect(runs()).toHaveLength(before + 1);
    expect(runs().at(-1)).toMatchObject({ slot: Date.parse('2031-04-02T02:30:00Z'), outcome: 'ok', restore_outcome: 'ok' });
    expect(pendingBackupJobs().map((j) => j.key)).toEqual(['backups:2031-04-03T02:30:00.000Z']);
  });
});

describe('the restore check', () => {
  it('refuses a backup whose rows differ from the snapshot it was made from, naming the table', async () => {
    const good = runs().findLast((r) => r.restore_outcome === 'ok') as Record<string, unknown>;
    const counts = JSON.parse(good.counts as string) as Record<string, number>;
    const options = { file: good.file as string, dataDir, keys: TEST_KEYS.keys, auditKeys: auditKeyring(TEST_KEYS.secret) };
    const passed = await checkBackup({ ...options, expectedCounts: counts });
    expect(passed.countsCompared).toBe(true);
    expect(passed.ms).toBeGreaterThan(0);
    const wrong = { ...counts, recipients: (counts.recipients ?? 0) + 1 };
    await expect(checkBackup({ ...options, expectedCounts: wrong })).rejects.toThrow(
      `restores ${counts.recipients} rows of recipients, but the snapshot it was made from had ${wrong.recipients}`,
    );
    // a secret other than the installation's: the audit chain cannot be verified
    await expect(checkBackup({ ...options, auditKeys: auditKeyring('another-secret-of-sufficient-length-123') })).rejects.toThrow(
      BackupError,
    );
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.candor-'))).toEqual([]);
  });
});

describe('closing abandoned runs', () => {
  it('marks failed only another run older than the abandonment age, never a live one', async () => {
    const dir = tempDir('candor-backup-abandoned-');
    const db = openTestDb(dir);
    try {
      const t0 = new Date('2031-05-01T02:30:00Z');
      // Another process is taking yesterday's slot (a catch-up); this one takes today's a minute later.
      const live = await claimRun(databaseOf(db), new Date('2031-04-30T02:30:00Z'), 'other:1', t0);
      const mine = await claimRun(databaseOf(db), t0, 'this:2', new Date(t0.getTime() + 60_000));
      if (!live || !mine) throw new Error('runs not claimed');
      expect(await closeAbandoned(databaseOf(db), mine.id, new Date(t0.getTime() + 60_000))).toBe(0);
      expect(await getRun(databaseOf(db), live.id)).toMatchObject({ outcome: 'running', finishedAt: null, error: null });
      // Still marked running past the age: its process stopped.
      const later = new Date(t0.getTime() + ABANDONED_MS + 1000);
      expect(await closeAbandoned(databaseOf(db), mine.id, later)).toBe(1);
      expect(await getRun(databaseOf(db), live.id)).toMatchObject({
        outcome: 'failed',
        finishedAt: later,
        error: 'did not finish: the process taking it stopped',
      });
      expect(await getRun(databaseOf(db), mine.id)).toMatchObject({ outcome: 'running' });
    } finally {
      db.$client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
