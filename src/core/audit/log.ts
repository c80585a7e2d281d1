/**
 * The audit log: every staff action and security event, append-only and
 * chained with a key the database does not hold.
 *
 * Each entry stores `prevHash` (the previous entry's MAC), `keyId` and
 * `hash = HMAC-SHA256(auditKey, prevHash + '\n' + canonicalJson(content))`,
 * where the key is derived from CANDOR_SECRET (key.ts), the content is every
 * column but the two hashes (the key id included) and canonical JSON sorts
 * keys at every depth. The first entry links to `GENESIS_HASH`; after a
 * retention purge the first remaining entry links to the purge record's
 * `lastHash`, and the purge itself is an entry in the chain.
 *
 * Older versions chained with a plain SHA-256 (`keyId` null), which anyone
 * can recompute. Those entries are still verified, but only as far as a
 * keyed `audit.chain_keyed` entry after them vouches for them (its MAC
 * covers the last plain entry's hash): the first write of this version
 * appends it. The verifier refuses a plain entry after a keyed one (a
 * downgrade), a keyed entry after plain ones without that seal, a change of
 * key without an `audit.key_rotated` entry, and a log of plain entries that
 * nothing seals.
 *
 * The database refuses UPDATE and DELETE (db/migrations/0002); the chain is
 * what catches changes made behind the triggers' back. What the file alone
 * cannot show is an end cut off together with the id sequence: that takes an
 * anchor kept elsewhere (`verifyAuditChain`'s `anchor`, `audit verify
 * --anchor`). README "What the audit chain proves and what it does not".
 */
