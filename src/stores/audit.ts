/**
 * The audit log's tables (`audit_log`, `audit_purges`, `audit_chain_upgrade`) for appending to the
 * chain on SQLite and PostgreSQL alike; what an entry holds and how it is sealed is
 * src/core/audit/log.ts's. Convention: src/stores/rate-limits.ts.
 *
 * One chain, one writer at a time: `lockChain` comes first in every transaction that appends. On
 * SQLite the transaction's `BEGIN IMMEDIATE` already excludes every other writer; on PostgreSQL,
 * where transactions run concurrently, a transaction-scoped advisory lock per trust center makes
 * the next writer wait until this one commits or rolls back, so no two entries link to the same
 * predecessor (tests/integration/audit-concurrency.test.ts).
 */
import { and, asc, desc, eq, gt, gte, lt, lte, type SQL, sql } from 'drizzle-orm';
import { toInteger } from '../../db/engine/common.ts';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { auditRepeats } from '../../db/schema.ts';
import type { AuditEntry } from '../core/audit/log.ts';

/** First half of the advisory lock key: "audit chain" (the second half is the trust center). */
const CHAIN_LOCK = 0x41554454;

export async function lockChain(tx: Tx): Promise<void> {
  if (tx.engine === 'sqlite') return;
  // Raw SQL: the builder has no advisory-lock functions.
  await tx.db.execute(sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK}, ${tx.trustCenter})`);
}

export interface LastEntry {
  id: number;
  hash: string;
  keyId: string | null;
}

export async function lastEntry(r: Reader | Tx): Promise<LastEntry | undefined> {
  const q = reading(r);
  const a = q.t.auditLog;
  const rows = await q.db
    .select({ id: a.id, hash: a.hash, keyId: a.keyId })
    .from(a)
    .where(eq(a.trustCenterId, q.trustCenter))
    .orderBy(desc(a.id))
    .limit(1);
  return rows[0];
}

export async function newestPurge(r: Reader | Tx): Promise<{ upToId: number; lastHash: string } | undefined> {
  const q = reading(r);
  const p = q.t.auditPurges;
  const rows = await q.db
    .select({ upToId: p.upToId, lastHash: p.lastHash })
    .from(p)
    .where(eq(p.trustCenterId, q.trustCenter))
    .orderBy(desc(p.upToId), desc(p.id))
    .limit(1);
  return rows[0];
}

/** The highest id the log's sequence has ever issued (0 before the first), so an id is never reused. */
export async function highestIssuedId(r: Reader | Tx): Promise<number> {
  // Raw SQL per engine: neither builder reads sequences.
  if (r.engine === 'sqlite') {
    const rows = await r.db.all<{ seq: number }>(sql`SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'`);
    return rows[0]?.seq ?? 0;
  }
  const { rows } = await r.db.execute<{ seq: string | number | null }>(
    sql`SELECT pg_sequence_last_value(pg_get_serial_sequence('audit_log', 'id')::regclass) AS seq`,
  );
  const seq = rows[0]?.seq ?? null;
  return seq === null ? 0 : toInteger(seq);
}

/** Takes the upgrade note for `lastPlainId` (deleting it); false when there is none. */
export async function takeUpgradeNote(tx: Tx, lastPlainId: number): Promise<boolean> {
  const q = query(tx);
  const u = q.t.auditChainUpgrade;
  const mine = and(eq(u.trustCenterId, q.trustCenter), eq(u.lastPlainId, lastPlainId));
  const rows = await q.db.select({ id: u.lastPlainId }).from(u).where(mine).limit(1);
  if (rows.length === 0) return false;
  await q.db.delete(u).where(eq(u.trustCenterId, q.trustCenter));
  return true;
}

/** Writes an entry exactly as given (its id and MACs computed by the chain), in the tx's trust center. */
export async function insertEntry(tx: Tx, entry: AuditEntry): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.auditLog).values({ ...entry, trustCenterId: q.trustCenter });
}

// ---------------------------------------------------------------------------
// Reading the log (console listing, export, verification) and the retention purge.

/** What the console and the export narrow the log by; `from` inclusive, `to` exclusive. */
export interface EntryFilter {
  actorId?: number;
  action?: string;
  from?: Date;
  to?: Date;
}

function entryConditions(q: ReturnType<typeof reading>, filter: EntryFilter): SQL[] {
  const a = q.t.auditLog;
  const where: SQL[] = [eq(a.trustCenterId, q.trustCenter)];
  if (filter.actorId !== undefined) where.push(eq(a.actorId, filter.actorId));
  if (filter.action !== undefined) where.push(eq(a.action, filter.action));
  if (filter.from !== undefined) where.push(gte(a.at, filter.from));
  if (filter.to !== undefined) where.push(lt(a.at, filter.to));
  return where;
}

