/**
 * Runs due jobs every 10 seconds (croner), in the server process or the
 * standalone worker, beside the dispatcher; and, on its own timer so a long
 * one holds nothing else up, the daily backup: planned, run when due, and
 * staff told of a failed or overdue one (src/core/backup/schedule.ts).
 */
import { Cron } from 'croner';
import { legacyConnection } from '../../db/engine/sqlite.ts';
import { auditKeyring } from '../core/audit/key.ts';
import { alertStaff, type BackupDeps, backupJobHandlers, planBackups } from '../core/backup/schedule.ts';
import { announcementJobHandlers } from '../core/changes/announcements.ts';
import { noticeJobHandlers } from '../core/changes/notices.ts';
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
  };
}

export function backupDeps(context: AppContext, log: (line: string) => void, signal?: AbortSignal): BackupDeps {
  return {
    database: context.database,
    // The snapshot is SQLite's VACUUM INTO; on PostgreSQL the daily backup does not run in the server (README).
    db: legacyConnection(context.database),
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

  const stopping = new AbortController();
  let round: Promise<void> = Promise.resolve();
  let backups: Cron | undefined;
  if (context.database.engine === 'sqlite') {
    const deps = backupDeps(context, log, stopping.signal);
    const backupRound = () => {
      round = runBackupRound(deps).catch((err: unknown) => log(`backups: ${err instanceof Error ? err.message : String(err)}`));
      return round;
    };
    backups = new Cron('*/30 * * * * *', { protect: true }, backupRound);
    // At once, and planning first, so the dashboard knows the next backup as soon as the server serves.
    void backupRound();
  } else {
    // pg_dump must read every trust center's rows, which this node's role may not: back up from a host with
    // the owner's URL (`candor backup`, README "Backups and restore"), on a timer of the operator's.
    log('daily backups: not run by the server on PostgreSQL; schedule `candor backup` with the owner role given BYPASSRLS (README)');
  }
  return {
    stop: async () => {
      cron.stop();
      backups?.stop();
      // A backup under way stops between chunks and removes its files; its day is taken again at the next start.
      stopping.abort();
      await round;
    },
    runNow,
  };
}
