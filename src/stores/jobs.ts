/**
 * Durable jobs (`jobs`), on SQLite and PostgreSQL alike (the convention is src/stores/rate-limits.ts's).
 * One live job per key; due jobs are claimed with a lease so two runners (two nodes, or a node and
 * `candor worker`) never run one job at once: on PostgreSQL the claim skips rows another claim has
 * locked (`FOR UPDATE SKIP LOCKED`), on SQLite transactions never interleave. What a job does and
 * when it is retried is src/core/jobs/jobs.ts's.
 */
import { and, asc, eq, inArray, lt, lte, or, sql } from 'drizzle-orm';
import { affected, query } from '../../db/engine/query.ts';
import type { Tx } from '../../db/engine/types.ts';
import { jobs as pgJobs } from '../../db/schema-pg.ts';

export interface JobRow {
  id: number;
  key: string;
  kind: string;
  runAt: Date;
  payload: Record<string, unknown>;
  attempts: number;
}

/** Schedules `key` at `runAt`, replacing the job of that key whatever its state (rescheduling moves the time). */
export async function upsertJob(
  tx: Tx,
  job: { key: string; kind: string; runAt: Date; payload: Record<string, unknown> },
  now: Date,
): Promise<void> {
  const q = query(tx);
  const j = q.t.jobs;
  await q.db
    .insert(j)
    .values({ ...job, status: 'pending', attempts: 0, createdAt: now, trustCenterId: q.trustCenter })
    .onConflictDoUpdate({
      target: j.key,
      set: {
        kind: job.kind,
        runAt: job.runAt,
        payload: job.payload,
        status: 'pending',
        attempts: 0,
        lockedUntil: null,
        lastError: null,
        finishedAt: null,
      },
      // The key is unique on its own, not per trust center: never take over another trust center's job.
      setWhere: eq(j.trustCenterId, q.trustCenter),
    });
}

/**
 * Schedules `key` at `runAt` unless a job of that key exists in any state (pending, done, failed…):
 * true when this call added it. The key is unique, so of two runners adding it at once one wins.
 */
export async function insertJobIfAbsent(
  tx: Tx,
  job: { key: string; kind: string; runAt: Date; payload: Record<string, unknown> },
  now: Date,
): Promise<boolean> {
  const q = query(tx);
  const j = q.t.jobs;
  const added = await q.db
    .insert(j)
    .values({ ...job, status: 'pending', attempts: 0, createdAt: now, trustCenterId: q.trustCenter })
    .onConflictDoNothing({ target: j.key })
    .returning({ id: j.id });
  return added.length > 0;
}

/** Cancels the job of `key` unless it has finished; rows changed. */
export async function cancelJobRow(tx: Tx, key: string, now: Date): Promise<number> {
  const q = query(tx);
  const j = q.t.jobs;
  return affected(
    await q.db
      .update(j)
      .set({ status: 'cancelled', finishedAt: now })
      .where(and(eq(j.trustCenterId, q.trustCenter), eq(j.key, key), inArray(j.status, ['pending', 'running']))),
  );
}

export async function completeJobRow(tx: Tx, id: number, now: Date): Promise<void> {
  const q = query(tx);
  const j = q.t.jobs;
  await q.db
    .update(j)
    .set({ status: 'done', finishedAt: now, lockedUntil: null })
    .where(and(eq(j.trustCenterId, q.trustCenter), eq(j.id, id)));
}

/** Records a failed run: pending again at `retryAt`, or failed for good when `final`. */
export async function failJobRow(tx: Tx, id: number, error: string, retryAt: Date, final: boolean, now: Date): Promise<void> {
  const q = query(tx);
  const j = q.t.jobs;
  await q.db
    .update(j)
    .set({ status: final ? 'failed' : 'pending', lastError: error, lockedUntil: null, runAt: retryAt, finishedAt: final ? now : null })
    .where(and(eq(j.trustCenterId, q.trustCenter), eq(j.id, id)));
}

/**
 * Claims up to `limit` jobs of these kinds that are due (or whose lease ran out), earliest first:
 * each is marked running until `leaseUntil` and its attempt counted, and returned.
 */
export async function claimDueJobs(tx: Tx, kinds: readonly string[], now: Date, leaseUntil: Date, limit: number): Promise<JobRow[]> {
  if (kinds.length === 0) return [];
  const q = query(tx);
  const j = q.t.jobs;
  const due = (t: typeof j) =>
    and(
      eq(t.trustCenterId, q.trustCenter),
      inArray(t.kind, [...kinds]),
      or(and(eq(t.status, 'pending'), lte(t.runAt, now)), and(eq(t.status, 'running'), lt(t.lockedUntil, now))),
    );
  let ids: number[];
  if (tx.engine === 'postgres') {
    // The engines differ here: SQLite's builder has no `.for()`, nor needs it (its transactions never interleave).
    const rows = await tx.db
      .select({ id: pgJobs.id })
      .from(pgJobs)
      // The same columns as SQLite's table (the engine-parity test), as query.ts treats every table.
      .where(due(pgJobs as unknown as typeof j))
      .orderBy(asc(pgJobs.runAt), asc(pgJobs.id))
      .limit(limit)
      .for('update', { skipLocked: true });
    ids = rows.map((row) => row.id);
  } else {
    const rows = await q.db.select({ id: j.id }).from(j).where(due(j)).orderBy(asc(j.runAt), asc(j.id)).limit(limit);
    ids = rows.map((row) => row.id);
  }
  if (ids.length === 0) return [];
  const claimed = await q.db
    .update(j)
    .set({ status: 'running', lockedUntil: leaseUntil, attempts: sql`${j.attempts} + 1` })
    .where(and(eq(j.trustCenterId, q.trustCenter), inArray(j.id, ids)))
    .returning({ id: j.id, key: j.key, kind: j.kind, runAt: j.runAt, payload: j.payload, attempts: j.attempts });
  return claimed.sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || a.id - b.id);
}
