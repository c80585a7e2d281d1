/**
 * The daily backup: at the configured UTC time (site.yaml
 * `policies.backups`) one process takes an encrypted backup into the
 * backups folder, checks that it restores (check.ts), keeps the newest
 * `keep` of the files it made, records the run in `backup_runs` and tells
 * staff about a failure, or about backups being overdue, once.
 *
 * The time is a durable job (`backups.run`, one per day, keyed by its
 * slot): a day whose time passed while nothing ran is caught up once at the
 * next start, not once per missed day. Running it is claimed twice over:
 * the job by its lease (jobs.ts) and the day by inserting its `backup_runs`
 * row, whose slot is unique, so a second process that picks the job up
 * (after a lease ran out during a long backup) finds the day taken.
 *
 * On SQLite the snapshot is the live file's (VACUUM INTO, backup.ts); on
 * PostgreSQL it is pg_dump's, and the check restores into a scratch
 * database (postgres.ts), both as the role CANDOR_BACKUP_DATABASE_URL names
 * (the owner given BYPASSRLS and CREATEDB), never the application role;
 * the run, its restore time and the audit entry still go through the live
 * database. A PostgreSQL node without that setting plans the backup and
 * alerts (so "overdue" is still told) but never takes one.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { Db } from '../../../db/client.ts';
import type { Database } from '../../../db/engine/types.ts';
import { BACKUP_DATABASE_URL } from '../../../db/engine/url.ts';
import { liveBackupJobs, lockBackups } from '../../stores/backup-runs.ts';
import type { AuditKeyring } from '../audit/key.ts';
import { writeAudit } from '../audit/log.ts';
import type { Config } from '../config/env.ts';
import type { Site } from '../content/schema.ts';
import { cancelJob, type JobHandler, scheduleJob } from '../jobs/jobs.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';
import { createBackup } from './backup.ts';
import { type CheckResult, checkBackup } from './check.ts';
import { backupCreated } from './events.ts';
import { BackupError } from './format.ts';
import { sweepLeftovers } from './leftovers.ts';
import { backupPostgres, checkPostgresBackup, otherDatabaseProblem } from './postgres.ts';
import {
  BACKUP_JOB_KIND,
  type BackupRun,
  type BackupStatus,
  backupStatus,
  claimAlert,
  claimRun,
  closeAbandoned,
  getRun,
  lastVerifiedRun,
  noteAlertNotification,
  recordBackup,
  recordRestoreCheck,
  releaseRun,
} from './runs.ts';

export type BackupPolicy = Site['policies']['backups'];

/** The files the schedule makes, and the only ones it ever deletes. */
export const SCHEDULED_FILE = /^candor-daily-\d{8}T\d{6}Z\.backup$/;
const DAY = 86_400_000;

/**
 * What the backup is taken from: on SQLite the live database's connection (the snapshot is VACUUM INTO);
 * on PostgreSQL the URL of a role that may dump every row and create the check's scratch database.
 */
export type BackupSource =
  | {
      /** its SQLite connection, for the snapshot (VACUUM INTO), not on the stores yet */
      db: Db;
      backupUrl?: undefined;
    }
  | {
      db?: undefined;
      /** CANDOR_BACKUP_DATABASE_URL: pg_dump and the restore check connect as this role */
      backupUrl: string;
      /** CANDOR_DATABASE_URL: the database the backup must be of */
      appUrl: string;
    };

export type BackupDeps = BackupSource & {
  /** the live database: the runs, the audit entry and the alerts go through it */
  database: Database;
  dataDir: string;
  policy: BackupPolicy;
  /** the encryption keyring: the current key (which encrypts) first */
  keys: readonly Buffer[];
  secret: string;
  auditKeys: AuditKeyring;
  /** who is told when a backup fails or is overdue */
  staff: StaffChannels & { publicUrl: URL };
  now: () => Date;
  log: (line: string) => void;
  /** aborted when the process stops: the run gives its day back and the job tries again */
  signal?: AbortSignal;
  /** called between writing a backup and checking it; tests damage the file here */
  afterWrite?: (file: string) => void;
};

