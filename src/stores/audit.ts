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
import { and, desc, eq, sql } from 'drizzle-orm';
import { toInteger } from '../../db/engine/common.ts';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
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
