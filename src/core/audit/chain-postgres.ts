/**
 * The audit chain verified on PostgreSQL: the same checks as on SQLite
 * (log.ts `auditChainCheck`, reached through `verifyAuditRowsAsync`), fed
 * from PostgreSQL — the rows in id order by keyset pages (never the whole
 * log in memory), the newest purge record, and the identity sequence's last
 * value as the highest id ever issued (what SQLite's `sqlite_sequence`
 * gives). Run it in one read (or the transaction that wrote the rows), so
 * the three are seen at the same instant.
 */
import { asc, desc, gt, sql } from 'drizzle-orm';
import { toInteger } from '../../../db/engine/common.ts';
import type { PgReadDb } from '../../../db/engine/types.ts';
import { auditLog, auditPurges } from '../../../db/schema-pg.ts';
import type { AuditKeyring } from './key.ts';
import { type AuditChainRow, type AuditChainStart, type AuditVerification, type VerifyOptions, verifyAuditRowsAsync } from './log.ts';

const PAGE = 1000;

/** A PostgreSQL reader or transaction: what the verifier reads through. */
export interface PgAuditSource {
  readonly db: PgReadDb;
}

export async function verifyAuditChainPostgres(
  q: PgAuditSource,
  keyring: AuditKeyring,
  options: VerifyOptions = {},
): Promise<AuditVerification> {
  return verifyAuditRowsAsync(await chainStart(q.db), auditRows(q.db), keyring, options);
}

async function chainStart(db: PgReadDb): Promise<AuditChainStart> {
  const [purge] = await db
    .select({ upToId: auditPurges.upToId, lastHash: auditPurges.lastHash })
    .from(auditPurges)
    .orderBy(desc(auditPurges.upToId), desc(auditPurges.id))
    .limit(1);
  // Raw SQL: the builder has no sequence functions. NULL until the sequence has issued an id.
  const { rows } = await db.execute<{ seq: string | number | null }>(
    sql`SELECT pg_sequence_last_value(pg_get_serial_sequence('audit_log', 'id')::regclass) AS seq`,
  );
  const seq = rows[0]?.seq ?? null;
  return { purge, highestIssued: seq === null ? 0 : toInteger(seq) };
}

async function* auditRows(db: PgReadDb): AsyncGenerator<AuditChainRow> {
  let after = 0;
  for (;;) {
    const page = await db
      .select({
        id: auditLog.id,
        at: auditLog.at,
        actorType: auditLog.actorType,
        actorId: auditLog.actorId,
        actorLabel: auditLog.actorLabel,
        ip: auditLog.ip,
        userAgent: auditLog.userAgent,
        action: auditLog.action,
        target: auditLog.target,
        // As stored text, like SQLite's: a summary that is not an object is the verifier's to report.
        summary: sql<string>`${auditLog.summary}::text`,
        prevHash: auditLog.prevHash,
        hash: auditLog.hash,
        keyId: auditLog.keyId,
      })
      .from(auditLog)
      .where(gt(auditLog.id, after))
      .orderBy(asc(auditLog.id))
      .limit(PAGE);
    for (const row of page) yield { ...row, at: row.at.getTime() };
    const last = page.at(-1);
    if (!last || page.length < PAGE) return;
    after = last.id;
  }
}