/**
 * Whether this process takes the daily backup: always on SQLite; on PostgreSQL only with
 * CANDOR_BACKUP_DATABASE_URL set (the application role may neither dump every row nor create a database).
 */
export function takesScheduledBackups(config: Pick<Config, 'database' | 'backupDatabaseUrl'>): boolean {
  return config.database.engine === 'sqlite' || config.backupDatabaseUrl !== undefined;
}

/**
 * Whether what is recorded fits "no node takes the daily backup", as seen by a node that takes none
 * itself (`takesScheduledBackups`): backups are enabled and no node has recorded a run. A node without
 * the setting in a cluster where another node takes the backups (its runs are recorded) must not say
 * backups are not configured, nor blame that for an overdue or failed one.
 */
export function noNodeTakesBackups(thisNodeTakes: boolean, status: BackupStatus): boolean {
  return !thisNodeTakes && status.enabled && !status.lastBackup && !status.failure && !status.running;
}

/** What start-up logs and the dashboard says on PostgreSQL when CANDOR_BACKUP_DATABASE_URL is unset. */
export const NOT_CONFIGURED =
  `scheduled backups are not configured: ${BACKUP_DATABASE_URL} is unset, so this server takes no daily backup on PostgreSQL; ` +
  'set it to the owner role given BYPASSRLS and CREATEDB (README, Running on PostgreSQL)';

export function backupDirectory(policy: BackupPolicy, dataDir: string): string {
  return isAbsolute(policy.directory) ? policy.directory : resolve(dataDir, policy.directory);
}

/** The first time after `after` that the clock reads `time` (HH:MM) in UTC. */
export function nextSlot(after: Date, time: string): Date {
  const [hours = 0, minutes = 0] = time.split(':').map(Number);
  const day = Date.UTC(after.getUTCFullYear(), after.getUTCMonth(), after.getUTCDate());
  const today = day + (hours * 60 + minutes) * 60_000;
  return new Date(today > after.getTime() ? today : today + DAY);
}

const jobKey = (slot: Date) => `backups:${slot.toISOString()}`;
const slotOf = (key: string) => new Date(key.slice('backups:'.length));

/**
 * Makes sure the next backup is planned at the configured time, once.
 * A planned backup already due (the time passed while nothing ran) or
 * running is left alone; one planned at another time (the setting
 * changed) is moved; with backups disabled, the plan is cancelled.
 * Returns when the next backup is due, or null.
 */
export function planBackups(database: Database, policy: BackupPolicy, now: Date): Promise<Date | null> {
  return database.transaction(async (tx) => {
    // Nodes plan one after the other (the backup lock, src/stores/backup-runs.ts): what one reads as planned is
    // what it changes. Scheduling is an upsert by key anyway, so even two plans at once leave one job per day.
    await lockBackups(tx);
    const planned = await liveBackupJobs(tx, BACKUP_JOB_KIND);
    if (!policy.enabled) {
      for (const job of planned) if (job.status === 'pending') await cancelJob(tx, job.key, now);
      return null;
    }
    // Due, running, or a past day's backup being retried (after an interruption): left to run.
    const current = planned.find((j) => j.status === 'running' || j.runAt <= now || slotOf(j.key) <= now);
    if (current) return current.runAt;
    const next = nextSlot(now, policy.time);
    for (const job of planned) if (job.key !== jobKey(next)) await cancelJob(tx, job.key, now);
    if (!planned.some((j) => j.key === jobKey(next)))
      await scheduleJob(tx, jobKey(next), BACKUP_JOB_KIND, next, { slot: next.getTime() }, now);
    return next;
  });
}

export function backupJobHandlers(deps: BackupDeps): Record<string, JobHandler> {
  return {
    [BACKUP_JOB_KIND]: async (job) => {
      // The day it is for, from its key: a retry runs later than planned but is still that day's backup.
      const slot = slotOf(job.key);
      await runScheduledBackup(deps, Number.isNaN(slot.getTime()) ? job.runAt : slot);
    },
  };
}

const stamp = (at: Date) =>
  at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/**
 * Takes the backup planned for `slot`, checks it, prunes and records it.
 * Returns the run, or null when another process has taken this day.
 * Failures are recorded, not thrown, except an interruption before the
 * file was written: then the day is given back and the job tries again.
 */
