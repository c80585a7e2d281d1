/**
 * The record of scheduled backups through the stores (src/stores/backup-runs.ts via
 * src/core/backup/runs.ts): claiming a day, recording a run and its restore check, closing abandoned
 * runs, the dashboard's status and the alerts, with the same answers on SQLite and PostgreSQL; and on
 * PostgreSQL, where nodes really race, one claim per day and one alert per episode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query, reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import {
  ABANDONED_MS,
  BACKUP_JOB_KIND,
  backupStatus,
  claimAlert,
  claimRun,
  closeAbandoned,
  getRun,
  lastVerifiedRun,
  noteAlertNotification,
  OVERDUE_MS,
  plannedBackupJobs,
  recordBackup,
  recordRestoreCheck,
  releaseRun,
  runOfFile,
} from '../../src/core/backup/runs.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL } from '../helpers/postgres.ts';

const T0 = new Date('2031-05-01T02:30:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (hours: number) => new Date(T0.getTime() + hours * HOUR);

/** Everything the schedule and the dashboard can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  // Backups planned: a job for the next slot (written as jobs/jobs.ts would).
  await database.transaction(async (tx) => {
    const q = query(tx);
    await q.db.insert(q.t.jobs).values([
      {
        key: 'backups:first',
        kind: BACKUP_JOB_KIND,
        runAt: at(0),
        payload: {},
        status: 'done',
        createdAt: at(-30),
        trustCenterId: q.trustCenter,
      },
      {
        key: 'backups:next',
        kind: BACKUP_JOB_KIND,
        runAt: at(24),
        payload: {},
        status: 'pending',
        createdAt: at(0),
        trustCenterId: q.trustCenter,
      },
      { key: 'other', kind: 'notify.send', runAt: at(1), payload: {}, status: 'pending', createdAt: at(0), trustCenterId: q.trustCenter },
    ]);
  });
  seen.planned = await plannedBackupJobs(database);
  // Nothing made yet, planned 30 hours ago: overdue.
  seen.beforeAny = await backupStatus(database, true, at(0));

  const first = await claimRun(database, T0, 'node-a:1', at(0));
  seen.first = first;
  seen.claimedAgain = await claimRun(database, T0, 'node-b:2', at(0));
  seen.running = await backupStatus(database, true, at(0.5));
  await recordBackup(database, first?.id ?? 0, { ok: true, file: '/backups/one.backup', bytes: 4096, counts: { staff: 2 } }, at(1));
  await recordRestoreCheck(database, first?.id ?? 0, { ok: true, ms: 1234 }, at(1));
  seen.afterFirst = await getRun(database, first?.id ?? 0);
  seen.ofFile = (await runOfFile(database, '/backups/one.backup'))?.id;
  seen.verified = (await lastVerifiedRun(database))?.id;
  seen.good = await backupStatus(database, true, at(2));

  // The next day: written, but its restore check fails.
  const second = await claimRun(database, at(24), 'node-a:1', at(24));
  await recordBackup(database, second?.id ?? 0, { ok: true, file: '/backups/two.backup', bytes: 4096, counts: {} }, at(25));
  await recordRestoreCheck(database, second?.id ?? 0, { ok: false, ms: 99, error: 'does not authenticate' }, at(25));
  seen.checkFailed = await backupStatus(database, true, at(26));

  // A run given back before it wrote anything, and one whose process stopped.
  const third = await claimRun(database, at(48), 'node-a:1', at(48));
  await releaseRun(database, third?.id ?? 0);
  seen.released = await getRun(database, third?.id ?? 0);
  const stopped = await claimRun(database, at(72), 'node-b:2', at(72));
  const fourth = await claimRun(database, at(73), 'node-a:1', at(73));
  seen.closedEarly = await closeAbandoned(database, fourth?.id ?? 0, at(73));
  seen.closed = await closeAbandoned(database, fourth?.id ?? 0, new Date(at(72).getTime() + ABANDONED_MS + 1000));
  seen.stopped = await getRun(database, stopped?.id ?? 0);
  seen.fourth = (await getRun(database, fourth?.id ?? 0))?.outcome;
  // No good backup since the first (hour 1): overdue after OVERDUE_MS; off: nothing asks for attention.
  seen.overdue = (await backupStatus(database, true, new Date(at(1).getTime() + OVERDUE_MS + 1000))).overdue;
  seen.off = (await backupStatus(database, false, at(100))).needsAttention;

  seen.alerts = await database.transaction(async (tx) => {
    const firstTime = await claimAlert(tx, 'failed:2', 'failed', at(26));
    if (firstTime) await noteAlertNotification(tx, 'failed:2', 77);
    return [firstTime, await claimAlert(tx, 'failed:2', 'failed', at(27))];
  });
  seen.alertRow = await database.read(async (r) => {
    const q = reading(r);
    return q.db.select({ key: q.t.backupAlerts.key, notificationId: q.t.backupAlerts.notificationId }).from(q.t.backupAlerts);
  });
  return seen;
}

describe.skipIf(!TEST_POSTGRES_URL)('the backup runs store on both engines', () => {
  let engines: BothEngines;
  const seen: Record<string, Record<string, unknown>> = {};
  beforeAll(async () => {
    engines = await bothEngines();
  }, 60_000);
  afterAll(() => engines?.close());

  it.each(['sqlite', 'postgres'] as const)(
    'claims, records, closes and reports on %s',
    async (engine) => {
      const s = await sequence(engines[engine]);
      seen[engine] = s;
      expect(s.planned).toEqual([{ key: 'backups:next', runAt: at(24), status: 'pending' }]);
      expect(s.beforeAny).toMatchObject({
        nextAt: at(24),
        running: null,
        lastBackup: null,
        overdue: { since: at(-30), lastGoodId: null },
        needsAttention: true,
      });
      expect(s.first).toMatchObject({ slot: T0, takenBy: 'node-a:1', outcome: 'running', startedAt: at(0) });
      expect(s.claimedAgain).toBeUndefined();
      expect(s.running).toMatchObject({ running: { takenBy: 'node-a:1' }, failure: null });
      expect(s.afterFirst).toMatchObject({
        outcome: 'ok',
        finishedAt: at(1),
        file: '/backups/one.backup',
        bytes: 4096,
        counts: { staff: 2 },
        restoreOutcome: 'ok',
        restoreMs: 1234,
        restoreCheckedAt: at(1),
      });
      const firstId = (s.first as { id: number }).id;
      expect(s.ofFile).toBe(firstId);
      expect(s.verified).toBe(firstId);
      expect(s.good).toMatchObject({
        lastBackup: { id: firstId },
        lastVerified: { id: firstId },
        failure: null,
        overdue: null,
        needsAttention: false,
      });
      expect(s.checkFailed).toMatchObject({
        lastBackup: { file: '/backups/two.backup' },
        lastVerified: { id: firstId },
        failure: { stage: 'restore check', reason: 'does not authenticate' },
        needsAttention: true,
      });
      expect(s.released).toBeUndefined();
      expect(s.closedEarly).toBe(0);
      expect(s.closed).toBe(1);
      expect(s.stopped).toMatchObject({ outcome: 'failed', error: 'did not finish: the process taking it stopped' });
      expect(s.fourth).toBe('running');
      expect(s.overdue).toEqual({ since: at(1), lastGoodId: firstId });
      expect(s.off).toBe(false);
      expect(s.alerts).toEqual([true, false]);
      expect(s.alertRow).toEqual([{ key: 'failed:2', notificationId: 77 }]);
    },
    60_000,
  );

  it('gives the same answers on both engines', () => {
    if (!seen.sqlite || !seen.postgres) throw new Error('the sequence did not run on both engines');
    expect(seen.postgres).toEqual(seen.sqlite);
  });

  it('on PostgreSQL, of eight nodes claiming one day one gets it, and of eight alerting one episode one tells staff', async () => {
    const pg = engines.postgres;
    const slot = new Date(T0.getTime() + 30 * DAY);
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => claimRun(pg, slot, `node-${i}:1`, slot)));
    const won = claims.filter((c) => c !== undefined);
    expect(won).toHaveLength(1);
    expect(await getRun(pg, won[0]?.id ?? 0)).toMatchObject({ slot, outcome: 'running' });
    const alerts = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        pg.transaction((tx) => claimAlert(tx, `overdue:${slot.getTime()}`, 'overdue', new Date(slot.getTime() + i))),
      ),
    );
    expect(alerts.filter(Boolean)).toHaveLength(1);
  }, 60_000);
});
