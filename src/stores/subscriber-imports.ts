/**
 * Subscribers' consent records and import runs (`subscriber_consents`, `subscriber_imports`; issue 17),
 * and the look-ups an import makes a batch at a time, on SQLite and PostgreSQL alike (the convention
 * is src/stores/rate-limits.ts's: async functions on the caller's `Tx` or `Reader`, every query scoped
 * to `q.trustCenter`, no transaction opened here). What the rows mean is
 * src/core/subscriptions/consents.ts's and import.ts's.
 *
 * Races: an import adds addresses through src/core/subscriptions/subscribers.ts `signUpIn` (unique key
 * and savepoint), so an import and a sign-up of one address at once make one subscriber; the batch
 * look-up below only sorts rows into "new" and "found" ahead of it.
 */
import { and, desc, eq, inArray } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { consentMethods, consentSources, importFormats } from '../../db/schema/consents.ts';
import type { ChannelName } from '../../db/schema/notify.ts';

export type ConsentSource = (typeof consentSources)[number];
export type ConsentMethod = (typeof consentMethods)[number];
export type ImportFormat = (typeof importFormats)[number];
export type ImportConsent = 'carry_over' | 'confirm';

export interface NewConsent {
  subscriberId: number | null;
  recipientId: number;
  source: ConsentSource;
  method: ConsentMethod;
  optedInAt: Date | null;
  optedInVia: string;
  importId?: number | null;
  importRow?: number | null;
  recordedAt: Date;
}

/** Writes consent records (one statement for the lot). */
export async function insertConsents(tx: Tx, rows: readonly NewConsent[]): Promise<void> {
  if (rows.length === 0) return;
  const q = query(tx);
  await q.db.insert(q.t.subscriberConsents).values(rows.map((row) => ({ ...row, trustCenterId: q.trustCenter })));
}

export interface ConsentRow {
  id: number;
  recipientId: number;
  source: ConsentSource;
  method: ConsentMethod;
  optedInAt: Date | null;
  optedInVia: string;
  importId: number | null;
  importRow: number | null;
  recordedAt: Date;
}

const consentColumns = (t: ReturnType<typeof reading>['t']['subscriberConsents']) => ({
  id: t.id,
  recipientId: t.recipientId,
  source: t.source,
  method: t.method,
  optedInAt: t.optedInAt,
  optedInVia: t.optedInVia,
  importId: t.importId,
  importRow: t.importRow,
  recordedAt: t.recordedAt,
});

/** The consent records of these addresses, newest first. */
export async function consentsOfRecipients(r: Reader | Tx, recipientIds: readonly number[]): Promise<ConsentRow[]> {
  if (recipientIds.length === 0) return [];
  const q = reading(r);
  const t = q.t.subscriberConsents;
  return q.db
    .select(consentColumns(t))
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), inArray(t.recipientId, [...recipientIds])))
    .orderBy(desc(t.recordedAt), desc(t.id));
}

export interface FoundAddress {
  id: number;
  subscriberId: number | null;
  status: 'pending' | 'active' | 'suppressed' | 'removed';
  addressHash: string;
}

/** The addresses among these blind indexes of one channel that exist, by blind index (one query per batch). */
export async function addressesByHash(r: Reader | Tx, channel: ChannelName, hashes: readonly string[]): Promise<Map<string, FoundAddress>> {
  if (hashes.length === 0) return new Map();
  const q = reading(r);
  const rc = q.t.recipients;
  const rows = await q.db
    .select({ id: rc.id, subscriberId: rc.subscriberId, status: rc.status, addressHash: rc.addressHash })
    .from(rc)
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.channel, channel), inArray(rc.addressHash, [...hashes])));
  return new Map(rows.map((row) => [row.addressHash, row]));
}

/** The newest consent record of each of these addresses, by address (for the export). */
export async function latestConsents(r: Reader | Tx, recipientIds: readonly number[]): Promise<Map<number, ConsentRow>> {
  const rows = await consentsOfRecipients(r, recipientIds);
  const latest = new Map<number, ConsentRow>();
  for (const row of rows) if (!latest.has(row.recipientId)) latest.set(row.recipientId, row);
  return latest;
}

// --- import runs ---

export interface NewImportRun {
  format: ImportFormat;
  fileName: string;
  dryRun: boolean;
  consent: ImportConsent;
  createdBy: number | null;
  startedAt: Date;
}

/** Starts an import run's record (its file's hash and counts are written when it finishes); its id. */
export async function insertImportRun(tx: Tx, run: NewImportRun): Promise<number> {
  const q = query(tx);
  const i = q.t.subscriberImports;
  const [row] = await q.db
    .insert(i)
    .values({ ...run, fileSha256: '', counts: null, finishedAt: null, trustCenterId: q.trustCenter })
    .returning({ id: i.id });
  if (!row) throw new Error('the import run was not recorded');
  return row.id;
}

export async function finishImportRun(
  tx: Tx,
  id: number,
  done: { fileSha256: string; counts: Record<string, number>; finishedAt: Date },
): Promise<boolean> {
  const q = query(tx);
  const i = q.t.subscriberImports;
  return (
    affected(
      await q.db
        .update(i)
        .set(done)
        .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, id))),
    ) === 1
  );
}

export interface ImportRunRow {
  id: number;
  format: ImportFormat;
  fileName: string;
  fileSha256: string;
  dryRun: boolean;
  consent: ImportConsent;
  counts: Record<string, number> | null;
  createdBy: number | null;
  startedAt: Date;
  finishedAt: Date | null;
}