export async function runScheduledBackup(deps: BackupDeps, slot: Date): Promise<BackupRun | null> {
  const { database, policy } = deps;
  // The next day first: whatever happens to this one, the schedule goes on.
  if (policy.enabled) {
    const next = nextSlot(new Date(Math.max(deps.now().getTime(), slot.getTime())), policy.time);
    await database.transaction((tx) => scheduleJob(tx, jobKey(next), BACKUP_JOB_KIND, next, { slot: next.getTime() }, deps.now()));
  }
  const run = await claimRun(database, slot, `${hostname()}:${process.pid}`, deps.now());
  if (!run) return null;
  await closeAbandoned(database, run.id, deps.now());
  // A crashed run's plaintext copy goes before this run makes its own (leftovers.ts: never a live run's).
  sweepLeftovers(deps.dataDir, deps.log);
  const folder = backupDirectory(policy, deps.dataDir);
  const file = join(folder, `candor-daily-${stamp(deps.now())}.backup`);
  let counts: Record<string, number>;
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const result = await writeBackup(deps, file);
    counts = result.counts;
    await recordBackup(database, run.id, { ok: true, file: result.file, bytes: result.bytes, counts }, deps.now());
    deps.log(`backup written: ${result.file} (${result.bytes} bytes)`);
  } catch (err) {
    if (deps.signal?.aborted) {
      await releaseRun(database, run.id);
      throw new Error('interrupted before the backup was written; it is taken again at the next start');
    }
    const message = err instanceof Error ? err.message : String(err);
    await recordBackup(database, run.id, { ok: false, file: null, error: message }, deps.now());
    deps.log(`backup FAILED: ${message}`);
    await alertStaff(deps);
    return (await getRun(database, run.id)) ?? null;
  }

  deps.afterWrite?.(file);
  const started = performance.now();
  try {
    const check = await checkWritten(deps, file, counts);
    await recordRestoreCheck(database, run.id, { ok: true, ms: check.ms }, deps.now());
    deps.log(`restore check passed: ${file} restored and verified in ${check.ms} ms (${check.auditEntries} audit entries)`);
  } catch (err) {
    // Stopped mid-check: the backup stands, unchecked.
    if (!deps.signal?.aborted) {
      const message = err instanceof Error ? err.message : String(err);
      await recordRestoreCheck(database, run.id, { ok: false, ms: Math.round(performance.now() - started), error: message }, deps.now());
      deps.log(`restore check FAILED: ${message}`);
    }
  }
  await prune(deps, folder);
  await alertStaff(deps);
  return (await getRun(database, run.id)) ?? null;
}

/** Writes the encrypted backup to `file` and records it in the audit log, by the scheduler. */
async function writeBackup(deps: BackupDeps, file: string): Promise<{ file: string; bytes: number; counts: Record<string, number> }> {
  const [key] = deps.keys;
  if (!key) throw new Error('no encryption key is configured');
  const common = { key, secret: deps.secret, file, now: deps.now, signal: deps.signal };
  if (deps.db) return createBackup({ ...common, db: deps.db, dataDir: deps.dataDir, userAgent: 'candor scheduler' });
  const elsewhere = await otherDatabaseProblem(deps.backupUrl, deps.appUrl);
  if (elsewhere) throw new BackupError(elsewhere);
  const result = await backupPostgres({ ...common, url: deps.backupUrl, setting: BACKUP_DATABASE_URL });
  // As createBackup does on SQLite: after the snapshot, which does not hold the entry recording it.
  await deps.database.transaction((tx) => writeAudit(tx, backupCreated(result, 'candor scheduler'), new Date(result.header.createdAt)));
  return result;
}

/** The restore check of the file just written: a scratch folder of the data dir on SQLite, a scratch database on PostgreSQL. */
function checkWritten(deps: BackupDeps, file: string, counts: Record<string, number>): Promise<CheckResult> {
  const common = { file, keys: deps.keys, auditKeys: deps.auditKeys, signal: deps.signal };
  if (deps.db) return checkBackup({ ...common, dataDir: deps.dataDir, expectedCounts: counts });
  // The counts compared are the ones sealed in the backup, read in pg_dump's snapshot: the same as `counts`.
  return checkPostgresBackup({ ...common, url: deps.backupUrl, setting: BACKUP_DATABASE_URL, log: deps.log });
}

