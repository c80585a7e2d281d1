/**
 * What staff see of customers' access to gated documents (Console → Access), on SQLite and PostgreSQL
 * alike, in the convention of src/stores/reader-links.ts (async functions on the caller's `Tx` or
 * `Reader`, every query scoped to `q.trustCenter`): the request queue and recent decisions, grants by
 * state, views and downloads per company and person, NDA acceptances, the pages of the CSV exports,
 * revoking a grant, and claiming a grant's expiry notice. Revoking and claiming are conditional
 * UPDATEs (`revoked_at IS NULL`, `expiry_notice_at IS NULL`), so of two at once one wins, on any node.
 * Addresses stay sealed here; src/core/access/activity.ts opens them for display.
 */
import { and, asc, count, desc, eq, gt, inArray, isNotNull, isNull, lte, max, ne } from 'drizzle-orm';
import { toInteger } from '../../db/engine/common.ts';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import type { accessGrants, accessRequests } from '../../db/schema.ts';

export type AccessRequestStatus = (typeof accessRequests.$inferSelect)['status'];
export type AccessGrantRow = typeof accessGrants.$inferSelect;

export interface QueuedRequest {
  id: number;
  recipientId: number;
  name: string;
  company: string;
  documents: string[];
  createdAt: Date;
  verifiedAt: Date | null;
}

/** Verified requests waiting for a reviewer, oldest first. */
export async function pendingRequests(r: Reader | Tx, limit: number): Promise<QueuedRequest[]> {
  const q = reading(r);
  const ar = q.t.accessRequests;
  return q.db
    .select({
      id: ar.id,
      recipientId: ar.recipientId,
      name: ar.name,
      company: ar.company,
      documents: ar.documents,
      createdAt: ar.createdAt,
      verifiedAt: ar.verifiedAt,
    })
    .from(ar)
    .where(and(eq(ar.trustCenterId, q.trustCenter), eq(ar.status, 'pending')))
    .orderBy(asc(ar.createdAt), asc(ar.id))
    .limit(limit);
}

export async function pendingRequestCount(r: Reader | Tx): Promise<number> {
  const q = reading(r);
  const ar = q.t.accessRequests;
  return toInteger(await q.db.$count(ar, and(eq(ar.trustCenterId, q.trustCenter), eq(ar.status, 'pending'))));
}

export interface DecidedRequest {
  id: number;
  recipientId: number;
  name: string;
  company: string;
  documents: string[];
  status: AccessRequestStatus;
  decidedVia: 'rule' | 'staff' | null;
  rulePattern: string | null;
  decidedBy: number | null;
  decidedAt: Date | null;
}

/** Approved and refused requests, most recently decided first. */
export async function decidedRequests(r: Reader | Tx, limit: number): Promise<DecidedRequest[]> {
  const q = reading(r);
  const ar = q.t.accessRequests;
  return q.db
    .select({
      id: ar.id,
      recipientId: ar.recipientId,
      name: ar.name,
      company: ar.company,
      documents: ar.documents,
      status: ar.status,
      decidedVia: ar.decidedVia,
      rulePattern: ar.rulePattern,
      decidedBy: ar.decidedBy,
      decidedAt: ar.decidedAt,
    })
    .from(ar)
    .where(and(eq(ar.trustCenterId, q.trustCenter), inArray(ar.status, ['approved', 'refused'])))
    .orderBy(desc(ar.decidedAt), desc(ar.id))
    .limit(limit);
}

export type GrantSelection = 'live' | 'expired' | 'revoked';

/**
 * Grants in one state at `now`: live (not revoked, expiring after now; soonest first), expired (not
 * revoked, expiresAt <= now; most recent first), revoked (most recent first).
 */
export async function grantsIn(r: Reader | Tx, which: GrantSelection, now: Date, limit: number): Promise<AccessGrantRow[]> {
  const q = reading(r);
  const g = q.t.accessGrants;
  const scope = eq(g.trustCenterId, q.trustCenter);
  const base = q.db.select().from(g);
  if (which === 'live')
    return base
      .where(and(scope, isNull(g.revokedAt), gt(g.expiresAt, now)))
      .orderBy(asc(g.expiresAt), asc(g.id))
      .limit(limit);
  if (which === 'expired')
    return base
      .where(and(scope, isNull(g.revokedAt), lte(g.expiresAt, now)))
      .orderBy(desc(g.expiresAt), desc(g.id))
      .limit(limit);
  return base
    .where(and(scope, isNotNull(g.revokedAt)))
    .orderBy(desc(g.revokedAt), desc(g.id))
    .limit(limit);
}