/** Entries matching the filter, newest first, below `beforeId` when given (keyset paging). */
export async function entriesNewestFirst(
  r: Reader | Tx,
  filter: EntryFilter,
  beforeId: number | undefined,
  limit: number,
): Promise<AuditEntry[]> {
  const q = reading(r);
  const a = q.t.auditLog;
  const where = entryConditions(q, filter);
  if (beforeId !== undefined) where.push(lt(a.id, beforeId));
  return q.db
    .select()
    .from(a)
    .where(and(...where))
    .orderBy(desc(a.id))
    .limit(limit);
}

/** Entries matching the filter with `afterId < id <= upToId`, oldest first (the export's keyset pages). */
export async function entriesOldestFirst(
  r: Reader | Tx,
  filter: EntryFilter,
  range: { afterId: number; upToId: number },
  limit: number,
): Promise<AuditEntry[]> {
  const q = reading(r);
  const a = q.t.auditLog;
  return q.db
    .select()
    .from(a)
    .where(and(...entryConditions(q, filter), gt(a.id, range.afterId), lte(a.id, range.upToId)))
    .orderBy(asc(a.id))
    .limit(limit);
}

/** One entry by id, as stored. */
export async function entryById(r: Reader | Tx, id: number): Promise<AuditEntry | undefined> {
  const q = reading(r);
  const a = q.t.auditLog;
  const rows = await q.db
    .select()
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id)))
    .limit(1);
  return rows[0];
}

/** An entry as the verifier reads it: `at` in milliseconds, `summary` as the stored JSON text. */
export interface ChainRow {
  id: number;
  at: number;
  actorType: string;
  actorId: number | null;
  actorLabel: string | null;
  ip: string | null;
  userAgent: string | null;
  action: string;
  target: string | null;
  summary: string;
  prevHash: string;
  hash: string;
  keyId: string | null;
}

/** A page of the chain after `afterId`, in id order, for verification. */
export async function chainRowsAfter(r: Reader | Tx, afterId: number, limit: number): Promise<ChainRow[]> {
  const q = reading(r);
  const a = q.t.auditLog;
  // The summary as stored text, not parsed by the column's mapping: a summary that is not JSON is the
  // verifier's to report. Raw SQL for that one column: SQLite's text as is, PostgreSQL's jsonb cast.
  const summary = q.engine === 'sqlite' ? sql<string>`${a.summary}` : sql<string>`${a.summary}::text`;
  const rows = await q.db
    .select({
      id: a.id,
      at: a.at,
      actorType: a.actorType,
      actorId: a.actorId,
      actorLabel: a.actorLabel,
      ip: a.ip,
      userAgent: a.userAgent,
      action: a.action,
      target: a.target,
      summary,
      prevHash: a.prevHash,
      hash: a.hash,
      keyId: a.keyId,
    })
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), gt(a.id, afterId)))
    .orderBy(asc(a.id))
    .limit(limit);
  return rows.map((row) => ({ ...row, at: row.at.getTime() }));
}

/** The newest entry written before `cutoff` (where a retention purge ends). */
export async function newestEntryBefore(r: Reader | Tx, cutoff: Date): Promise<{ id: number; hash: string } | undefined> {
  const q = reading(r);
  const a = q.t.auditLog;
  const rows = await q.db
    .select({ id: a.id, hash: a.hash })
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), lt(a.at, cutoff)))
    .orderBy(desc(a.id))
    .limit(1);
  return rows[0];
}

/** How many entries have an id up to `id`. */
export async function countEntriesUpTo(r: Reader | Tx, id: number): Promise<number> {
  const q = reading(r);
  const a = q.t.auditLog;
  return q.db.$count(a, and(eq(a.trustCenterId, q.trustCenter), lte(a.id, id)));
}

/** Records a purge: the triggers let entries up to `upToId` be deleted only once this row exists. */
export async function insertPurge(tx: Tx, purge: { at: Date; upToId: number; lastHash: string; removed: number }): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.auditPurges).values({ ...purge, trustCenterId: q.trustCenter });
}

/** Deletes the entries up to `upToId` (covered by a purge record); how many. */
export async function deleteEntriesUpTo(tx: Tx, upToId: number): Promise<number> {
  const q = query(tx);
  const a = q.t.auditLog;
  return affected(await q.db.delete(a).where(and(eq(a.trustCenterId, q.trustCenter), lte(a.id, upToId))));
}

// ---------------------------------------------------------------------------
// Repeat windows (`audit_repeats`, src/core/audit/repeats.ts): refusals counted outside the chain.

export type RepeatWindowRow = typeof auditRepeats.$inferSelect;

/** The windows closing at or before `now` (every window when null), oldest first. */
export async function dueWindows(r: Reader | Tx, now: Date | null): Promise<RepeatWindowRow[]> {
  const q = reading(r);
  const w = q.t.auditRepeats;
  const mine = eq(w.trustCenterId, q.trustCenter);
  return q.db
    .select()
    .from(w)
    .where(now === null ? mine : and(mine, lte(w.closesAt, now)))
    .orderBy(asc(w.id));
}

