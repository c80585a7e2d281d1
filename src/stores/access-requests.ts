/**
 * Access requests, the staff rules on email domains, and the grants a decision writes (`access_requests`,
 * `access_rules`, `access_grants`), on SQLite and PostgreSQL alike, in the convention of
 * src/stores/reader-links.ts (async functions on the caller's `Tx` or `Reader`, scoped to
 * `q.trustCenter`). A request changes status by one conditional UPDATE on the status it had, so of two
 * decisions at once one wins. What a request means is src/core/access/requests.ts's.
 */
import { and, asc, desc, eq, isNull, lt, or } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { accessGrants, accessRequests, accessRules, recipients } from '../../db/schema.ts';

export type AccessRequestRow = typeof accessRequests.$inferSelect;
export type AccessRuleRow = typeof accessRules.$inferSelect;
export type AccessGrantRow = typeof accessGrants.$inferSelect;
export type AccessRequestStatus = AccessRequestRow['status'];
type SealedAddress = Pick<typeof recipients.$inferSelect, 'channel' | 'address' | 'secret' | 'status'>;

export type NewAccessRequest = Pick<AccessRequestRow, 'recipientId' | 'domain' | 'name' | 'company' | 'reason' | 'documents' | 'createdAt'>;

export async function insertAccessRequest(tx: Tx, row: NewAccessRequest): Promise<number> {
  const q = query(tx);
  const r = q.t.accessRequests;
  const [inserted] = await q.db
    .insert(r)
    .values({ ...row, status: 'unverified', trustCenterId: q.trustCenter })
    .returning({ id: r.id });
  if (!inserted) throw new Error('access request not inserted');
  return inserted.id;
}

export async function accessRequestById(rd: Reader | Tx, id: number): Promise<AccessRequestRow | undefined> {
  const q = reading(rd);
  const r = q.t.accessRequests;
  const rows = await q.db
    .select()
    .from(r)
    .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id)))
    .limit(1);
  return rows[0];
}

/** A request with its requester's sealed address (opened by the caller for display). */
export async function accessRequestWithAddress(
  rd: Reader | Tx,
  id: number,
): Promise<{ request: AccessRequestRow; recipient: SealedAddress } | undefined> {
  const q = reading(rd);
  const r = q.t.accessRequests;
  const p = q.t.recipients;
  const rows = await q.db
    .select({ request: r, channel: p.channel, address: p.address, secret: p.secret, status: p.status })
    .from(r)
    .innerJoin(p, eq(p.id, r.recipientId))
    .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id)))
    .limit(1);
  const row = rows[0];
  return row && { request: row.request, recipient: { channel: row.channel, address: row.address, secret: row.secret, status: row.status } };
}

export type RequestChange = Partial<
  Pick<
    AccessRequestRow,
    'verifiedAt' | 'decidedVia' | 'ruleId' | 'rulePattern' | 'decidedBy' | 'decidedAt' | 'refusalMessage' | 'remindedAt'
  >
> & { status: AccessRequestStatus };

/** Moves a request from status `from` to the change's: false when it was not in `from` any more (another decision won). */
export async function changeRequestStatus(tx: Tx, id: number, from: AccessRequestStatus, change: RequestChange): Promise<boolean> {
  const q = query(tx);
  const r = q.t.accessRequests;
  const changed = affected(
    await q.db
      .update(r)
      .set(change)
      .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id), eq(r.status, from))),
  );
  return changed === 1;
}

/** Pending requests not reminded since `remindedBefore` (or never), oldest first: candidates for a reminder. */
export async function pendingRequests(rd: Reader | Tx, limit = 200): Promise<AccessRequestRow[]> {
  const q = reading(rd);
  const r = q.t.accessRequests;
  return q.db
    .select()
    .from(r)
    .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.status, 'pending')))
    .orderBy(asc(r.createdAt), asc(r.id))
    .limit(limit);
}

/**
 * Records a reminder: only when the request is still pending and its `remindedAt` is still what the
 * caller saw, so of two nodes reminding at once one does.
 */
export async function markReminded(tx: Tx, id: number, seen: Date | null, now: Date): Promise<boolean> {
  const q = query(tx);
  const r = q.t.accessRequests;
  const changed = affected(
    await q.db
      .update(r)
      .set({ remindedAt: now })
      .where(
        and(
          eq(r.trustCenterId, q.trustCenter),
          eq(r.id, id),
          eq(r.status, 'pending'),
          seen ? eq(r.remindedAt, seen) : isNull(r.remindedAt),
        ),
      ),
  );
  return changed === 1;
}