export async function grantById(r: Reader | Tx, id: number): Promise<AccessGrantRow | undefined> {
  const q = reading(r);
  const g = q.t.accessGrants;
  const rows = await q.db
    .select()
    .from(g)
    .where(and(eq(g.trustCenterId, q.trustCenter), eq(g.id, id)))
    .limit(1);
  return rows[0];
}

/** Revokes a grant that is not revoked yet: false when it was revoked meanwhile (or does not exist). */
export async function revokeGrantRow(tx: Tx, id: number, now: Date, by: number): Promise<boolean> {
  const q = query(tx);
  const g = q.t.accessGrants;
  const changed = affected(
    await q.db
      .update(g)
      .set({ revokedAt: now, revokedBy: by })
      .where(and(eq(g.trustCenterId, q.trustCenter), eq(g.id, id), isNull(g.revokedAt))),
  );
  return changed === 1;
}

/** Live grants ending by `horizon` whose customer was not told yet, soonest first: candidates for the notice. */
export async function grantsDueNotice(r: Reader | Tx, now: Date, horizon: Date, limit: number): Promise<AccessGrantRow[]> {
  const q = reading(r);
  const g = q.t.accessGrants;
  return q.db
    .select()
    .from(g)
    .where(
      and(
        eq(g.trustCenterId, q.trustCenter),
        isNull(g.revokedAt),
        isNull(g.expiryNoticeAt),
        gt(g.expiresAt, now),
        lte(g.expiresAt, horizon),
      ),
    )
    .orderBy(asc(g.expiresAt), asc(g.id))
    .limit(limit);
}

/**
 * Claims a grant's one expiry notice: sets expiry_notice_at where it is still unset and the grant is
 * still live and ending by `horizon`. True for exactly one claimant however many nodes try at once
 * (PostgreSQL re-checks the WHERE after the row lock of a concurrent claim; SQLite runs one writer).
 */
export async function claimExpiryNotice(tx: Tx, id: number, now: Date, horizon: Date): Promise<boolean> {
  const q = query(tx);
  const g = q.t.accessGrants;
  const changed = affected(
    await q.db
      .update(g)
      .set({ expiryNoticeAt: now })
      .where(
        and(
          eq(g.trustCenterId, q.trustCenter),
          eq(g.id, id),
          isNull(g.revokedAt),
          isNull(g.expiryNoticeAt),
          gt(g.expiresAt, now),
          lte(g.expiresAt, horizon),
        ),
      ),
  );
  return changed === 1;
}

export interface ViewTally {
  company: string;
  recipientId: number;
  document: string;
  kind: 'view' | 'download';
  n: number;
  last: Date;
}

/** Views and downloads per company (as given on the grant), person and document: how many, and the last. */
export async function viewTallies(r: Reader | Tx): Promise<ViewTally[]> {
  const q = reading(r);
  const { documentViews: v, accessGrants: g } = q.t;
  const rows = await q.db
    .select({ company: g.company, recipientId: v.recipientId, document: v.document, kind: v.kind, n: count(), last: max(v.at) })
    .from(v)
    .innerJoin(g, and(eq(g.id, v.grantId), eq(g.trustCenterId, q.trustCenter)))
    .where(eq(v.trustCenterId, q.trustCenter))
    .groupBy(g.company, v.recipientId, v.document, v.kind);
  return rows.map((row) => ({ ...row, n: toInteger(row.n), last: row.last ?? new Date(0) }));
}

export interface CompanyCount {
  company: string;
  recipientId: number;
  name: string;
  n: number;
}

