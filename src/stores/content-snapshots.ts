/**
 * The published state of the subprocessor list and the docs as first recorded (`content_snapshots`),
 * on SQLite and PostgreSQL alike (issue 15; the convention is src/stores/rate-limits.ts's). What a
 * snapshot holds and when one is recorded is src/core/changes/snapshot.ts's; the published history
 * built on it is src/core/changes/history.ts's.
 *
 * Recording a baseline is a read-then-write ("is there one yet? if not, insert"): two nodes starting
 * at once must record one. `lockBaselines` comes first in that transaction: on PostgreSQL a
 * transaction-scoped advisory lock per trust center makes the second starter wait until the first
 * commits, and its check (a new statement, so a new snapshot under READ COMMITTED) then sees the
 * baseline. SQLite's transactions never interleave, so it needs none.
 */
import { and, asc, eq, min, sql } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { contentSnapshots } from '../../db/schema/content.ts';

export type SnapshotKind = (typeof contentSnapshots.$inferSelect)['kind'];

/** First half of the advisory lock key: "CSNP" (content snapshots); the second half is the trust center. */
const BASELINE_LOCK = 0x43534e50;

/** Holds recording of baselines to this transaction until it ends (PostgreSQL; SQLite is serialised already). */
export async function lockBaselines(tx: Tx): Promise<void> {
  if (tx.engine === 'sqlite') return;
  // Raw SQL: the builder has no advisory-lock functions.
  await tx.db.execute(sql`SELECT pg_advisory_xact_lock(${BASELINE_LOCK}, ${tx.trustCenter})`);
}

/** Whether any snapshot of `kind` was recorded. */
export async function hasSnapshot(r: Reader | Tx, kind: SnapshotKind): Promise<boolean> {
  const q = reading(r);
  const s = q.t.contentSnapshots;
  const rows = await q.db
    .select({ id: s.id })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.kind, kind)))
    .limit(1);
  return rows.length === 1;
}

export interface NewSnapshot {
  kind: SnapshotKind;
  /** JSON-shaped: what the list or the docs were */
  data: unknown;
  /** SHA-256 of `data` as JSON */
  hash: string;
  publishedAt: Date;
}

export async function insertSnapshot(tx: Tx, snapshot: NewSnapshot): Promise<number> {
  const q = query(tx);
  const s = q.t.contentSnapshots;
  const rows = await q.db
    .insert(s)
    .values({ ...snapshot, trustCenterId: q.trustCenter })
    .returning({ id: s.id });
  const row = rows[0];
  if (!row) throw new Error('the snapshot was not inserted');
  return row.id;
}

export interface Baseline {
  data: unknown;
  publishedAt: Date;
}

/** The first snapshot of `kind` (earliest published, then lowest id): where the published history begins. */
export async function baselineOf(r: Reader | Tx, kind: SnapshotKind): Promise<Baseline | undefined> {
  const q = reading(r);
  const s = q.t.contentSnapshots;
  // Ordered by the database: a time and an integer, neither null, sort alike on both engines.
  const rows = await q.db
    .select({ data: s.data, publishedAt: s.publishedAt })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.kind, kind)))
    .orderBy(asc(s.publishedAt), asc(s.id))
    .limit(1);
  return rows[0];
}

/** When the first snapshot of any kind was recorded, or null when none was. */
export async function firstSnapshotAt(r: Reader | Tx): Promise<Date | null> {
  const q = reading(r);
  const s = q.t.contentSnapshots;
  const rows = await q.db
    .select({ first: min(s.publishedAt) })
    .from(s)
    .where(eq(s.trustCenterId, q.trustCenter));
  return rows[0]?.first ?? null;
}
