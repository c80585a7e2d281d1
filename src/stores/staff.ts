/**
 * Staff accounts, their recovery codes and their one-time links (`staff`, `recovery_codes`,
 * `staff_links`), on SQLite and PostgreSQL alike. The convention is src/stores/rate-limits.ts's:
 * async functions on the caller's `Tx` or `Reader`, every query scoped to `q.trustCenter`, no
 * transaction opened here; what the rows mean (who may sign in, what is audited) is
 * src/core/auth/console-auth.ts's.
 *
 * What must hold under concurrent requests is said in one statement each, so PostgreSQL's
 * concurrent transactions cannot lose or double a count:
 * - a TOTP step is claimed by a conditional UPDATE (`totp_last_counter` below the step), so of two
 *   uses of one code one wins (`claimTotpStep`);
 * - a recovery code is used by a conditional UPDATE (`used_at IS NULL`), so it is accepted once
 *   (`useRecoveryCode`);
 * - a link is consumed the same way (`consumeLinkRow`), so two tabs cannot both complete it;
 * - the device generation is raised in SQL (`device_generation + 1`), never read and written back.
 * Where a flow reads and then writes on one account (the second factor, new recovery codes), it
 * takes `lockStaffMember` first: a row lock on PostgreSQL, nothing on SQLite (its transactions
 * never interleave).
 */
import { and, eq, isNull, lt, ne, or, sql } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { recoveryCodes, staff, staffLinks } from '../../db/schema.ts';
import { staff as pgStaff } from '../../db/schema-pg.ts';

export type StaffRow = typeof staff.$inferSelect;
export type StaffRole = StaffRow['role'];
export type StaffStatus = StaffRow['status'];
export type LinkRow = typeof staffLinks.$inferSelect;
export type LinkPurpose = LinkRow['purpose'];
export type RecoveryCodeRow = typeof recoveryCodes.$inferSelect;

/** What a flow may change on an account (updatedAt is stamped by `updateStaffRow`). */
export type StaffChanges = Partial<
  Pick<
    StaffRow,
    | 'name'
    | 'role'
    | 'status'
    | 'passwordHash'
    | 'totpSecret'
    | 'totpEnrolledAt'
    | 'totpLastCounter'
    | 'ssoIssuer'
    | 'ssoSubject'
    | 'breakGlass'
  >
>;

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export async function staffById(r: Reader | Tx, id: number): Promise<StaffRow | undefined> {
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db
    .select()
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id)))
    .limit(1);
  return rows[0];
}

/** The account of a (normalised, lower-cased) email address. */
export async function staffByEmail(r: Reader | Tx, email: string): Promise<StaffRow | undefined> {
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db
    .select()
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.email, email)))
    .limit(1);
  return rows[0];
}

/** The account linked to an OpenID provider's identity (issuer and subject) at an earlier SSO sign-in. */
export async function staffBySsoIdentity(r: Reader | Tx, issuer: string, subject: string): Promise<StaffRow | undefined> {
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db
    .select()
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.ssoIssuer, issuer), eq(s.ssoSubject, subject)))
    .limit(1);
  return rows[0];
}

/** Every account, by email (code point order: ORDER BY would follow each engine's collation). */
export async function staffRows(r: Reader | Tx): Promise<StaffRow[]> {
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db.select().from(s).where(eq(s.trustCenterId, q.trustCenter));
  return rows.sort((a, b) => byText(a.email, b.email) || a.id - b.id);
}

/**
 * The account, for the rest of the transaction to decide on and change: on PostgreSQL its row is
 * locked (`FOR UPDATE`) until the transaction ends, so flows on one account that read, then write
 * (a second-factor attempt: check the limits, claim the code, count the failure) run one after the
 * other; SQLite's transactions never interleave, so there it is a plain read.
 */
