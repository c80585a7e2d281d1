/**
 * The record of scheduled backups (`backup_runs`) and what it says: the
 * last backup, the last verified restore, whether the latest run failed or
 * backups are overdue. The dashboard shows this; the scheduler writes it
 * and tells staff once per problem (`backup_alerts`).
 */
import { and, desc, eq, inArray, isNotNull, isNull, lt, min, ne, or } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { backupAlerts, backupRuns, jobs } from '../../../db/schema.ts';

export type BackupRun = typeof backupRuns.$inferSelect;

/** No successful backup for longer than this is overdue: a day and a margin for a slow one. */
export const OVERDUE_MS = 26 * 3_600_000;
/** A run still marked running after this long was abandoned (its process stopped). */
export const ABANDONED_MS = 6 * 3_600_000;
export const BACKUP_JOB_KIND = 'backups.run';

/**
 * Takes the run for `slot`, unless a process already has: the unique slot
 * makes the insert the claim. Returns the new row, or undefined.
 */
export function claimRun(db: Db, slot: Date, takenBy: string, now: Date): BackupRun | undefined {
  return db.insert(backupRuns).values({ slot, takenBy, startedAt: now, outcome: 'running' }).onConflictDoNothing().returning().get();
}

/** Gives a slot back (the run was interrupted before writing anything), so the job's retry can take it. */
export function releaseRun(db: Db, id: number): void {
  db.delete(backupRuns)
    .where(and(eq(backupRuns.id, id), eq(backupRuns.outcome, 'running')))
    .run();
}

/**
 * Runs besides `current` still marked running after ABANDONED_MS: their process stopped before finishing.
 * A younger one may be live (another process taking another day's slot after a catch-up) and is left
 * running; the dashboard counts it abandoned after the same age (backupStatus).
 */
export function closeAbandoned(db: Db, current: number, now: Date): number {
  return db
    .update(backupRuns)
    .set({ outcome: 'failed', finishedAt: now, error: 'did not finish: the process taking it stopped' })
    .where(
      and(eq(backupRuns.outcome, 'running'), ne(backupRuns.id, current), lt(backupRuns.startedAt, new Date(now.getTime() - ABANDONED_MS))),
    )
    .run().changes;
}

export function recordBackup(
  db: Db,
  id: number,
  result: { ok: true; file: string; bytes: number; counts: Record<string, number> } | { ok: false; file: string | null; error: string },
  now: Date,
): void {
  db.update(backupRuns)
    .set(
      result.ok
        ? { outcome: 'ok', finishedAt: now, file: result.file, bytes: result.bytes, counts: result.counts, error: null }
        : { outcome: 'failed', finishedAt: now, file: result.file, error: result.error.slice(0, 1000) },
    )
    .where(eq(backupRuns.id, id))
    .run();
}

export function recordRestoreCheck(db: Db, id: number, result: { ok: boolean; ms: number; error?: string }, now: Date): void {
  db.update(backupRuns)
    .set({
      restoreCheckedAt: now,
      restoreMs: result.ms,
      restoreOutcome: result.ok ? 'ok' : 'failed',
      restoreError: result.ok ? null : (result.error ?? 'failed').slice(0, 1000),
    })
    .where(eq(backupRuns.id, id))
    .run();
}

export function getRun(db: Db, id: number): BackupRun | undefined {
  return db.select().from(backupRuns).where(eq(backupRuns.id, id)).get();
}

/** A recorded run that wrote this file, for the counts its snapshot had. */
export function runOfFile(db: Db, file: string): BackupRun | undefined {
  return db.select().from(backupRuns).where(eq(backupRuns.file, file)).orderBy(desc(backupRuns.id)).get();
}

/** The newest run whose restore check passed. */
export function lastVerifiedRun(db: Db): BackupRun | undefined {
  return db.select().from(backupRuns).where(eq(backupRuns.restoreOutcome, 'ok')).orderBy(desc(backupRuns.id)).get();
}

export interface BackupFailure {
  run: BackupRun;
  stage: 'backup' | 'restore check';
  reason: string;
}