/**
 * Keeps the newest `keep` scheduled files (by the time in their names) and
 * deletes older ones; never a file of another name, and never the newest
 * backup whose restore check passed, however many failed since.
 */
async function prune(deps: BackupDeps, folder: string): Promise<void> {
  try {
    const verified = (await lastVerifiedRun(deps.database))?.file ?? null;
    const files = readdirSync(folder)
      .filter((name) => SCHEDULED_FILE.test(name))
      .sort()
      .reverse();
    const removed: string[] = [];
    for (const name of files.slice(deps.policy.keep)) {
      if (join(folder, name) === verified) continue;
      rmSync(join(folder, name), { force: true });
      removed.push(name);
    }
    if (removed.length) deps.log(`backups pruned to the newest ${deps.policy.keep}: removed ${removed.join(', ')}`);
  } catch (err) {
    deps.log(`backups could not be pruned in ${folder}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Tells staff about the newest run's failure and about backups being
 * overdue, once per episode: a failed run is one, an overdue spell (until
 * the next good backup) another. The episode's row and the notice are one
 * transaction, so two processes looking at once send one notice.
 */
export async function alertStaff(
  deps: Pick<BackupDeps, 'database' | 'policy' | 'staff' | 'now'> & {
    /** this node takes no backup (PostgreSQL without CANDOR_BACKUP_DATABASE_URL): the overdue notice says why */
    notConfigured?: boolean;
  },
): Promise<string[]> {
  const now = deps.now();
  const status = await backupStatus(deps.database, deps.policy.enabled, now);
  const sent: string[] = [];
  const link = new URL('console', deps.staff.publicUrl).href;
  if (status.needsAttention && status.failure) {
    const { run, stage, reason } = status.failure;
    const subject = stage === 'backup' ? 'Backup failed' : 'Backup restore check failed';
    const when = `${run.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    const text = `${subject}: the scheduled backup of ${when}${run.file && stage !== 'backup' ? ` (${run.file})` : ''}: ${reason}. See the dashboard: ${link}`;
    if (await notify(deps, `failed:${run.id}`, 'failed', subject, text, now)) sent.push(`failed:${run.id}`);
  }
  // While a backup is being taken, its outcome is awaited rather than the spell announced.
  if (status.needsAttention && status.overdue && !status.running) {
    const { since, lastGoodId } = status.overdue;
    const hours = Math.floor((now.getTime() - since.getTime()) / 3_600_000);
    const subject = 'Backups overdue';
    const what = lastGoodId === null ? 'no scheduled backup has been made' : 'no good backup (written, and not failed its restore check)';
    const why = noNodeTakesBackups(!deps.notConfigured, status) ? ` Likely why: ${NOT_CONFIGURED}.` : '';
    const text = `${subject}: ${what} for ${hours} hours (since ${since.toISOString().slice(0, 16).replace('T', ' ')} UTC).${why} See the dashboard: ${link}`;
    const key = `overdue:${lastGoodId ?? 'never'}`;
    if (await notify(deps, key, 'overdue', subject, text, now)) sent.push(key);
  }
  return sent;
}

/**
 * The episode's row and the notice in one transaction: a notice is queued if and only if its episode
 * is recorded (the claim is the alert row's, `claimAlert`). It queues a row, no network I/O.
 */
function notify(
  deps: Pick<BackupDeps, 'database' | 'staff'>,
  key: string,
  kind: 'failed' | 'overdue',
  subject: string,
  text: string,
  now: Date,
): Promise<boolean> {
  return deps.database.transaction(async (tx) => {
    if (!(await claimAlert(tx, key, kind, now))) return false;
    const { notificationId } = await notifyStaff(tx, deps.staff, { kind: 'staff-backup', subject, text }, now);
    await noteAlertNotification(tx, key, notificationId);
    return true;
  });
}