export async function lockStaffMember(tx: Tx, id: number): Promise<StaffRow | undefined> {
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it).
    const rows = await tx.db
      .select()
      .from(pgStaff)
      .where(and(eq(pgStaff.trustCenterId, tx.trustCenter), eq(pgStaff.id, id)))
      .limit(1)
      .for('update');
    return rows[0];
  }
  return staffById(tx, id);
}

/**
 * A new invited account, or undefined when the address has one already (a concurrent invitation
 * may have made it): the unique email answers, `ON CONFLICT DO NOTHING` (no error, so PostgreSQL's
 * transaction goes on), and the caller reads the one that is there.
 */
export async function insertStaffIfAbsent(tx: Tx, email: string, role: StaffRole, now: Date): Promise<StaffRow | undefined> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.staff)
    .values({ email, role, status: 'invited', createdAt: now, updatedAt: now, trustCenterId: q.trustCenter })
    .onConflictDoNothing()
    .returning();
  return rows[0];
}

/** Changes the account; how many rows changed (0 when there is no such account). */
export async function updateStaffRow(tx: Tx, id: number, changes: StaffChanges, now: Date): Promise<number> {
  const q = query(tx);
  const s = q.t.staff;
  return affected(
    await q.db
      .update(s)
      .set({ ...changes, updatedAt: now })
      .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id))),
  );
}

/** Raises the account's device generation in one statement: none of its recognised-device cookies counts any more. */
export async function raiseDeviceGeneration(tx: Tx, id: number, now: Date): Promise<void> {
  const q = query(tx);
  const s = q.t.staff;
  await q.db
    .update(s)
    .set({ deviceGeneration: sql`${s.deviceGeneration} + 1`, updatedAt: now })
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id)));
}

/**
 * Removes password, second factor and the SSO identity and forgets every device, in one statement; the account is
 * invited again (an owner's sign-in reset).
 */
export async function resetStaffRow(tx: Tx, id: number, now: Date): Promise<number> {
  const q = query(tx);
  const s = q.t.staff;
  return affected(
    await q.db
      .update(s)
      .set({
        passwordHash: null,
        totpSecret: null,
        totpEnrolledAt: null,
        totpLastCounter: null,
        // the next SSO sign-in links the provider's identity again, by verified email
        ssoIssuer: null,
        ssoSubject: null,
        status: 'invited',
        deviceGeneration: sql`${s.deviceGeneration} + 1`,
        updatedAt: now,
      })
      .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id))),
  );
}

/**
 * Active owners, but `except` (an account whose change is being decided); with `breakGlass`, only
 * those marked break-glass.
 */
export async function activeOwnerCount(r: Reader | Tx, except?: number, options: { breakGlass?: true } = {}): Promise<number> {
  const q = reading(r);
  const s = q.t.staff;
  return q.db.$count(
    s,
    and(
      eq(s.trustCenterId, q.trustCenter),
      eq(s.role, 'owner'),
      eq(s.status, 'active'),
      options.breakGlass ? eq(s.breakGlass, true) : undefined,
      except === undefined ? undefined : ne(s.id, except),
    ),
  );
}

/** Active owners marked break-glass, but `except`. */
export const breakGlassOwnerCount = (r: Reader | Tx, except?: number): Promise<number> => activeOwnerCount(r, except, { breakGlass: true });

/** Staff accounts in each status (the dashboard). */
export async function staffCountWithStatus(r: Reader | Tx, status: StaffStatus): Promise<number> {
  const q = reading(r);
  const s = q.t.staff;
  return q.db.$count(s, and(eq(s.trustCenterId, q.trustCenter), eq(s.status, status)));
}

/**
 * Claims TOTP step `counter` for the account: true when it was later than the last step claimed
 * (or none was), in one conditional UPDATE, so of two uses of one code, concurrent or not, one wins.
 */
export async function claimTotpStep(tx: Tx, id: number, counter: number, now: Date): Promise<boolean> {
  const q = query(tx);
  const s = q.t.staff;
  const changed = affected(
    await q.db
      .update(s)
      .set({ totpLastCounter: counter, updatedAt: now })
      .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id), or(isNull(s.totpLastCounter), lt(s.totpLastCounter, counter)))),
  );
  return changed === 1;
}

