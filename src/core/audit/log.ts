/**
 * The audit log: every staff action and security event, append-only and
 * hash-chained.
 *
 * Each entry stores `prevHash` (the previous entry's hash) and
 * `hash = sha256hex(prevHash + '\n' + canonicalJson(content))`, where the
 * content is every column but the two hashes and canonical JSON sorts keys
 * at every depth, so anyone can recompute the chain from the rows alone.
 * The first entry links to `GENESIS_HASH`; after a retention purge the
 * first remaining entry links to the purge record's `lastHash`.
 *
 * The database refuses UPDATE and DELETE (db/migrations/0002); the chain is
 * what catches changes made behind the triggers' back.
 */
import { createHash } from 'node:crypto';
import { and, asc, count, desc, eq, gt, gte, lt, lte, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { auditLog, auditPurges } from '../../../db/schema.ts';
import { csvRow } from '../text/csv.ts';
import { type AuditAction, isAuditAction } from './actions.ts';

export const GENESIS_HASH = '0'.repeat(64);

const USER_AGENT_MAX = 512;
// Addresses come from request headers; a forwarded-for chain can be long, an address cannot.
const IP_MAX = 100;
const QUERY_LIMIT_DEFAULT = 100;
const QUERY_LIMIT_MAX = 1000;
const EXPORT_PAGE = 1000;
const DAY_MS = 86_400_000;

/** Matched anywhere in a summary key, at any depth: the log must never hold a secret. */
const SECRET_KEY = /password|secret|token|code|totp|key|hash/i;

export type AuditActor = { type: 'staff'; id: number; label: string } | { type: 'system' } | { type: 'anonymous' };

export interface AuditInput {
  actor: AuditActor;
  ip?: string | null;
  userAgent?: string | null;
  action: AuditAction;
  /** what was acted on, e.g. `staff:12`, `incident:7` */
  target?: string | null;
  /** before/after summary; refused if any key looks like a secret */
  summary?: Record<string, unknown>;
}

export type AuditEntry = typeof auditLog.$inferSelect;

export interface AuditFilter {
  actorId?: number;
  action?: AuditAction;
  /** inclusive */
  from?: Date;
  /** exclusive */
  to?: Date;
  /** default 100, at most 1000 */
  limit?: number;
  /** keyset paging: pass the id of the last entry of the previous page */
  beforeId?: number;
}

export type AuditExportFilter = Pick<AuditFilter, 'actorId' | 'action' | 'from' | 'to'>;

export type AuditVerification = { ok: true; checked: number } | { ok: false; checked: number; firstBrokenId: number; reason: string };

export interface AuditPurgeResult {
  upToId: number;
  removed: number;
  /** the `audit.purged` entry recording it */
  entry: AuditEntry;
}

/** The part of an entry its hash covers. */
export interface AuditHashedContent {
  id: number;
  at: number;
  actorType: string;
  actorId: number | null;
  actorLabel: string | null;
  ip: string | null;
  userAgent: string | null;
  action: string;
  target: string | null;
  summary: unknown;
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** JSON with object keys sorted at every depth, so the same content always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries: [string, unknown][] = Object.entries(value);
    const fields = entries
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function entryHash(prevHash: string, content: AuditHashedContent): string {
  const { id, at, actorType, actorId, actorLabel, ip, userAgent, action, target, summary } = content;
  const canonical = canonicalJson({ id, at, actorType, actorId, actorLabel, ip, userAgent, action, target, summary });
  return createHash('sha256').update(`${prevHash}\n${canonical}`).digest('hex');
}

/**
 * Appends one entry. The chain head is read and the entry written inside
 * one immediate transaction, so concurrent writers (server and worker) can
 * never both link to the same predecessor.
 */
export function recordAudit(db: Db, input: AuditInput, now: Date): AuditEntry {
  return db.transaction((tx) => append(tx, input, now), { behavior: 'immediate' });
}

/** Entries matching the filter, newest first. */
export function queryAudit(db: Db, filter: AuditFilter = {}): AuditEntry[] {
  const limit = Math.min(Math.max(Math.floor(filter.limit ?? QUERY_LIMIT_DEFAULT), 1), QUERY_LIMIT_MAX);
  const where = [...filterConditions(filter)];
  if (filter.beforeId !== undefined) where.push(lt(auditLog.id, filter.beforeId));
  return db
    .select()
    .from(auditLog)
    .where(and(...where))
    .orderBy(desc(auditLog.id))
    .limit(limit)
    .all();
}

/**
 * Recomputes the chain from the oldest remaining entry, streaming rows so a
 * large log is never held in memory, and names the first entry that does
 * not hold up.
 */
export function verifyAuditChain(db: Db): AuditVerification {
  // One read transaction: the purge record, the rows and the sequence are seen at the same instant.
  return db.transaction(
    (tx) => {
      const purge = newestPurge(tx);
      const highestIssued = sequenceOf(tx);
      const start = purge ? `the last purged entry (#${purge.upToId})` : 'the start of the log';
      let expectedId = (purge?.upToId ?? 0) + 1;
      let prevHash = purge?.lastHash ?? GENESIS_HASH;
      let checked = 0;
      const rows = db.$client
        .prepare<[], RawRow>(
          `SELECT id, at, actor_type, actor_id, actor_label, ip, user_agent, action, target, summary, prev_hash, hash
           FROM audit_log ORDER BY id`,
        )
        .iterate();
      // Returning from inside the loop closes the iterator, which frees the connection again.
      for (const row of rows) {
        const broken = (firstBrokenId: number, reason: string): AuditVerification => ({ ok: false, checked, firstBrokenId, reason });
        if (row.id < expectedId) {
          const why = purge
            ? `is covered by the purge up to #${purge.upToId.toString()} but still present`
            : 'has an id the log never issues';
          return broken(row.id, `entry ${why}`);
        }
        if (row.id > expectedId) return broken(expectedId, `${missing(expectedId, row.id - 1)} (removed outside a recorded purge)`);
        if (row.prev_hash !== prevHash) {
          const predecessor = row.id === (purge?.upToId ?? 0) + 1 ? start : `entry #${(row.id - 1).toString()}`;
          return broken(row.id, `chain link broken: its previous hash does not match the hash of ${predecessor}`);
        }
        let summary: unknown;
        try {
          summary = JSON.parse(row.summary);
        } catch {
          return broken(row.id, 'content altered: its summary is not valid JSON');
        }
        const content: AuditHashedContent = {
          id: row.id,
          at: row.at,
          actorType: row.actor_type,
          actorId: row.actor_id,
          actorLabel: row.actor_label,
          ip: row.ip,
          userAgent: row.user_agent,
          action: row.action,
          target: row.target,
          summary,
        };
        if (entryHash(row.prev_hash, content) !== row.hash) {
          return broken(row.id, 'content altered: its stored hash does not match its content');
        }
        prevHash = row.hash;
        expectedId = row.id + 1;
        checked++;
      }
      // AUTOINCREMENT remembers the highest id ever issued, which betrays entries cut from the end.
      if (highestIssued >= expectedId) {
        return {
          ok: false,
          checked,
          firstBrokenId: expectedId,
          reason: `${missing(expectedId, highestIssued)} (the newest entries were removed)`,
        };
      }
      return { ok: true, checked };
    },
    { behavior: 'deferred' },
  );
}

/**
 * Removes entries older than the retention, keeping the chain verifiable:
 * the purge record (written before the delete, which the trigger requires)
 * keeps the hash of the last removed entry, where verification then starts.
 * Returns null when nothing is old enough.
 */
export function purgeAudit(db: Db, retentionDays: number, now: Date): AuditPurgeResult | null {
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw new Error(`audit retention must be a whole number of days, at least 1; got ${String(retentionDays)}`);
  }
  const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
  return db.transaction(
    (tx) => {
      // The chain can only lose a prefix, so the purge ends at the newest old entry.
      const last = tx
        .select({ id: auditLog.id, hash: auditLog.hash })
        .from(auditLog)
        .where(lt(auditLog.at, cutoff))
        .orderBy(desc(auditLog.id))
        .limit(1)
        .get();
      if (!last) return null;
      const removed = tx.select({ n: count() }).from(auditLog).where(lte(auditLog.id, last.id)).get()?.n ?? 0;
      tx.insert(auditPurges).values({ at: now, upToId: last.id, lastHash: last.hash, removed }).run();
      tx.delete(auditLog).where(lte(auditLog.id, last.id)).run();
      const entry = append(
        tx,
        {
          actor: { type: 'system' },
          action: 'audit.purged',
          target: 'audit_log',
          summary: { upToId: last.id, removed, retentionDays, cutoff: cutoff.toISOString() },
        },
        now,
      );
      return { upToId: last.id, removed, entry };
    },
    { behavior: 'immediate' },
  );
}

/**
 * The entries matching the filter as CSV (RFC 4180, with a header row) or
 * JSON (an array, ISO times), oldest first and with both hashes, so an
 * exported copy can be checked on its own.
 *
 * The export is itself an auditable act: the caller records
 * `audit.exported` (with the filter and format in the summary) once the
 * export has been produced.
 */
export function exportAudit(db: Db, filter: AuditExportFilter, format: 'csv' | 'json'): string {
  return [...exportAuditChunks(db, filter, format)].join('');
}

/** The same export in pieces, for a response that streams instead of building one string. */
export function* exportAuditChunks(db: Db, filter: AuditExportFilter, format: 'csv' | 'json'): Generator<string> {
  // Entries appended while the export runs belong to the next export.
  const ceiling = db.select({ id: auditLog.id }).from(auditLog).orderBy(desc(auditLog.id)).limit(1).get()?.id ?? 0;
  const base = [...filterConditions(filter), lte(auditLog.id, ceiling)];
  if (format === 'csv') yield csvRow(EXPORT_COLUMNS);
  else yield '[';
  let afterId = 0;
  let first = true;
  for (;;) {
    const page = db
      .select()
      .from(auditLog)
      .where(and(...base, gt(auditLog.id, afterId)))
      .orderBy(asc(auditLog.id))
      .limit(EXPORT_PAGE)
      .all();
    if (page.length === 0) break;
    const lines = page.map((entry) => {
      if (format === 'csv') return csvRow(csvCells(entry));
      const json = `${first ? '\n' : ',\n'}${JSON.stringify(exportShape(entry))}`;
      first = false;
      return json;
    });
    yield lines.join('');
    afterId = page[page.length - 1]?.id ?? afterId;
    if (page.length < EXPORT_PAGE) break;
  }
  if (format === 'json') yield first ? ']\n' : '\n]\n';
}

// ---------------------------------------------------------------------------

interface RawRow {
  id: number;
  at: number;
  actor_type: string;
  actor_id: number | null;
  actor_label: string | null;
  ip: string | null;
  user_agent: string | null;
  action: string;
  target: string | null;
  summary: string;
  prev_hash: string;
  hash: string;
}

function append(tx: Tx, input: AuditInput, now: Date): AuditEntry {
  if (!isAuditAction(input.action)) throw new Error(`unknown audit action: ${String(input.action)}`);
  const at = now.getTime();
  if (!Number.isFinite(at)) throw new Error('audit entry time is not a valid date');
  const summary = normaliseSummary(input.summary);
  const { actor } = input;
  if (actor.type === 'staff' && !Number.isSafeInteger(actor.id))
    throw new Error(`audit actor id must be an integer, got ${String(actor.id)}`);
  const head = chainHead(tx);
  const content: AuditHashedContent = {
    id: head.nextId,
    at,
    actorType: actor.type,
    actorId: actor.type === 'staff' ? actor.id : null,
    actorLabel: actor.type === 'staff' ? text(actor.label) : null,
    ip: text(input.ip, IP_MAX),
    userAgent: text(input.userAgent, USER_AGENT_MAX),
    action: input.action,
    target: text(input.target),
    summary,
  };
  const entry: AuditEntry = {
    ...content,
    at: new Date(at),
    actorType: actor.type,
    summary,
    prevHash: head.hash,
    hash: entryHash(head.hash, content),
  };
  tx.insert(auditLog).values(entry).run();
  return entry;
}

function chainHead(tx: Tx): { nextId: number; hash: string } {
  const last = tx.select({ id: auditLog.id, hash: auditLog.hash }).from(auditLog).orderBy(desc(auditLog.id)).limit(1).get();
  // Never reuse an id, even one cut from the end behind the triggers' back: the gap stays visible to verify.
  const issued = sequenceOf(tx);
  if (last) return { nextId: Math.max(last.id, issued) + 1, hash: last.hash };
  const purge = newestPurge(tx);
  return { nextId: Math.max(purge?.upToId ?? 0, issued) + 1, hash: purge?.lastHash ?? GENESIS_HASH };
}

function newestPurge(tx: Tx) {
  return tx
    .select({ upToId: auditPurges.upToId, lastHash: auditPurges.lastHash })
    .from(auditPurges)
    .orderBy(desc(auditPurges.upToId), desc(auditPurges.id))
    .limit(1)
    .get();
}

function sequenceOf(tx: Tx): number {
  const row = tx.get<{ seq: number } | undefined>(sql`SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'`);
  return row?.seq ?? 0;
}

function filterConditions(filter: AuditExportFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.actorId !== undefined) where.push(eq(auditLog.actorId, filter.actorId));
  if (filter.action !== undefined) where.push(eq(auditLog.action, filter.action));
  if (filter.from !== undefined) where.push(gte(auditLog.at, filter.from));
  if (filter.to !== undefined) where.push(lt(auditLog.at, filter.to));
  return where;
}