/** Requests (email verified, so unverified ones are left out) per company as given and person. */
export async function requestCounts(r: Reader | Tx): Promise<CompanyCount[]> {
  const q = reading(r);
  const ar = q.t.accessRequests;
  const rows = await q.db
    .select({ company: ar.company, recipientId: ar.recipientId, name: max(ar.name), n: count() })
    .from(ar)
    .where(and(eq(ar.trustCenterId, q.trustCenter), ne(ar.status, 'unverified')))
    .groupBy(ar.company, ar.recipientId);
  return rows.map((row) => ({ ...row, name: row.name ?? '', n: toInteger(row.n) }));
}

/** Grants per company as given and person. */
export async function grantCounts(r: Reader | Tx): Promise<CompanyCount[]> {
  const q = reading(r);
  const g = q.t.accessGrants;
  const rows = await q.db
    .select({ company: g.company, recipientId: g.recipientId, name: max(g.name), n: count() })
    .from(g)
    .where(eq(g.trustCenterId, q.trustCenter))
    .groupBy(g.company, g.recipientId);
  return rows.map((row) => ({ ...row, name: row.name ?? '', n: toInteger(row.n) }));
}

export interface ViewEvent {
  id: number;
  grantId: number;
  recipientId: number;
  name: string;
  company: string;
  document: string;
  kind: 'view' | 'download';
  at: Date;
  ip: string | null;
}

const viewColumns = (q: ReturnType<typeof reading>) => {
  const { documentViews: v, accessGrants: g } = q.t;
  return {
    id: v.id,
    grantId: v.grantId,
    recipientId: v.recipientId,
    name: g.name,
    company: g.company,
    document: v.document,
    kind: v.kind,
    at: v.at,
    ip: v.ip,
  };
};

/** The most recent views and downloads, newest first. */
export async function recentViews(r: Reader | Tx, limit: number): Promise<ViewEvent[]> {
  const q = reading(r);
  const { documentViews: v, accessGrants: g } = q.t;
  return q.db
    .select(viewColumns(q))
    .from(v)
    .innerJoin(g, and(eq(g.id, v.grantId), eq(g.trustCenterId, q.trustCenter)))
    .where(eq(v.trustCenterId, q.trustCenter))
    .orderBy(desc(v.at), desc(v.id))
    .limit(limit);
}

/** Views and downloads by id after `after`, for the export. */
export async function viewPage(r: Reader | Tx, after: number, limit: number): Promise<ViewEvent[]> {
  const q = reading(r);
  const { documentViews: v, accessGrants: g } = q.t;
  return q.db
    .select(viewColumns(q))
    .from(v)
    .innerJoin(g, and(eq(g.id, v.grantId), eq(g.trustCenterId, q.trustCenter)))
    .where(and(eq(v.trustCenterId, q.trustCenter), gt(v.id, after)))
    .orderBy(asc(v.id))
    .limit(limit);
}

export type RequestRow = typeof accessRequests.$inferSelect;

/** Requests by id after `after`, for the export. */
export async function requestPage(r: Reader | Tx, after: number, limit: number): Promise<RequestRow[]> {
  const q = reading(r);
  const ar = q.t.accessRequests;
  return q.db
    .select()
    .from(ar)
    .where(and(eq(ar.trustCenterId, q.trustCenter), gt(ar.id, after)))
    .orderBy(asc(ar.id))
    .limit(limit);
}

/** Grants by id after `after`, for the export. */
export async function grantPage(r: Reader | Tx, after: number, limit: number): Promise<AccessGrantRow[]> {
  const q = reading(r);
  const g = q.t.accessGrants;
  return q.db
    .select()
    .from(g)
    .where(and(eq(g.trustCenterId, q.trustCenter), gt(g.id, after)))
    .orderBy(asc(g.id))
    .limit(limit);
}

export interface AcceptanceRow {
  id: number;
  recipientId: number;
  grantId: number | null;
  fullName: string;
  company: string;
  acceptedAt: Date;
  ip: string | null;
  userAgent: string | null;
  ndaHash: string;
  ndaTitle: string;
}

const acceptanceColumns = (q: ReturnType<typeof reading>) => {
  const { ndaAcceptances: a, ndaTexts: t } = q.t;
  return {
    id: a.id,
    recipientId: a.recipientId,
    grantId: a.grantId,
    fullName: a.fullName,
    company: a.company,
    acceptedAt: a.acceptedAt,
    ip: a.ip,
    userAgent: a.userAgent,
    ndaHash: a.ndaHash,
    ndaTitle: t.title,
  };
};