/** Enrols the sealed TOTP key, its first step claimed. */
export async function enrolTotp(tx: Tx, id: number, sealedKey: string, counter: number, now: Date): Promise<void> {
  const q = query(tx);
  const s = q.t.staff;
  await q.db
    .update(s)
    .set({ totpSecret: sealedKey, totpEnrolledAt: now, totpLastCounter: counter, updatedAt: now })
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id)));
}

/**
 * Uses the account's unused recovery code of this hash: true when it was unused, in one conditional
 * UPDATE (`used_at IS NULL`), so a code is accepted once however many requests present it at once.
 */
export async function useRecoveryCode(tx: Tx, staffId: number, codeHash: string, now: Date): Promise<boolean> {
  const q = query(tx);
  const c = q.t.recoveryCodes;
  const changed = affected(
    await q.db
      .update(c)
      .set({ usedAt: now })
      .where(and(eq(c.trustCenterId, q.trustCenter), eq(c.staffId, staffId), eq(c.codeHash, codeHash), isNull(c.usedAt))),
  );
  // Two codes of one account never share a hash (random codes); more than one would be a fault, not a use.
  return changed >= 1;
}

export async function unusedRecoveryCodeCount(r: Reader | Tx, staffId: number): Promise<number> {
  const q = reading(r);
  const c = q.t.recoveryCodes;
  return q.db.$count(c, and(eq(c.trustCenterId, q.trustCenter), eq(c.staffId, staffId), isNull(c.usedAt)));
}

/** Replaces the account's recovery codes with these hashes (none: removes them). Take `lockStaffMember` first. */
export async function replaceRecoveryCodes(tx: Tx, staffId: number, codeHashes: readonly string[]): Promise<void> {
  const q = query(tx);
  const c = q.t.recoveryCodes;
  await q.db.delete(c).where(and(eq(c.trustCenterId, q.trustCenter), eq(c.staffId, staffId)));
  if (codeHashes.length === 0) return;
  await q.db.insert(c).values(codeHashes.map((codeHash) => ({ staffId, codeHash, trustCenterId: q.trustCenter })));
}

export interface NewLink {
  id: string;
  staffId: number;
  purpose: LinkPurpose;
  secretHash: Buffer;
  createdBy: number | null;
  createdAt: Date;
  expiresAt: Date;
}

export async function insertLink(tx: Tx, link: NewLink): Promise<LinkRow> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.staffLinks)
    .values({ ...link, usedAt: null, trustCenterId: q.trustCenter })
    .returning();
  const row = rows[0];
  if (!row) throw new Error('the link was not inserted');
  return row;
}

export async function linkById(r: Reader | Tx, id: string): Promise<LinkRow | undefined> {
  const q = reading(r);
  const l = q.t.staffLinks;
  const rows = await q.db
    .select()
    .from(l)
    .where(and(eq(l.trustCenterId, q.trustCenter), eq(l.id, id)))
    .limit(1);
  return rows[0];
}

/** Marks every unused link of the account used; how many. */
export async function revokeLinkRows(tx: Tx, staffId: number, now: Date): Promise<number> {
  const q = query(tx);
  const l = q.t.staffLinks;
  return affected(
    await q.db
      .update(l)
      .set({ usedAt: now })
      .where(and(eq(l.trustCenterId, q.trustCenter), eq(l.staffId, staffId), isNull(l.usedAt))),
  );
}

/** Marks the link used: false when it was used meanwhile, in one conditional UPDATE, so of two tabs one completes. */
export async function consumeLinkRow(tx: Tx, id: string, now: Date): Promise<boolean> {
  const q = query(tx);
  const l = q.t.staffLinks;
  const changed = affected(
    await q.db
      .update(l)
      .set({ usedAt: now })
      .where(and(eq(l.trustCenterId, q.trustCenter), eq(l.id, id), isNull(l.usedAt))),
  );
  return changed === 1;
}
