/**
 * `candor worker`: the dispatcher alone, for running it as its own process
 * (start the server with CANDOR_WORKER=external). SIGTERM finishes the sends
 * in flight and hands back the rest.
 */

import { runDueJobs } from '../core/jobs/jobs.ts';
import { createDispatcher } from '../runtime/dispatcher.ts';
import { backupRound, jobHandlers, startJobRunner } from '../runtime/jobs.ts';
import { type CliCommand, CliError, openContext } from './command.ts';

export const worker: CliCommand = {
  name: ['worker'],
  usage: 'worker [--once]',
  summary: 'send queued notifications (until stopped, or --once until the queue is empty)',
  async run(args) {
    const once = args.includes('--once');
    const unknown = args.filter((a) => a !== '--once');
    if (unknown.length) throw new CliError(`unexpected argument: ${unknown.join(' ')}`, 2);
    const context = await openContext();
    const log = (line: string) => console.log(`[candor worker] ${line}`);
    const { dispatcher, description } = await createDispatcher(context, log);
    log(`channels: ${description}`);
    try {
      if (once) {
        log(`ran ${await runDueJobs(context.database, jobHandlers(context), context.now(), log)} due jobs`);
        // As in the server (startJobRunner): a due daily backup is taken (on PostgreSQL only with
        // CANDOR_BACKUP_DATABASE_URL; without it the day is planned and staff told when one is overdue).
        await backupRound(context, log)();
        log(`sent ${await dispatcher.drain()} deliveries`);
        return 0;
      }
      dispatcher.start();
      const jobs = startJobRunner(context, log);
      log(`running as ${dispatcher.owner}`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      log('stopping: finishing sends in flight');
      await Promise.all([jobs.stop(), dispatcher.stop()]);
      return 0;
    } finally {
      await context.database.close();
    }
  },
};