export async function deleteWindow(tx: Tx, id: number): Promise<void> {
  const q = query(tx);
  const w = q.t.auditRepeats;
  await q.db.delete(w).where(and(eq(w.trustCenterId, q.trustCenter), eq(w.id, id)));
}

/** Windows that counted repeats not yet in the chain, the busiest first. */
export async function windowsWithRepeats(r: Reader | Tx, limit: number): Promise<RepeatWindowRow[]> {
  const q = reading(r);
  const w = q.t.auditRepeats;
  return q.db
    .select()
    .from(w)
    .where(and(eq(w.trustCenterId, q.trustCenter), gt(w.repeats, 0)))
    .orderBy(desc(w.repeats), asc(w.id))
    .limit(limit);
}

/** JSON inside the summary, which neither builder reads: raw SQL per engine. */
function repeatedTimes(q: ReturnType<typeof reading>): SQL {
  const a = q.t.auditLog;
  return q.engine === 'sqlite' ? sql`json_extract(${a.summary}, '$.repeated.times')` : sql`(${a.summary} #>> '{repeated,times}')::bigint`;
}

/** `summary.repeated.after` is `id` (compared as text on PostgreSQL, so a summary holding anything else never fails the cast). */
function repeatsAfter(q: ReturnType<typeof reading>, id: number): SQL {
  const a = q.t.auditLog;
  return q.engine === 'sqlite'
    ? sql`json_extract(${a.summary}, '$.repeated.after') = ${id}`
    : sql`${a.summary} #>> '{repeated,after}' = ${String(id)}`;
}

/** A later entry that closed the window of entry `firstId` (its `summary.repeated.after`), if any. */
export async function closingEntryOf(r: Reader | Tx, firstId: number, action: string): Promise<number | undefined> {
  const q = reading(r);
  const a = q.t.auditLog;
  const rows = await q.db
    .select({ id: a.id })
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), gt(a.id, firstId), eq(a.action, action), repeatsAfter(q, firstId)))
    .limit(1);
  return rows[0]?.id;
}

/** How many times `action` was logged since `since`, a closing entry counting its `repeated.times`. */
export async function timesLogged(r: Reader | Tx, action: string, since: Date): Promise<number> {
  const q = reading(r);
  const a = q.t.auditLog;
  const rows = await q.db
    .select({ n: sql<number | string>`COALESCE(SUM(COALESCE(${repeatedTimes(q)}, 1)), 0)` })
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action), gte(a.at, since)));
  return toInteger(rows[0]?.n ?? 0);
}

/** Repeats of `action` counted in open windows. */
export async function repeatsCounted(r: Reader | Tx, action: string): Promise<number> {
  const q = reading(r);
  const w = q.t.auditRepeats;
  const rows = await q.db
    .select({ n: sql<number | string>`COALESCE(SUM(${w.repeats}), 0)` })
    .from(w)
    .where(and(eq(w.trustCenterId, q.trustCenter), eq(w.action, action)));
  return toInteger(rows[0]?.n ?? 0);
}

/** The open window of refusals with this fingerprint, if any. */
export async function windowByFingerprint(r: Reader | Tx, fingerprint: string): Promise<RepeatWindowRow | undefined> {
  const q = reading(r);
  const w = q.t.auditRepeats;
  const rows = await q.db
    .select()
    .from(w)
    .where(and(eq(w.trustCenterId, q.trustCenter), eq(w.fingerprint, fingerprint)))
    .limit(1);
  return rows[0];
}

/**
 * Counts one more repeat in window `id` at `now`: `firstRepeatAt` is the window's, or `now` for its
 * first repeat; `addresses` replaces the window's when given. The count is incremented in the statement
 * itself. Returns the repeats counted so far, or undefined when the window is gone.
 */
export async function countRepeat(
  tx: Tx,
  id: number,
  at: { firstRepeatAt: Date; now: Date },
  addresses: string[] | null,
): Promise<number | undefined> {
  const q = query(tx);
  const w = q.t.auditRepeats;
  const rows = await q.db
    .update(w)
    .set({
      repeats: sql`${w.repeats} + 1`,
      firstRepeatAt: at.firstRepeatAt,
      lastRepeatAt: at.now,
      ...(addresses === null ? {} : { addresses }),
    })
    .where(and(eq(w.trustCenterId, q.trustCenter), eq(w.id, id)))
    .returning({ repeats: w.repeats });
  return rows[0]?.repeats;
}

/** Opens a window (its first entry already appended). */
export async function insertWindow(tx: Tx, window: Omit<typeof auditRepeats.$inferInsert, 'id' | 'trustCenterId'>): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.auditRepeats).values({ ...window, trustCenterId: q.trustCenter });
}