export interface BackupStatus {
  enabled: boolean;
  /** when the next scheduled backup is due; null when none is planned */
  nextAt: Date | null;
  /** a run in progress, started within ABANDONED_MS */
  running: BackupRun | null;
  /** the newest backup written */
  lastBackup: BackupRun | null;
  /** the newest backup whose restore check passed */
  lastVerified: BackupRun | null;
  /** the newest finished run, when it failed (the backup or its restore check) */
  failure: BackupFailure | null;
  /** no good backup (written, and not failed its restore check) for more than OVERDUE_MS, or since backups were first planned */
  overdue: { since: Date; lastGoodId: number | null } | null;
  needsAttention: boolean;
}

export function backupStatus(db: Db, enabled: boolean, now: Date): BackupStatus {
  const latest = db.select().from(backupRuns).orderBy(desc(backupRuns.id)).limit(2).all();
  const lastBackup = db.select().from(backupRuns).where(eq(backupRuns.outcome, 'ok')).orderBy(desc(backupRuns.id)).get() ?? null;
  const lastVerified = lastVerifiedRun(db) ?? null;
  const newest = latest[0];
  const abandoned = newest?.outcome === 'running' && now.getTime() - newest.startedAt.getTime() > ABANDONED_MS;
  const running = newest?.outcome === 'running' && !abandoned ? newest : null;
  // While one runs, the verdict is the previous one's.
  const finished = running ? latest[1] : newest;
  const failure = finished ? failureOf(finished, now) : null;
  const next = db
    .select({ runAt: jobs.runAt })
    .from(jobs)
    .where(and(eq(jobs.kind, BACKUP_JOB_KIND), eq(jobs.status, 'pending')))
    .orderBy(jobs.runAt)
    .get();
  let overdue: BackupStatus['overdue'] = null;
  if (enabled) {
    // A backup that does not restore is no backup: the last good one was written and has not failed its check.
    const lastGood = db
      .select()
      .from(backupRuns)
      .where(and(eq(backupRuns.outcome, 'ok'), or(isNull(backupRuns.restoreOutcome), ne(backupRuns.restoreOutcome, 'failed'))))
      .orderBy(desc(backupRuns.id))
      .get();
    const since = lastGood?.finishedAt ?? firstPlanned(db);
    if (since && now.getTime() - since.getTime() > OVERDUE_MS) overdue = { since, lastGoodId: lastGood?.id ?? null };
  }
  return {
    enabled,
    nextAt: next?.runAt ?? null,
    running,
    lastBackup,
    lastVerified,
    failure,
    overdue,
    needsAttention: enabled && (failure !== null || overdue !== null),
  };
}

function failureOf(run: BackupRun, now: Date): BackupFailure | null {
  if (run.outcome === 'running') {
    // only an abandoned one reaches here
    const hours = Math.floor((now.getTime() - run.startedAt.getTime()) / 3_600_000);
    return { run, stage: 'backup', reason: `did not finish: started ${hours} hours ago, its process stopped` };
  }
  if (run.outcome === 'failed') return { run, stage: 'backup', reason: run.error ?? 'failed' };
  if (run.restoreOutcome === 'failed') return { run, stage: 'restore check', reason: run.restoreError ?? 'failed' };
  return null;
}

/** When scheduled backups were first planned: the reference for "overdue" before any backup was made. */
function firstPlanned(db: Db): Date | null {
  const row = db
    .select({ at: min(jobs.createdAt) })
    .from(jobs)
    .where(and(eq(jobs.kind, BACKUP_JOB_KIND), isNotNull(jobs.createdAt)))
    .get();
  return row?.at ?? null;
}

/** The backup jobs planned or running, soonest first. */
export function plannedBackupJobs(db: Db): { key: string; runAt: Date; status: 'pending' | 'running' }[] {
  return db
    .select({ key: jobs.key, runAt: jobs.runAt, status: jobs.status })
    .from(jobs)
    .where(and(eq(jobs.kind, BACKUP_JOB_KIND), inArray(jobs.status, ['pending', 'running'])))
    .orderBy(jobs.runAt)
    .all()
    .flatMap((j) => (j.status === 'pending' || j.status === 'running' ? [{ key: j.key, runAt: j.runAt, status: j.status }] : []));
}

/** Records that staff were told about the episode `key`; false when they already were. */
export function claimAlert(db: Db, key: string, kind: 'failed' | 'overdue', now: Date): boolean {
  return db.insert(backupAlerts).values({ key, kind, at: now }).onConflictDoNothing().returning().get() !== undefined;
}

export function noteAlertNotification(db: Db, key: string, notificationId: number): void {
  db.update(backupAlerts).set({ notificationId }).where(eq(backupAlerts.key, key)).run();
}
