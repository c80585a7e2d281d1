/**
 * Runs due jobs every 10 seconds (croner), in the server process or the
 * standalone worker, beside the dispatcher; and, on its own timer so a long
 * one holds nothing else up, the daily backup: planned, run when due, and
 * staff told of a failed or overdue one (src/core/backup/schedule.ts); and,
 * hourly and at start, the warnings of documents about to expire
 * (src/core/documents/expiry.ts, once per cluster by the jobs' keys); every
 * 15 minutes, reviewers reminded of access requests that wait
 * (src/core/access/reminders.ts, once per request and working day) and
 * customers told of their grants ending within a week (src/core/access/grants.ts,
 * once per grant by a conditional UPDATE of expiry_notice_at). On
 * PostgreSQL the backup is taken as the role CANDOR_BACKUP_DATABASE_URL
 * names; without it this process only plans and alerts (README).
 */
import { Cron } from 'croner';
import { legacyConnection } from '../../db/engine/sqlite.ts';
import { BACKUP_DATABASE_URL, describeDatabaseUrl } from '../../db/engine/url.ts';
import { documentTitles, sendGrantExpiryNotices } from '../core/access/grants.ts';
import { remindWaitingRequests } from '../core/access/reminders.ts';
import { auditKeyring } from '../core/audit/key.ts';
import { backupRoleProblem, otherDatabaseProblem } from '../core/backup/postgres.ts';
import { alertStaff, type BackupDeps, backupJobHandlers, NOT_CONFIGURED, planBackups } from '../core/backup/schedule.ts';
import { announcementJobHandlers } from '../core/changes/announcements.ts';
import { noticeJobHandlers } from '../core/changes/notices.ts';
import { documentJobHandlers, planExpiryWarnings } from '../core/documents/expiry.ts';
import { maintenanceJobHandlers } from '../core/incidents/maintenance.ts';
import { incidentJobHandlers } from '../core/incidents/schedule.ts';
import { runDueJobs } from '../core/jobs/jobs.ts';
import { staffSlackOf } from '../core/notify/staff-recipients.ts';
import type { AppContext } from './context.ts';

export function jobHandlers(context: AppContext) {
  const staffSlack = staffSlackOf(context.config.providers.slack);
  const shared = {
    database: context.database,
    site: context.content.site,
    components: context.content.components,
    publicUrl: context.config.publicUrl,
  };
  return {
    ...incidentJobHandlers({
      ...shared,
      keys: context.keys,
      staffSlack,
    }),
    ...maintenanceJobHandlers({ ...shared, templates: context.content.templates }),
    ...noticeJobHandlers({ ...shared, keys: context.keys, staffSlack }),
    ...announcementJobHandlers({ ...shared, keys: context.keys, staffSlack }),
    ...documentJobHandlers({ database: context.database, staff: { keys: context.keys, staffSlack }, publicUrl: context.config.publicUrl }),
  };
}

/** Plans the warning of each document entering its warning window (at most once each, cluster-wide), then runs what is due. */
export async function documentExpiryRound(context: AppContext, runNow: () => Promise<number>): Promise<void> {
  const { documents, site } = context.content;
  const added = await planExpiryWarnings(context.database, documents, site.policies.documentExpiryWarningDays, context.now());
  if (added.length > 0) await runNow();
}

/** Emails each customer whose grant ends within the week, once per grant (cluster-wide); how many were told. */
export async function grantExpiryRound(context: AppContext): Promise<number> {
  const sent = await sendGrantExpiryNotices(
    {
      database: context.database,
      publicUrl: context.config.publicUrl,
      organisation: context.content.site.organisation.name,
      titles: documentTitles(context.content.documents),
    },
    context.now(),
  );
  return sent.length;
}

/** One round of access-request reminders (src/core/access/reminders.ts). */
export function accessReminderRound(context: AppContext): Promise<number> {
  return remindWaitingRequests(
    {
      database: context.database,
      staff: { keys: context.keys, staffSlack: staffSlackOf(context.config.providers.slack) },
      publicUrl: context.config.publicUrl,
      gated: context.content.documents.filter((d) => d.access === 'nda').map((d) => ({ slug: d.slug, title: d.title })),
    },
    context.now(),
  );
}

type CommonDeps = Omit<BackupDeps, 'db' | 'backupUrl'>;

/**
 * What the daily backup needs, or null when this process takes none: on SQLite the live file's
 * connection (VACUUM INTO); on PostgreSQL the role CANDOR_BACKUP_DATABASE_URL names (pg_dump and the
 * scratch database need rights the application role never has), or null without it.
 */
export function backupDeps(context: AppContext, log: (line: string) => void, signal?: AbortSignal): BackupDeps | null {
  const common = commonDeps(context, log, signal);
  if (context.database.engine === 'sqlite') return { ...common, db: legacyConnection(context.database) };
  const url = context.config.backupDatabaseUrl;
  const app = context.config.database;
  return url && app.engine === 'postgres' ? { ...common, backupUrl: url, appUrl: app.url } : null;
}