/** The most recent NDA acceptances, newest first. */
export async function recentAcceptances(r: Reader | Tx, limit: number): Promise<AcceptanceRow[]> {
  const q = reading(r);
  const { ndaAcceptances: a, ndaTexts: t } = q.t;
  return q.db
    .select(acceptanceColumns(q))
    .from(a)
    .innerJoin(t, and(eq(t.hash, a.ndaHash), eq(t.trustCenterId, q.trustCenter)))
    .where(eq(a.trustCenterId, q.trustCenter))
    .orderBy(desc(a.acceptedAt), desc(a.id))
    .limit(limit);
}

/** NDA acceptances by id after `after`, for the export. */
export async function acceptancePage(r: Reader | Tx, after: number, limit: number): Promise<AcceptanceRow[]> {
  const q = reading(r);
  const { ndaAcceptances: a, ndaTexts: t } = q.t;
  return q.db
    .select(acceptanceColumns(q))
    .from(a)
    .innerJoin(t, and(eq(t.hash, a.ndaHash), eq(t.trustCenterId, q.trustCenter)))
    .where(and(eq(a.trustCenterId, q.trustCenter), gt(a.id, after)))
    .orderBy(asc(a.id))
    .limit(limit);
}

export interface AccessPerson {
  recipientId: number;
  channel: ChannelName;
  /** sealed */
  address: string;
  /** the customer organisation whose verified domain the address is in */
  organisation: string | null;
}

/** The sealed addresses of these recipients, with the customer organisation their email domain belongs to. */
export async function peopleByIds(r: Reader | Tx, ids: readonly number[]): Promise<Map<number, AccessPerson>> {
  const found = new Map<number, AccessPerson>();
  if (ids.length === 0) return found;
  const q = reading(r);
  const { recipients: rc, organisationDomains: d, customerOrganisations: o } = q.t;
  const unique = [...new Set(ids)];
  // in chunks: an IN list stays far below either engine's limit on bound parameters
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await q.db
      .select({ recipientId: rc.id, channel: rc.channel, address: rc.address, organisation: o.name })
      .from(rc)
      .leftJoin(d, and(eq(d.domainHash, rc.domainHash), eq(d.trustCenterId, q.trustCenter)))
      .leftJoin(o, and(eq(o.id, d.organisationId), eq(o.trustCenterId, q.trustCenter)))
      .where(and(eq(rc.trustCenterId, q.trustCenter), inArray(rc.id, unique.slice(i, i + 500))));
    for (const row of rows) found.set(row.recipientId, row);
  }
  return found;
}

/** Staff by id: their name, or their email where they have none. */
export async function staffNames(r: Reader | Tx, ids: readonly (number | null)[]): Promise<Map<number, string>> {
  const wanted = [...new Set(ids.filter((id): id is number => id !== null))];
  if (wanted.length === 0) return new Map();
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db
    .select({ id: s.id, name: s.name, email: s.email })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), inArray(s.id, wanted)));
  return new Map(rows.map((row) => [row.id, row.name?.trim() ? row.name : row.email]));
}

/** How many rows the activity export has now (requests, grants, views), for its audit entry. */
export async function activityCounts(r: Reader | Tx): Promise<{ requests: number; grants: number; views: number }> {
  const q = reading(r);
  const { accessRequests: ar, accessGrants: g, documentViews: v } = q.t;
  return {
    requests: toInteger(await q.db.$count(ar, eq(ar.trustCenterId, q.trustCenter))),
    grants: toInteger(await q.db.$count(g, eq(g.trustCenterId, q.trustCenter))),
    views: toInteger(await q.db.$count(v, eq(v.trustCenterId, q.trustCenter))),
  };
}

export async function acceptanceCount(r: Reader | Tx): Promise<number> {
  const q = reading(r);
  const a = q.t.ndaAcceptances;
  return toInteger(await q.db.$count(a, eq(a.trustCenterId, q.trustCenter)));
}