/**
 * SQLite stores text as UTF-8, which turns a lone surrogate into U+FFFD:
 * the stored row would then no longer match the hash computed here. So
 * text is made well-formed first, and truncation never splits a pair.
 */
function text(value: string | null | undefined, max?: number): string | null {
  if (value === null || value === undefined) return null;
  let result = value.toWellFormed();
  if (max !== undefined && result.length > max) {
    result = result.slice(0, max);
    const lastUnit = result.charCodeAt(result.length - 1);
    if (lastUnit >= 0xd800 && lastUnit <= 0xdbff) result = result.slice(0, -1);
  }
  return result;
}

/**
 * The summary exactly as it will read back from the database (a JSON round
 * trip drops undefined, turns dates into strings), so its hash verifies.
 */
function normaliseSummary(summary: Record<string, unknown> | undefined): Record<string, unknown> {
  if (summary === undefined) return {};
  const parsed: unknown = JSON.parse(JSON.stringify(summary));
  if (!isRecord(parsed)) throw new Error('audit summary must be a JSON object');
  const secret = secretKeyPath(parsed, 'summary');
  if (secret) throw new Error(`audit summary must not hold secrets: the key ${secret} looks like one`);
  return parsed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function secretKeyPath(value: unknown, path: string): string | null {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = secretKeyPath(item, `${path}[${i.toString()}]`);
      if (found) return found;
    }
    return null;
  }
  if (value === null || typeof value !== 'object') return null;
  const entries: [string, unknown][] = Object.entries(value);
  for (const [key, item] of entries) {
    const keyPath = `${path}.${key}`;
    if (SECRET_KEY.test(key)) return keyPath;
    const found = secretKeyPath(item, keyPath);
    if (found) return found;
  }
  return null;
}

function missing(from: number, to: number): string {
  return from === to ? `entry #${from.toString()} is missing` : `entries #${from.toString()} to #${to.toString()} are missing`;
}

const EXPORT_COLUMNS = [
  'id',
  'at',
  'actor_type',
  'actor_id',
  'actor_label',
  'ip',
  'user_agent',
  'action',
  'target',
  'summary',
  'prev_hash',
  'hash',
];

function csvCells(entry: AuditEntry): (string | number | null)[] {
  return [
    entry.id,
    entry.at.toISOString(),
    entry.actorType,
    entry.actorId,
    entry.actorLabel,
    entry.ip,
    entry.userAgent,
    entry.action,
    entry.target,
    canonicalJson(entry.summary),
    entry.prevHash,
    entry.hash,
  ];
}

function exportShape(entry: AuditEntry) {
  return { ...entry, at: entry.at.toISOString() };
}
