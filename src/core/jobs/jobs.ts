/**
 * Durable jobs (src/stores/jobs.ts). `scheduleJob` upserts by key (rescheduling moves the time);
 * `runDueJobs` claims due jobs of the kinds it has handlers for with a lease, in a transaction of its
 * own, then runs each handler outside any transaction (a handler may send, back up, or open its own
 * transactions), and marks it done — in the handler's own transaction where the handler needs
 * exactly-once effects (`completeJob(tx, …)` there). Runners with different handlers share the
 * table: the daily backup has its own, so a long backup never holds up a scheduled update. Any
 * number of runners on one PostgreSQL database claim disjoint jobs.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import { cancelJobRow, claimDueJobs, completeJobRow, failJobRow, insertJobIfAbsent, type JobRow, upsertJob } from '../../stores/jobs.ts';

export type Job = JobRow;

export type JobHandler = (job: Job, now: Date) => Promise<void> | void;

const LEASE_MS = 5 * 60_000;
const MAX_ATTEMPTS = 5;
const CLAIMED_AT_ONCE = 50;

export function scheduleJob(tx: Tx, key: string, kind: string, runAt: Date, payload: Record<string, unknown>, now: Date): Promise<void> {
  return upsertJob(tx, { key, kind, runAt, payload }, now);
}

/** Schedules a job of `key` that is never scheduled again once it exists, whatever became of it: true when added now. */
export function scheduleJobOnce(
  tx: Tx,
  key: string,
  kind: string,
  runAt: Date,
  payload: Record<string, unknown>,
  now: Date,
): Promise<boolean> {
  return insertJobIfAbsent(tx, { key, kind, runAt, payload }, now);
}

export async function cancelJob(tx: Tx, key: string, now: Date): Promise<void> {
  await cancelJobRow(tx, key, now);
}

/** Marks a job done; call inside the handler's transaction to make its effect and its completion one. */
export function completeJob(tx: Tx, id: number, now: Date): Promise<void> {
  return completeJobRow(tx, id, now);
}

export async function runDueJobs(
  database: Database,
  handlers: Readonly<Record<string, JobHandler>>,
  now: Date,
  log: (line: string) => void = () => {},
): Promise<number> {
  const claimed = await database.transaction((tx) =>
    claimDueJobs(tx, Object.keys(handlers), now, new Date(now.getTime() + LEASE_MS), CLAIMED_AT_ONCE),
  );
  for (const job of claimed) {
    const handler = handlers[job.kind];
    try {
      if (!handler) throw new Error(`no handler for job kind ${job.kind}`);
      await handler(job, now);
      await database.transaction((tx) => completeJobRow(tx, job.id, now));
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).slice(0, 500);
      log(`job ${job.key} failed: ${message}`);
      const final = job.attempts >= MAX_ATTEMPTS;
      await database.transaction((tx) => failJobRow(tx, job.id, message, new Date(now.getTime() + 30_000 * 2 ** job.attempts), final, now));
    }
  }
  return claimed.length;
}
