import type { Database, Tx } from '../../../db/engine/types.ts';
import type { backupRuns } from '../../../db/schema.ts';
import {
  deleteRunningRun,
  failRunsStartedBefore,
  firstJobCreated,
  insertAlert,
  insertRun,
  liveBackupJobs,
  lockBackups,
  newestRunOfFile,
  newestRuns,
  newestRunThat,
  runById,
  setAlertNotification,
  updateRun,
} from '../../stores/backup-runs.ts';

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
export function claimRun(database: Database, slot: Date, takenBy: string, now: Date): Promise<BackupRun | undefined> {
  return database.transaction(async (tx) => {
    // Claims one node after the other (the insert alone is already safe: the unique slot).
    await lockBackups(tx);
    return insertRun(tx, slot, takenBy, now);
  });
}

/** Gives a slot back (the run was interrupted before writing anything), so the job's retry can take it. */
export async function releaseRun(database: Database, id: number): Promise<void> {
  // Conditional delete: only while it is still running.
  await database.transaction((tx) => deleteRunningRun(tx, id));
}

/**
 * Runs besides `current` still marked running after ABANDONED_MS: their process stopped before finishing.
 * A younger one may be live (another process taking another day's slot after a catch-up) and is left
 * running; the dashboard counts it abandoned after the same age (backupStatus).
 */
export function closeAbandoned(database: Database, current: number, now: Date): Promise<number> {
  // One conditional UPDATE: a run another node finishes meanwhile is no longer `running` and is left alone.
  return database.transaction(async (tx) => {
    await lockBackups(tx);
    return failRunsStartedBefore(tx, current, new Date(now.getTime() - ABANDONED_MS), now, 'did not finish: the process taking it stopped');
  });
}

export async function recordBackup(
  database: Database,
  id: number,
  result: { ok: true; file: string; bytes: number; counts: Record<string, number> } | { ok: false; file: string | null; error: string },
  now: Date,
): Promise<void> {
  await database.transaction((tx) =>
    updateRun(
      tx,
      id,
      result.ok
        ? { outcome: 'ok', finishedAt: now, file: result.file, bytes: result.bytes, counts: result.counts, error: null }
        : { outcome: 'failed', finishedAt: now, file: result.file, error: result.error.slice(0, 1000) },
    ),
  );
}

export async function recordRestoreCheck(
  database: Database,
  id: number,
  result: { ok: boolean; ms: number; error?: string },
  now: Date,
): Promise<void> {
  await database.transaction((tx) =>
    updateRun(tx, id, {
      restoreCheckedAt: now,
      restoreMs: result.ms,
      restoreOutcome: result.ok ? 'ok' : 'failed',
      restoreError: result.ok ? null : (result.error ?? 'failed').slice(0, 1000),
    }),
  );
}

export function getRun(database: Database, id: number): Promise<BackupRun | undefined> {
  return database.read((r) => runById(r, id));
}

/** A recorded run that wrote this file, for the counts its snapshot had. */
export function runOfFile(database: Database, file: string): Promise<BackupRun | undefined> {
  return database.read((r) => newestRunOfFile(r, file));
}

/** The newest run whose restore check passed. */
export function lastVerifiedRun(database: Database): Promise<BackupRun | undefined> {
  return database.read((r) => newestRunThat(r, 'verified'));
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

/** What the dashboard says about backups, read in one snapshot. */
export function backupStatus(database: Database, enabled: boolean, now: Date): Promise<BackupStatus> {
  return database.read(async (r) =>
    statusOf(
      {
        latest: await newestRuns(r, 2),
        lastBackup: await newestRunThat(r, 'written'),
        lastVerified: await newestRunThat(r, 'verified'),
        nextAt: (await liveBackupJobs(r, BACKUP_JOB_KIND)).find((j) => j.status === 'pending')?.runAt,
        // Only read when it counts: backups on.
        lastGood: enabled ? await newestRunThat(r, 'good') : undefined,
        firstPlanned: enabled ? await firstJobCreated(r, BACKUP_JOB_KIND) : null,
      },
      enabled,
      now,
    ),
  );
}

interface StatusFacts {
  /** the newest two runs, newest first */
  latest: BackupRun[];
  lastBackup: BackupRun | undefined;
  lastVerified: BackupRun | undefined;
  /** the soonest pending backup job */
  nextAt: Date | undefined;
  lastGood: BackupRun | undefined;
  firstPlanned: Date | null;
}

function statusOf(facts: StatusFacts, enabled: boolean, now: Date): BackupStatus {
  const newest = facts.latest[0];
  const abandoned = newest?.outcome === 'running' && now.getTime() - newest.startedAt.getTime() > ABANDONED_MS;
  const running = newest?.outcome === 'running' && !abandoned ? newest : null;
  // While one runs, the verdict is the previous one's.
  const finished = running ? facts.latest[1] : newest;
  const failure = finished ? failureOf(finished, now) : null;
  let overdue: BackupStatus['overdue'] = null;
  if (enabled) {
    // A backup that does not restore is no backup: the last good one was written and has not failed its check.
    const since = facts.lastGood?.finishedAt ?? facts.firstPlanned;
    if (since && now.getTime() - since.getTime() > OVERDUE_MS) overdue = { since, lastGoodId: facts.lastGood?.id ?? null };
  }
  return {
    enabled,
    nextAt: facts.nextAt ?? null,
    running,
    lastBackup: facts.lastBackup ?? null,
    lastVerified: facts.lastVerified ?? null,
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

/** The backup jobs planned or running, soonest first. */
export function plannedBackupJobs(database: Database): Promise<{ key: string; runAt: Date; status: 'pending' | 'running' }[]> {
  return database.read((r) => liveBackupJobs(r, BACKUP_JOB_KIND));
}

/** Records that staff were told about the episode `key` in the caller's transaction; false when they already were. */
export function claimAlert(tx: Tx, key: string, kind: 'failed' | 'overdue', now: Date): Promise<boolean> {
  // The unique key: of two nodes, one inserts, the other finds it there.
  return insertAlert(tx, key, kind, now);
}

export function noteAlertNotification(tx: Tx, key: string, notificationId: number): Promise<void> {
  return setAlertNotification(tx, key, notificationId);
}
