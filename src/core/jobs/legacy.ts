/**
 * The synchronous twins of scheduling, cancelling and completing a job (src/core/jobs/jobs.ts), for
 * callers not yet on the stores that write inside a synchronous transaction of the SQLite connection
 * (issue 15). Same names and behaviour; each goes when its last caller awaits the async one.
 */
import type { Db } from '../../../db/client.ts';

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