/** The latest requests (the rules page's context and tests), newest first. */
export async function recentRequests(rd: Reader | Tx, limit: number, before?: Date): Promise<AccessRequestRow[]> {
  const q = reading(rd);
  const r = q.t.accessRequests;
  return q.db
    .select()
    .from(r)
    .where(and(eq(r.trustCenterId, q.trustCenter), before ? lt(r.createdAt, before) : undefined))
    .orderBy(desc(r.createdAt), desc(r.id))
    .limit(limit);
}

// --- grants ---

export type NewAccessGrant = Pick<
  AccessGrantRow,
  'requestId' | 'recipientId' | 'name' | 'company' | 'documents' | 'createdAt' | 'createdBy' | 'expiresAt'
>;

export async function insertAccessGrant(tx: Tx, grant: NewAccessGrant): Promise<number> {
  const q = query(tx);
  const g = q.t.accessGrants;
  const [inserted] = await q.db
    .insert(g)
    .values({ ...grant, trustCenterId: q.trustCenter })
    .returning({ id: g.id });
  if (!inserted) throw new Error('access grant not inserted');
  return inserted.id;
}

/** The grants that followed a request (the console's record of what was given). */
export async function grantsOfRequest(rd: Reader | Tx, requestId: number): Promise<AccessGrantRow[]> {
  const q = reading(rd);
  const g = q.t.accessGrants;
  return q.db
    .select()
    .from(g)
    .where(and(eq(g.trustCenterId, q.trustCenter), eq(g.requestId, requestId)))
    .orderBy(asc(g.id));
}

// --- rules ---

export async function accessRuleRows(rd: Reader | Tx): Promise<AccessRuleRow[]> {
  const q = reading(rd);
  const r = q.t.accessRules;
  return q.db.select().from(r).where(eq(r.trustCenterId, q.trustCenter)).orderBy(asc(r.pattern));
}

export async function accessRuleById(rd: Reader | Tx, id: number): Promise<AccessRuleRow | undefined> {
  const q = reading(rd);
  const r = q.t.accessRules;
  const rows = await q.db
    .select()
    .from(r)
    .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id)))
    .limit(1);
  return rows[0];
}

export type RuleFields = Pick<AccessRuleRow, 'pattern' | 'decision' | 'documents' | 'grantDays'>;

/**
 * Adds the rule of a pattern, or changes the one there is (the pattern is unique): the row before (none
 * when added) and after. `id` given: that rule is changed, to a pattern no other rule has.
 */
export async function upsertAccessRule(
  tx: Tx,
  fields: RuleFields,
  staffId: number,
  now: Date,
  id: number | null,
): Promise<{ before: AccessRuleRow | undefined; after: AccessRuleRow } | { clash: AccessRuleRow } | { missing: true }> {
  const q = query(tx);
  const r = q.t.accessRules;
  const existing = await q.db
    .select()
    .from(r)
    .where(and(eq(r.trustCenterId, q.trustCenter), or(eq(r.pattern, fields.pattern), id ? eq(r.id, id) : undefined)));
  const target = id ? existing.find((e) => e.id === id) : existing.find((e) => e.pattern === fields.pattern);
  if (id && !target) return { missing: true };
  const clash = existing.find((e) => e.pattern === fields.pattern && e.id !== target?.id);
  if (clash) return { clash };
  if (target) {
    const [after] = await q.db
      .update(r)
      .set({ ...fields, updatedAt: now, updatedBy: staffId })
      .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, target.id)))
      .returning();
    if (!after) throw new Error('access rule not updated');
    return { before: target, after };
  }
  const [after] = await q.db
    .insert(r)
    .values({ ...fields, createdAt: now, createdBy: staffId, updatedAt: now, updatedBy: staffId, trustCenterId: q.trustCenter })
    .onConflictDoNothing()
    .returning();
  if (!after) {
    // added by someone else a moment ago: report it as the clash it is
    const [other] = await q.db
      .select()
      .from(r)
      .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.pattern, fields.pattern)));
    if (other) return { clash: other };
    throw new Error('access rule not inserted');
  }
  return { before: undefined, after };
}

/** Removes a rule; the row it was, or undefined when there was none. */
export async function deleteAccessRule(tx: Tx, id: number): Promise<AccessRuleRow | undefined> {
  const q = query(tx);
  const r = q.t.accessRules;
  const [removed] = await q.db
    .delete(r)
    .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id)))
    .returning();
  return removed;
}