import { createHash, createHmac } from 'node:crypto';
import { desc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import type { Database, Tx as EngineTx, Reader } from '../../../db/engine/types.ts';
import { auditChainUpgrade, auditLog, auditPurges, DEFAULT_TRUST_CENTER } from '../../../db/schema.ts';
import {
  chainRowsAfter,
  countEntriesUpTo,
  deleteEntriesUpTo,
  entriesNewestFirst,
  entriesOldestFirst,
  highestIssuedId,
  insertEntry,
  insertPurge,
  type LastEntry,
  lastEntry,
  lockChain,
  newestEntryBefore,
  newestPurge as newestPurgeOf,
  takeUpgradeNote,
} from '../../stores/audit.ts';
import { csvRow } from '../text/csv.ts';
import { type AuditAction, isAuditAction, isRefusalAction } from './actions.ts';
import { canonicalJson, refusalFingerprint } from './canonical.ts';
import { type AuditKey, type AuditKeyring, boundAuditKeys, keyById } from './key.ts';

export { canonicalJson };

export const GENESIS_HASH = '0'.repeat(64);

const USER_AGENT_MAX = 512;
// Addresses come from request headers; a forwarded-for chain can be long, an address cannot.
const IP_MAX = 100;
const QUERY_LIMIT_DEFAULT = 100;
const QUERY_LIMIT_MAX = 1000;
const EXPORT_PAGE = 500;
const VERIFY_PAGE = 1000;
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

/** An entry as a failure report names it. */
export interface AuditEntryRef {
  id: number;
  at: Date;
  action: string;
}

/**
 * Why verification stopped: `altered` and `missing` are tampering (or
 * damage); `unknown-key` means the entry was sealed with a key this
 * verifier was not given (another CANDOR_SECRET), which is not evidence of
 * tampering by itself; `unsealed` means plain entries nothing keyed vouches
 * for; `anchor` that an entry recorded elsewhere is no longer what it was.
 */
export type AuditProblem = 'altered' | 'missing' | 'unknown-key' | 'unsealed' | 'anchor';

export type AuditVerification =
  | {
      ok: true;
      checked: number;
      /** the newest entry and its MAC, to keep elsewhere as an anchor */
      head: (AuditEntryRef & { mac: string }) | null;
      /** each key the checked entries were sealed with, and the first entry it sealed */
      keys: { keyId: string; fromId: number }[];
      /** plain SHA-256 entries from before the chain was keyed, and the keyed entry that seals them */
      plain: { count: number; sealedBy: number } | null;
    }
  | {
      ok: false;
      checked: number;
      firstBrokenId: number;
      /** the entry named, when it is still in the log */
      entry: AuditEntryRef | null;
      problem: AuditProblem;
      reason: string;
    };

/** An entry id and the start of its MAC (at least 16 hex characters), recorded outside the database. */
export interface AuditAnchor {
  id: number;
  mac: string;
}

export interface AuditPurgeResult {
  upToId: number;
  removed: number;
  /** the `audit.purged` entry recording it */
  entry: AuditEntry;
}

/** The part of an entry its hash covers; a keyed entry's MAC also covers its `keyId`. */
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

export type AuditTx = Parameters<Parameters<Db['transaction']>[0]>[0];
type Tx = AuditTx;

function canonicalContent(content: AuditHashedContent, keyId?: string): string {
  const { id, at, actorType, actorId, actorLabel, ip, userAgent, action, target, summary } = content;
  return canonicalJson({ id, at, actorType, actorId, actorLabel, ip, userAgent, action, target, summary, keyId });
}

/** The plain SHA-256 link of entries written before the chain was keyed; verified, never written any more. */
export function entryHash(prevHash: string, content: AuditHashedContent): string {
  return createHash('sha256')
    .update(`${prevHash}\n${canonicalContent(content)}`)
    .digest('hex');
}

/** The keyed link: HMAC-SHA256 under the audit key over the previous MAC and the content, key id included. */
export function entryMac(key: AuditKey, prevHash: string, content: AuditHashedContent): string {
  return createHmac('sha256', key.key)
    .update(`${prevHash}\n${canonicalContent(content, key.id)}`)
    .digest('hex');
}

/**
 * Appends one entry, sealed with the key bound to the handle (key.ts). The
 * chain head is read and the entry written inside one immediate
 * transaction, so concurrent writers (server and worker) can never both
 * link to the same predecessor.
 */
export function recordAudit(db: Db, input: AuditInput, now: Date): AuditEntry {
  const keyring = boundAuditKeys(db);
  return db.transaction((tx) => append(tx, keyring, input, now), { behavior: 'immediate' });
}

/**
 * Seals the log with the current key now rather than at the next entry:
 * after the upgrade the plain entries get their `audit.chain_keyed` entry,
 * after CANDOR_SECRET changed the chain gets its `audit.key_rotated` entry.
 * Returns that entry, or null when there is nothing to seal.
 */
export function sealAuditChain(db: Db, now: Date): AuditEntry | null {
  const keyring = boundAuditKeys(db);
  return db.transaction((tx) => seal(tx, keyring, chainHead(tx), now)?.entry ?? null, { behavior: 'immediate' });
}

/**
 * For a handle whose opening applied the keyed-chain migration (db/client.ts chainUpgradedHere):
 * seals the older plain entries now, as no later process may. Null for any other handle.
 */
export function sealChainUpgrade(db: Db, now: Date): AuditEntry | null {
  return typeof boundAuditKeys(db).upgrade?.lastPlainId === 'number' ? sealAuditChain(db, now) : null;
}

/** Entries matching the filter, newest first (the console's pages), in one read. */
export async function listAudit(database: Database, filter: AuditFilter = {}): Promise<AuditEntry[]> {
  const limit = Math.min(Math.max(Math.floor(filter.limit ?? QUERY_LIMIT_DEFAULT), 1), QUERY_LIMIT_MAX);
  const { beforeId, limit: _, ...narrowed } = filter;
  return database.read((r) => entriesNewestFirst(r, narrowed, beforeId, limit));
}

export interface VerifyOptions {
  /** an entry recorded outside the database (e.g. the head printed by an earlier verification) that must still be there, unchanged */
  anchor?: AuditAnchor;
}

/**
 * One entry as the verifier reads it, from either engine: `at` in
 * milliseconds since the epoch, `summary` as the stored JSON text.
 */
export interface AuditChainRow extends Omit<AuditHashedContent, 'summary'> {
  summary: string;
  prevHash: string;
  hash: string;
  keyId: string | null;
}

/**
 * What verification needs besides the rows, read at the same instant as
 * them: the newest purge record (where the chain now starts) and the highest
 * id the log's sequence has ever issued (which betrays entries cut from the
 * end together with their rows).
 */
export interface AuditChainStart {
  purge: { upToId: number; lastHash: string } | undefined;
  highestIssued: number;
}

/**
 * Recomputes the chain from the oldest remaining entry, reading keyset pages
 * so a large log is never held in memory, and names the first entry that
 * does not hold up. One read: the purge record, the rows and the sequence are
 * seen at the same instant. The keyring defaults to the one bound to the
 * handle; pass one to verify with other secrets. On either engine.
 */
export async function verifyAuditChain(
  database: Database,
  keyring: AuditKeyring = boundAuditKeys(database),
  options: VerifyOptions = {},
): Promise<AuditVerification> {
  return database.read((r) => verifyAuditChainIn(r, keyring, options));
}

/** The same verification inside a read or transaction the caller holds (e.g. the one that just wrote the rows). */
export async function verifyAuditChainIn(
  r: Reader | EngineTx,
  keyring: AuditKeyring,
  options: VerifyOptions = {},
): Promise<AuditVerification> {
  const start: AuditChainStart = { purge: await newestPurgeOf(r), highestIssued: await highestIssuedId(r) };
  return verifyAuditRowsAsync(start, chainPages(r), keyring, options);
}

async function* chainPages(r: Reader | EngineTx): AsyncGenerator<AuditChainRow> {
  let after = 0;
  for (;;) {
    const page = await chainRowsAfter(r, after, VERIFY_PAGE);
    yield* page;
    const last = page.at(-1);
    if (!last || page.length < VERIFY_PAGE) return;
    after = last.id;
  }
}

/** The chain check over rows read asynchronously (keyset pages of either engine), oldest first. */
export async function verifyAuditRowsAsync(
  start: AuditChainStart,
  rows: AsyncIterable<AuditChainRow>,
  keyring: AuditKeyring,
  options: VerifyOptions = {},
): Promise<AuditVerification> {
  const check = auditChainCheck(start, keyring, options);
  for await (const row of rows) {
    const failure = check.next(row);
    if (failure) return failure;
  }
  return check.end();
}

/**
 * The chain's checks, engine-neutral: feed `next` every row in id order
 * (it returns the failure that stops verification, or null), then `end`
 * for what only the whole log shows.
 */
function auditChainCheck(
  { purge, highestIssued }: AuditChainStart,
  keyring: AuditKeyring,
  { anchor }: VerifyOptions,
): { next: (row: AuditChainRow) => AuditVerification | null; end: () => AuditVerification } {
  const start = purge ? `the last purged entry (#${purge.upToId})` : 'the start of the log';
  let expectedId = (purge?.upToId ?? 0) + 1;
  let prevHash = purge?.lastHash ?? GENESIS_HASH;
  // What sealed the previous entry: undefined before the first, null for a plain SHA-256 entry, else its key id.
  let prevKey: string | null | undefined;
  let checked = 0;
  let plain: { count: number; first: AuditEntryRef; sealedBy: number | null } | null = null;
  const keys: { keyId: string; fromId: number }[] = [];
  let head: (AuditEntryRef & { mac: string }) | null = null;
  let purgeRecorded = purge === undefined;
  let anchorSeen = false;
  // Refusals that may open a repeat window, by id: what a later "repeated" entry must match (a prefix of the fingerprint is enough).
  const refusals = new Map<number, string>();
  const next = (row: AuditChainRow): AuditVerification | null => {
    const ref: AuditEntryRef = { id: row.id, at: new Date(row.at), action: row.action };
    const broken = (problem: AuditProblem, reason: string, id = row.id, entry: AuditEntryRef | null = ref): AuditVerification => ({
      ok: false,
      checked,
      firstBrokenId: id,
      entry,
      problem,
      reason,
    });
    if (row.id < expectedId) {
      const why = purge ? `is covered by the purge up to #${purge.upToId.toString()} but still present` : 'has an id the log never issues';
      return broken('altered', `entry ${why}`);
    }
    if (row.id > expectedId) {
      return broken('missing', `${missing(expectedId, row.id - 1)} (removed outside a recorded purge)`, expectedId, null);
    }
    if (row.prevHash !== prevHash) {
      const predecessor = row.id === (purge?.upToId ?? 0) + 1 ? start : `entry #${(row.id - 1).toString()}`;
      return broken('altered', `chain link broken: its previous hash does not match the hash of ${predecessor}`);
    }
    let summary: unknown;
    try {
      summary = JSON.parse(row.summary);
    } catch {
      return broken('altered', 'content altered: its summary is not valid JSON');
    }
    const content: AuditHashedContent = {
      id: row.id,
      at: row.at,
      actorType: row.actorType,
      actorId: row.actorId,
      actorLabel: row.actorLabel,
      ip: row.ip,
      userAgent: row.userAgent,
      action: row.action,
      target: row.target,
      summary,
    };
    const said = (field: string): unknown => (isRecord(summary) ? summary[field] : undefined);
    if (row.keyId === null) {
      if (typeof prevKey === 'string') {
        return broken(
          'altered',
          `a plain SHA-256 entry after keyed ones: once the chain is keyed every entry is, so the chain was rewritten from here on by someone without the key`,
        );
      }
      if (entryHash(row.prevHash, content) !== row.hash) {
        return broken('altered', 'content altered: its stored hash does not match its content');
      }
      if (plain) plain.count++;
      else plain = { count: 1, first: ref, sealedBy: null };
    } else {
      if (prevKey === null) {
        if (row.action !== 'audit.chain_keyed' || said('lastPlainId') !== row.id - 1) {
          return broken(
            'altered',
            'a keyed entry right after plain SHA-256 ones, but not the audit.chain_keyed entry that must seal them: the log before it was rewritten, or its seal removed',
          );
        }
        if (plain) plain.sealedBy = row.id;
      } else if (prevKey !== undefined && prevKey !== row.keyId) {
        if (row.action !== 'audit.key_rotated' || said('previousFingerprint') !== prevKey) {
          return broken(
            'altered',
            `sealed with audit key ${row.keyId} after entry #${(row.id - 1).toString()} was sealed with ${prevKey}, but not the audit.key_rotated entry that must record such a change`,
          );
        }
      }
      const key = keyById(keyring, row.keyId);
      if (!key) return broken('unknown-key', unknownKey(row.keyId, keyring));
      if (entryMac(key, row.prevHash, content) !== row.hash) {
        return broken('altered', 'its MAC does not match its content: it was changed, or its MAC computed, without the key');
      }
      if (keys.at(-1)?.keyId !== row.keyId) keys.push({ keyId: row.keyId, fromId: row.id });
    }
    const forged = forgedEntry(content, said, purge?.upToId ?? 0, refusals);
    if (forged) return broken('altered', forged);
    if (purge && row.action === 'audit.purged' && said('upToId') === purge.upToId) purgeRecorded = true;
    if (anchor && row.id === anchor.id) {
      anchorSeen = true;
      if (!row.hash.startsWith(anchor.mac.toLowerCase())) {
        return broken(
          'anchor',
          `its MAC begins ${row.hash.slice(0, anchor.mac.length)}, not ${anchor.mac.toLowerCase()} as recorded: it, or the chain before it, was rewritten`,
        );
      }
    }
    prevKey = row.keyId;
    prevHash = row.hash;
    expectedId = row.id + 1;
    checked++;
    head = { ...ref, mac: row.hash };
    return null;
  };
  const end = (): AuditVerification => {
    const failed = (problem: AuditProblem, firstBrokenId: number, reason: string): AuditVerification => ({
      ok: false,
      checked,
      firstBrokenId,
      entry: null,
      problem,
      reason,
    });
    // The id sequence (SQLite: AUTOINCREMENT; PostgreSQL: the identity) remembers the highest id issued, which betrays entries cut from the end.
    if (highestIssued >= expectedId) {
      return failed('missing', expectedId, `${missing(expectedId, highestIssued)} (the newest entries were removed)`);
    }
    if (purge && !purgeRecorded) {
      return failed(
        'missing',
        purge.upToId,
        `entries up to #${purge.upToId.toString()} were removed, but no audit.purged entry in the log records that purge: they were removed behind the triggers' back`,
      );
    }
    if (anchor && !anchorSeen) {
      const purged = purge !== undefined && anchor.id <= purge.upToId;
      const purgedIntact = purged && (anchor.id < purge.upToId || purge.lastHash.startsWith(anchor.mac.toLowerCase()));
      if (!purgedIntact) {
        return failed(
          'anchor',
          anchor.id,
          purged
            ? `entry #${anchor.id.toString()} was purged, but the purge record's hash of it is not the one recorded`
            : `entry #${anchor.id.toString()}, recorded elsewhere, is no longer in the log: the newest entries were cut off`,
        );
      }
    }
    if (plain && plain.sealedBy === null) {
      return {
        ok: false,
        checked,
        firstBrokenId: plain.first.id,
        entry: plain.first,
        problem: 'unsealed',
        reason: `${plain.count.toString()} plain SHA-256 entries from before the chain was keyed, and no keyed audit.chain_keyed entry seals them: anyone with the file could have rewritten them. Candor seals them once, when it first starts after the upgrade; if it has run since, the log was rewritten`,
      };
    }
    return { ok: true, checked, head, keys, plain: plain?.sealedBy ? { count: plain.count, sealedBy: plain.sealedBy } : null };
  };
  return { next, end };
}

/**
 * An entry whose MAC holds but which Candor itself would never have written
 * that way: a "repeated" entry that does not repeat the refusal it names, or
 * an `audit.purged` not written by a purge. Older versions sealed a repeat
 * window's closing entry from the window row, which lives outside the chain
 * (repeats.ts): someone who could write the database could have had such an
 * entry sealed. Returns why, or null. Remembers refusals for later entries.
 */
function forgedEntry(
  content: AuditHashedContent,
  said: (field: string) => unknown,
  purgedUpTo: number,
  refusals: Map<number, string>,
): string | null {
  const repeated = said('repeated');
  if (
    content.action === 'audit.purged' &&
    (content.actorType !== 'system' || repeated !== undefined || !Number.isInteger(said('upToId')))
  ) {
    return 'an audit.purged entry that no purge wrote (not a system entry with the purged range): a forged record of a purge';
  }
  if (repeated === undefined) {
    if (isRefusalAction(content.action)) refusals.set(content.id, refusalFingerprint(content).slice(0, 32));
    return null;
  }
  if (!isRefusalAction(content.action)) {
    return `says it repeats a refusal, but ${content.action} is not an action Candor counts in repeat windows: sealed from a forged window row`;
  }
  const after = isRecord(repeated) ? repeated.after : undefined;
  if (typeof after !== 'number' || !Number.isInteger(after) || after >= content.id) {
    return 'says it repeats a refusal, but names no earlier entry it repeats';
  }
  // The first entry was purged: nothing left to compare with.
  if (after <= purgedUpTo) return null;
  const { repeated: _, ...summary } = isRecord(content.summary) ? content.summary : {};
  const first = refusals.get(after);
  if (first === undefined || first !== refusalFingerprint({ ...content, summary }).slice(0, 32)) {
    return `says it repeats entry #${after.toString()}, but does not match it (action, actor, address, target and summary): sealed from a forged window row`;
  }
  // A window closes once.
  refusals.delete(after);
  return null;
}

/** One line for an operator: which entry, when, what, and why. */
export function describeFailure(result: Extract<AuditVerification, { ok: false }>): string {
  const { entry } = result;
  return entry ? `entry ${entry.id.toString()} (${utcMinute(entry.at)}, ${entry.action}): ${result.reason}` : result.reason;
}

function utcMinute(at: Date): string {
  return Number.isNaN(at.getTime()) ? 'no valid time' : `${at.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

function unknownKey(keyId: string, keyring: AuditKeyring): string {
  const given = [keyring.current.id, ...keyring.previous.map((k) => k.id)];
  const ours = given.length === 1 ? `CANDOR_SECRET gives ${keyring.current.id}` : `the secrets given give ${given.join(', ')}`;
  return (
    `sealed with audit key ${keyId}, but ${ours}: this is not the secret it was written with, so it cannot be checked (not a sign of tampering by itself). ` +
    'Set CANDOR_SECRET to that secret, or list it in CANDOR_PREVIOUS_SECRETS; if the secret never changed, the entry was rewritten'
  );
}

/**
 * Removes entries older than the retention, keeping the chain verifiable:
 * the purge record (written before the delete, which the trigger requires)
 * keeps the hash of the last removed entry, where verification then starts.
 * Returns null when nothing is old enough.
 */
export async function purgeAudit(database: Database, retentionDays: number, now: Date): Promise<AuditPurgeResult | null> {
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw new Error(`audit retention must be a whole number of days, at least 1; got ${String(retentionDays)}`);
  }
  const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
  return database.transaction(async (tx) => {
    // The chain's lock first (src/stores/audit.ts): no entry is appended, and no other purge runs, between
    // reading where the purge ends and writing its record, so `removed` and the record's hash hold.
    await lockChain(tx);
    // The chain can only lose a prefix, so the purge ends at the newest old entry.
    const last = await newestEntryBefore(tx, cutoff);
    if (!last) return null;
    const removed = await countEntriesUpTo(tx, last.id);
    // The record first: the triggers refuse deleting entries no purge record covers.
    await insertPurge(tx, { at: now, upToId: last.id, lastHash: last.hash, removed });
    await deleteEntriesUpTo(tx, last.id);
    const entry = await writeAudit(
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
  });
}

/**
 * The entries matching the filter as CSV (RFC 4180, with a header row) or
 * JSON (an array, ISO times), oldest first and with both hashes and the
 * key id, so an exported copy can be checked on its own (with the secret).
 *
 * The export is itself an auditable act: the caller records
 * `audit.exported` (with the filter and format in the summary) once the
 * export has been produced.
 */
export async function exportAudit(database: Database, filter: AuditExportFilter, format: 'csv' | 'json'): Promise<string> {
  let text = '';
  for await (const chunk of exportAuditChunks(database, filter, format)) text += chunk;
  return text;
}

/**
 * The same export in pieces, for a response that streams instead of building one string: keyset pages
 * of EXPORT_PAGE entries, each read in a read of its own, so a slow reader never holds a snapshot (on
 * SQLite the one read connection) open between pages.
 */
export async function* exportAuditChunks(database: Database, filter: AuditExportFilter, format: 'csv' | 'json'): AsyncGenerator<string> {
  // Entries appended while the export runs belong to the next export.
  const ceiling = (await database.read((r) => lastEntry(r)))?.id ?? 0;
  if (format === 'csv') yield csvRow(EXPORT_COLUMNS);
  else yield '[';
  let afterId = 0;
  let first = true;
  for (;;) {
    const from = afterId;
    const page = await database.read((r) => entriesOldestFirst(r, filter, { afterId: from, upToId: ceiling }, EXPORT_PAGE));
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

/** An entry's content before it has an id: what `auditFields` makes of an input. */
export type AuditFields = Omit<AuditHashedContent, 'id'>;
type Fields = AuditFields;

interface ChainHead {
  nextId: number;
  hash: string;
  /** the newest entry; null when the log is empty (new, or everything purged) */
  last: { id: number; keyId: string | null } | null;
}

/**
 * Appends one entry inside the caller's (immediate) transaction, for a
 * module that must decide and write atomically (repeats.ts).
 */
export function appendAudit(tx: Tx, keyring: AuditKeyring, input: AuditInput, now: Date): AuditEntry {
  const fields = auditFields(input, now);
  const head = chainHead(tx);
  return write(tx, keyring.current, seal(tx, keyring, head, now)?.head ?? head, fields);
}

const append = appendAudit;

/** The input checked and normalised exactly as it will be stored (and read back, and hashed). */
export function auditFields(input: AuditInput, now: Date): AuditFields {
  if (!isAuditAction(input.action)) throw new Error(`unknown audit action: ${String(input.action)}`);
  const at = now.getTime();
  if (!Number.isFinite(at)) throw new Error('audit entry time is not a valid date');
  const summary = normaliseSummary(input.summary);
  const { actor } = input;
  if (actor.type === 'staff' && !Number.isSafeInteger(actor.id))
    throw new Error(`audit actor id must be an integer, got ${String(actor.id)}`);
  return {
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
}

/**
 * Before the first entry under a key: plain entries of an older version get
 * the `audit.chain_keyed` entry that vouches for them, entries under another
 * key (CANDOR_SECRET changed) the `audit.key_rotated` entry that records it.
 *
 * Plain entries are sealed only as the upgrade migration found them
 * (`audit_chain_upgrade`), once. A log rewritten as plain afterwards is not
 * sealed again: the next entry follows it unsealed, which verification
 * reports.
 */
function seal(tx: Tx, keyring: AuditKeyring, head: ChainHead, now: Date): { entry: AuditEntry; head: ChainHead } | null {
  const marker = sealMarker(keyring, head, now, (lastPlainId) => {
    const upgrade = tx.select().from(auditChainUpgrade).where(eq(auditChainUpgrade.lastPlainId, lastPlainId)).get();
    if (upgrade) tx.delete(auditChainUpgrade).run();
    return upgrade !== undefined;
  });
  if (!marker) return null;
  const entry = write(tx, keyring.current, head, marker);
  return { entry, head: headAfter(entry) };
}

/**
 * The seal entry due before the next entry under the keyring's current key, or null. `takeNote`
 * consumes the upgrade migration's note for the plain entry named (true when it was there).
 */
function sealMarker(keyring: AuditKeyring, head: ChainHead, now: Date, takeNote: (lastPlainId: number) => boolean): Fields | null {
  const key = keyring.current;
  const { last } = head;
  if (!last || last.keyId === key.id) return null;
  if (last.keyId === null) {
    // Only the handle whose opening applied the upgrade, once, and only the entries it noted then: the
    // note is a row, which anyone with the file can plant (with a log rewritten as plain behind it).
    if (keyring.upgrade?.lastPlainId !== last.id) return null;
    keyring.upgrade.lastPlainId = null;
    if (!takeNote(last.id)) return null;
  }
  return {
    at: now.getTime(),
    actorType: 'system',
    actorId: null,
    actorLabel: null,
    ip: null,
    userAgent: null,
    action: last.keyId === null ? 'audit.chain_keyed' : 'audit.key_rotated',
    target: 'audit_log',
    summary: last.keyId === null ? { lastPlainId: last.id } : { previousFingerprint: last.keyId },
  };
}

const headAfter = (entry: AuditEntry): ChainHead => ({
  nextId: entry.id + 1,
  hash: entry.hash,
  last: { id: entry.id, keyId: entry.keyId },
});

/** The entry linking `fields` to `head`, sealed with `key`. */
function sealedEntry(key: AuditKey, head: ChainHead, fields: Fields): AuditEntry {
  const content: AuditHashedContent = { id: head.nextId, ...fields };
  return {
    ...content,
    at: new Date(fields.at),
    actorType: fields.actorType as AuditEntry['actorType'],
    summary: fields.summary as Record<string, unknown>,
    prevHash: head.hash,
    hash: entryMac(key, head.hash, content),
    keyId: key.id,
    // Not part of the hashed content; every entry belongs to the one trust center there is today.
    trustCenterId: DEFAULT_TRUST_CENTER,
  };
}

function write(tx: Tx, key: AuditKey, head: ChainHead, fields: Fields): AuditEntry {
  const entry = sealedEntry(key, head, fields);
  tx.insert(auditLog).values(entry).run();
  return entry;
}

/** Where the next entry goes: after the newest, never reusing an id the sequence issued, after a purge's last hash when empty. */
function headOf(last: LastEntry | undefined, issued: number, purge: { upToId: number; lastHash: string } | undefined): ChainHead {
  if (last) return { nextId: Math.max(last.id, issued) + 1, hash: last.hash, last: { id: last.id, keyId: last.keyId } };
  return { nextId: Math.max(purge?.upToId ?? 0, issued) + 1, hash: purge?.lastHash ?? GENESIS_HASH, last: null };
}

/**
 * Appends one entry in the caller's transaction of either engine (db/engine), sealed with the keys
 * bound to the handle the transaction came from. It takes the chain's lock first (src/stores/audit.ts),
 * so concurrent writers append one after the other; the entry is written when the transaction
 * commits, and not at all when it rolls back.
 */
export async function writeAudit(tx: EngineTx, input: AuditInput, now: Date): Promise<AuditEntry> {
  const keyring = boundAuditKeys(tx);
  const fields = auditFields(input, now);
  const { head } = await lockAndSeal(tx, keyring, now);
  const entry = sealedEntry(keyring.current, head, fields);
  await insertEntry(tx, entry);
  return entry;
}

/**
 * Takes the chain's lock and reads its head; when the chain must be sealed under the current key
 * first (after the keyed-chain upgrade, or a change of CANDOR_SECRET) appends that entry. The head
 * after it, and the seal entry when one was written.
 */
async function lockAndSeal(tx: EngineTx, keyring: AuditKeyring, now: Date): Promise<{ head: ChainHead; sealed: AuditEntry | null }> {
  await lockChain(tx);
  const last = await lastEntry(tx);
  const head = headOf(last, await highestIssuedId(tx), last ? undefined : await newestPurgeOf(tx));
  const upgradeNoted = head.last?.keyId === null ? await takeUpgradeNote(tx, head.last.id) : false;
  const marker = sealMarker(keyring, head, now, () => upgradeNoted);
  if (!marker) return { head, sealed: null };
  const sealed = sealedEntry(keyring.current, head, marker);
  await insertEntry(tx, sealed);
  return { head: headAfter(sealed), sealed };
}

/**
 * Seals the log with the current key now rather than at the next entry, on either engine (the
 * synchronous `sealAuditChain` on a SQLite connection): the `audit.chain_keyed` entry after the
 * upgrade, the `audit.key_rotated` entry after CANDOR_SECRET changed. That entry, or null.
 */
/** For a handle whose opening applied the keyed-chain migration: seals the older plain entries now (async `sealChainUpgrade`). */
export function sealChainUpgradeNow(database: Database, now: Date): Promise<AuditEntry | null> {
  return typeof boundAuditKeys(database).upgrade?.lastPlainId === 'number' ? sealChainNow(database, now) : Promise.resolve(null);
}

export async function sealChainNow(database: Database, now: Date): Promise<AuditEntry | null> {
  return database.transaction(async (tx) => (await lockAndSeal(tx, boundAuditKeys(tx), now)).sealed);
}

function chainHead(tx: Tx): ChainHead {
  const last = tx
    .select({ id: auditLog.id, hash: auditLog.hash, keyId: auditLog.keyId })
    .from(auditLog)
    .orderBy(desc(auditLog.id))
    .limit(1)
    .get();
  return headOf(last, sequenceOf(tx), last ? undefined : newestPurge(tx));
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
  // Every string, keys included, well-formed (a lone surrogate becomes U+FFFD, as `text` makes it): JSON.stringify
  // writes a lone surrogate as an escape such as \udc00, which PostgreSQL's jsonb refuses (the entry, and the
  // action it records, would fail there) and SQLite keeps as written; either way what is sealed is what is stored.
  const parsed: unknown = JSON.parse(JSON.stringify(summary), (_key, value: unknown) => {
    if (typeof value === 'string') return value.toWellFormed();
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toWellFormed(), v]));
    return value;
  });
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
  'key_id',
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
    entry.keyId,
  ];
}

function exportShape(entry: AuditEntry) {
  return { ...entry, at: entry.at.toISOString() };
}
