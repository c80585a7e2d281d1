/**
 * Durable jobs in SQLite. `schedule` upserts by key (rescheduling moves the
 * time); `runDueJobs` claims due jobs of the kinds it has handlers for with
 * a lease in one UPDATE … RETURNING, runs each handler, and marks it done in
 * the handler's own transaction where the handler needs exactly-once
 * effects. Runners with different handlers share the table: the daily
 * backup has its own, so a long backup never holds up a scheduled update.
 */
import type { Db } from '../../../db/client.ts';

export interface Job {
  id: number;
  key: string;
  kind: string;
  runAt: Date;
  payload: Record<string, unknown>;
  attempts: number;
}

export type JobHandler = (job: Job, now: Date) => Promise<void> | void;

const LEASE_MS = 5 * 60_000;
const MAX_ATTEMPTS = 5;

export function scheduleJob(db: Db, key: string, kind: string, runAt: Date, payload: Record<string, unknown>, now: Date): void {
  db.$client
    .prepare(
      `INSERT INTO jobs (key, kind, run_at, payload, status, attempts, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?)
       ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, run_at = excluded.run_at, payload = excluded.payload,
         status = 'pending', attempts = 0, locked_until = NULL, last_error = NULL, finished_at = NULL`,
    )
    .run(key, kind, runAt.getTime(), JSON.stringify(payload), now.getTime());
}

export function cancelJob(db: Db, key: string, now: Date): void {
  db.$client
    .prepare(`UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE key = ? AND status IN ('pending', 'running')`)
    .run(now.getTime(), key);
}

/** Marks a job done; call inside the handler's transaction to make its effect and its completion one. */
export function completeJob(db: Db, id: number, now: Date): void {
  db.$client.prepare(`UPDATE jobs SET status = 'done', finished_at = ?, locked_until = NULL WHERE id = ?`).run(now.getTime(), id);
}

export async function runDueJobs(
  db: Db,
  handlers: Readonly<Record<string, JobHandler>>,
  now: Date,
  log: (line: string) => void = () => {},
): Promise<number> {
  const sqlite = db.$client;
  const claimed = sqlite
    .prepare(
      `UPDATE jobs SET status = 'running', locked_until = ?, attempts = attempts + 1
       WHERE id IN (SELECT id FROM jobs WHERE ((status = 'pending' AND run_at <= ?) OR (status = 'running' AND locked_until < ?))
         AND kind IN (SELECT value FROM json_each(?)) ORDER BY run_at LIMIT 50)
       RETURNING id, key, kind, run_at, payload, attempts`,
    )
    .all(now.getTime() + LEASE_MS, now.getTime(), now.getTime(), JSON.stringify(Object.keys(handlers))) as {
    id: number;
    key: string;
    kind: string;
    run_at: number;
    payload: string;
    attempts: number;
  }[];
  for (const row of claimed) {
    const job: Job = {
      id: row.id,
      key: row.key,
      kind: row.kind,
      runAt: new Date(row.run_at),
      payload: JSON.parse(row.payload) as Record<string, unknown>,
      attempts: row.attempts,
    };
    const handler = handlers[job.kind];
    try {
      if (!handler) throw new Error(`no handler for job kind ${job.kind}`);
      await handler(job, now);
      completeJob(db, job.id, now);
    } catch (err) {
      const message = (err as Error).message.slice(0, 500);
      log(`job ${job.key} failed: ${message}`);
      const final = job.attempts >= MAX_ATTEMPTS;
      sqlite
        .prepare(`UPDATE jobs SET status = ?, last_error = ?, locked_until = NULL, run_at = ?, finished_at = ? WHERE id = ?`)
        .run(final ? 'failed' : 'pending', message, now.getTime() + 30_000 * 2 ** job.attempts, final ? now.getTime() : null, job.id);
    }
  }
  return claimed.length;
}