function commonDeps(context: AppContext, log: (line: string) => void, signal?: AbortSignal): CommonDeps {
  return {
    database: context.database,
    dataDir: context.config.dataDir,
    policy: context.content.site.policies.backups,
    keys: context.keys.keys,
    secret: context.secrets.secret,
    auditKeys: auditKeyring(context.secrets.secret, context.config.previousSecrets),
    staff: {
      keys: context.keys,
      staffSlack: staffSlackOf(context.config.providers.slack),
      publicUrl: context.config.publicUrl,
    },
    now: context.now,
    log,
    signal,
  };
}

/** One round of the backup timer: plan, run a due backup, tell staff of a problem. */
export async function runBackupRound(deps: BackupDeps): Promise<void> {
  await planBackups(deps.database, deps.policy, deps.now());
  await runDueJobs(deps.database, backupJobHandlers(deps), deps.now(), deps.log);
  await alertStaff(deps);
}

/**
 * One round of the backup timer of a process that takes no backup (PostgreSQL without
 * CANDOR_BACKUP_DATABASE_URL): the day is still planned, so the dashboard knows one is expected and,
 * when none comes, staff are told it is overdue; the job is left to a process that takes backups.
 */
export async function planAndAlert(deps: CommonDeps): Promise<void> {
  await planBackups(deps.database, deps.policy, deps.now());
  await alertStaff({ ...deps, notConfigured: true });
}

/** The backup timer's round for this process: take a due backup, or only plan and alert (backupDeps). */
export function backupRound(context: AppContext, log: (line: string) => void, signal?: AbortSignal): () => Promise<void> {
  const deps = backupDeps(context, log, signal);
  if (deps) return () => runBackupRound(deps);
  const common = commonDeps(context, log, signal);
  return () => planAndAlert(common);
}

/** Start-up's line about the daily backup on PostgreSQL (and a setting SQLite ignores), then the backup role checked. */
function describeBackups(context: AppContext, log: (line: string) => void): void {
  const url = context.config.backupDatabaseUrl;
  const app = context.config.database;
  if (app.engine === 'sqlite') {
    if (url) log(`daily backups: ${BACKUP_DATABASE_URL} is ignored on SQLite (the backup is the data dir's candor.db)`);
    return;
  }
  if (!url) {
    log(`daily backups: ${NOT_CONFIGURED}`);
    return;
  }
  log(`daily backups: taken by this server as ${describeDatabaseUrl(url)} (${BACKUP_DATABASE_URL}), each day's by one node`);
  // Known now rather than at the first backup: unreachable, or lacking a right it needs.
  void (async () => {
    const problem = (await backupRoleProblem(url, BACKUP_DATABASE_URL)) ?? (await otherDatabaseProblem(url, app.url).catch(() => null));
    if (problem) log(`daily backups will fail: ${problem}`);
  })();
}

export function startJobRunner(
  context: AppContext,
  log: (line: string) => void,
): { stop: () => Promise<void>; runNow: () => Promise<number> } {
  const handlers = jobHandlers(context);
  const runNow = () => runDueJobs(context.database, handlers, context.now(), log);
  // protect: a slow round is not started twice over itself
  const cron = new Cron('*/10 * * * * *', { protect: true }, async () => {
    await runNow();
  });
  // A job that came due while nothing was running goes now, not in ten seconds.
  void runNow();

  const expiryTick = () =>
    documentExpiryRound(context, runNow).catch((err: unknown) =>
      log(`document expiry warnings: ${err instanceof Error ? err.message : String(err)}`),
    );
  const expiries = new Cron('17 * * * *', { protect: true }, expiryTick);
  void expiryTick();

  const grantTick = async () => {
    await grantExpiryRound(context).catch((err: unknown) =>
      log(`grant expiry notices: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  const grantNotices = new Cron('*/15 * * * *', { protect: true }, grantTick);
  void grantTick();
  const reminderTick = async (): Promise<void> => {
    await accessReminderRound(context).catch((err: unknown) =>
      log(`access request reminders: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  const reminders = new Cron('*/15 * * * *', { protect: true }, reminderTick);
  void reminderTick();

  const stopping = new AbortController();
  let round: Promise<void> = Promise.resolve();
  describeBackups(context, log);
  const oneRound = backupRound(context, log, stopping.signal);
  const backupTick = () => {
    round = oneRound().catch((err: unknown) => log(`backups: ${err instanceof Error ? err.message : String(err)}`));
    return round;
  };
  const backups = new Cron('*/30 * * * * *', { protect: true }, backupTick);
  // At once, and planning first, so the dashboard knows the next backup as soon as the server serves.
  void backupTick();
  return {
    stop: async () => {
      cron.stop();
      backups.stop();
      expiries.stop();
      grantNotices.stop();
      reminders.stop();
      // A backup under way stops between chunks and removes its files; its day is taken again at the next start.
      stopping.abort();
      await round;
    },
    runNow,
  };
}
