/**
 * Runs due jobs every 10 seconds (croner), in the server process or the
 * standalone worker, beside the dispatcher.
 */
import { Cron } from 'croner';
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
    db: context.db,
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

export function startJobRunner(context: AppContext, log: (line: string) => void): { stop: () => void; runNow: () => Promise<number> } {
  const handlers = jobHandlers(context);
  const runNow = () => runDueJobs(context.db, handlers, context.now(), log);
  // protect: a slow round is not started twice over itself
  const cron = new Cron('*/10 * * * * *', { protect: true }, async () => {
    await runNow();
  });
  // A job that came due while nothing was running goes now, not in ten seconds.
  void runNow();
  return { stop: () => cron.stop(), runNow };
}
