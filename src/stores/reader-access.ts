/**
 * What a customer reading gated documents touches (`reader_sessions`, `access_grants` read and, for tests
 * and helper flows, written, `nda_texts`, `nda_acceptances`, `document_views`), on SQLite and PostgreSQL
 * alike, in the convention of src/stores/reader-links.ts (async functions on the caller's `Tx` or
 * `Reader`, scoped to `q.trustCenter`). NDA texts, acceptances and views are append-only (the tables'
 * triggers refuse UPDATE and DELETE): this store only ever inserts them. What the rows mean is
 * src/core/access/{reader-sessions,nda,downloads}.ts's.
 */
import { and, desc, eq, gt, isNull, lte } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { accessGrants, documentViews, ndaAcceptances, ndaTexts, readerSessions } from '../../db/schema.ts';

export type ReaderSessionRow = typeof readerSessions.$inferSelect;
export type GrantRow = typeof accessGrants.$inferSelect;
export type NdaTextRow = typeof ndaTexts.$inferSelect;
export type NdaAcceptanceRow = typeof ndaAcceptances.$inferSelect;
export type DocumentViewRow = typeof documentViews.$inferSelect;

// ---- sessions ----

export type NewReaderSession = Omit<ReaderSessionRow, 'trustCenterId'>;

export async function insertReaderSession(tx: Tx, session: NewReaderSession): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.readerSessions).values({ ...session, trustCenterId: q.trustCenter });
}

export async function readerSessionById(r: Reader | Tx, id: string): Promise<ReaderSessionRow | undefined> {
  const q = reading(r);
  const s = q.t.readerSessions;
  const rows = await q.db
    .select()
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id)))
    .limit(1);
  return rows[0];
}

/** Marks the session active at `now` when last written at or before `staleBefore` (one conditional UPDATE); whether it wrote. */
export async function touchReaderSession(tx: Tx, id: string, now: Date, staleBefore: Date): Promise<boolean> {
  const q = query(tx);
  const s = q.t.readerSessions;
  const changed = affected(
    await q.db
      .update(s)
      .set({ lastActiveAt: now })
      .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id), lte(s.lastActiveAt, staleBefore))),
  );
  return changed === 1;
}

/** Removes the session; how many (0 or 1). */
export async function deleteReaderSession(tx: Tx, id: string): Promise<number> {
  const q = query(tx);
  const s = q.t.readerSessions;
  return affected(await q.db.delete(s).where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id))));
}

// ---- grants ----

/** The recipient's grants neither revoked nor expired at `now`, newest first. */
export async function activeGrantsOf(r: Reader | Tx, recipientId: number, now: Date): Promise<GrantRow[]> {
  const q = reading(r);
  const g = q.t.accessGrants;
  return q.db
    .select()
    .from(g)
    .where(and(eq(g.trustCenterId, q.trustCenter), eq(g.recipientId, recipientId), isNull(g.revokedAt), gt(g.expiresAt, now)))
    .orderBy(desc(g.createdAt), desc(g.id));
}

export type NewGrant = Omit<GrantRow, 'id' | 'trustCenterId' | 'revokedAt' | 'revokedBy' | 'expiryNoticeAt'> &
  Partial<Pick<GrantRow, 'revokedAt' | 'revokedBy'>>;

/** A grant as given (tests, and flows of other parts that grant access); its id. */
export async function insertGrant(tx: Tx, grant: NewGrant): Promise<number> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.accessGrants)
    .values({ revokedAt: null, revokedBy: null, ...grant, expiryNoticeAt: null, trustCenterId: q.trustCenter })
    .returning({ id: q.t.accessGrants.id });
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('the grant was not inserted');
  return id;
}

// ---- NDA texts and acceptances ----

/** Writes the text under its hash unless it is there already (of two first acceptances, one writes it). */
export async function insertNdaTextOnce(tx: Tx, text: Omit<NdaTextRow, 'trustCenterId'>): Promise<void> {
  const q = query(tx);
  await q.db
    .insert(q.t.ndaTexts)
    .values({ ...text, trustCenterId: q.trustCenter })
    .onConflictDoNothing({ target: q.t.ndaTexts.hash });
}

export async function ndaTextByHash(r: Reader | Tx, hash: string): Promise<NdaTextRow | undefined> {
  const q = reading(r);
  const n = q.t.ndaTexts;
  const rows = await q.db
    .select()
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.hash, hash)))
    .limit(1);
  return rows[0];
}

export type NewNdaAcceptance = Omit<NdaAcceptanceRow, 'id' | 'trustCenterId'>;

export async function insertNdaAcceptance(tx: Tx, acceptance: NewNdaAcceptance): Promise<number> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.ndaAcceptances)
    .values({ ...acceptance, trustCenterId: q.trustCenter })
    .returning({ id: q.t.ndaAcceptances.id });
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('the acceptance was not inserted');
  return id;
}

/** The recipient's latest acceptance of the text of this hash, if any. */
export async function acceptanceOf(r: Reader | Tx, recipientId: number, hash: string): Promise<NdaAcceptanceRow | undefined> {
  const q = reading(r);
  const a = q.t.ndaAcceptances;
  const rows = await q.db
    .select()
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.recipientId, recipientId), eq(a.ndaHash, hash)))
    .orderBy(desc(a.acceptedAt), desc(a.id))
    .limit(1);
  return rows[0];
}

// ---- views and downloads ----

export type NewDocumentView = Omit<DocumentViewRow, 'id' | 'trustCenterId'>;

/** Records a view or download before the file is sent; its id (the reference stamped on the pages). */
export async function insertDocumentView(tx: Tx, view: NewDocumentView): Promise<number> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.documentViews)
    .values({ ...view, trustCenterId: q.trustCenter })
    .returning({ id: q.t.documentViews.id });
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('the view was not inserted');
  return id;
}
