/**
 * Customer organisations, their email domains and the members staff placed in them
 * (`customer_organisations`, `organisation_domains`, `organisation_members`), on SQLite and
 * PostgreSQL alike. The convention is src/stores/rate-limits.ts's: async functions on the caller's
 * `Tx` or `Reader`, every query scoped to `q.trustCenter`, no transaction opened here; what the rows
 * mean (who may be added, what is audited) is src/core/organisations/organisations.ts's.
 *
 * Who belongs (src/core/organisations/membership.ts): an email recipient whose domain blind index
 * (`recipients.domain_hash`) equals one of the organisation's (`organisation_domains.domain_hash`),
 * or a recipient staff placed. Both are plain joins here, no raw SQL; rows come back unsorted from
 * the database and are ordered in code, by code point, since ORDER BY follows each engine's collation.
 */
import { and, countDistinct, eq, inArray, isNotNull, ne, type SQL } from 'drizzle-orm';
import { toInteger } from '../../db/engine/common.ts';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';

export interface OrganisationRow {
  id: number;
  name: string;
}

/** Who did it and when, for the rows staff write. */
export interface Stamp {
  at: Date;
  by: number;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** SQLite's `lower()`, which the listing ordered by before: ASCII letters only. */
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
const byName = (a: { name: string }, b: { name: string }) => byText(asciiLower(a.name), asciiLower(b.name));

/** Every organisation's id and name, ordered by name (case-insensitively), then id. */
export async function organisationRows(r: Reader | Tx): Promise<OrganisationRow[]> {
  const q = reading(r);
  const o = q.t.customerOrganisations;
  const rows = await q.db.select({ id: o.id, name: o.name }).from(o).where(eq(o.trustCenterId, q.trustCenter));
  return rows.sort((a, b) => byName(a, b) || a.id - b.id);
}

export async function organisationRow(r: Reader | Tx, id: number): Promise<OrganisationRow | undefined> {
  const q = reading(r);
  const o = q.t.customerOrganisations;
  const rows = await q.db
    .select({ id: o.id, name: o.name })
    .from(o)
    .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id)))
    .limit(1);
  return rows[0];
}

/** Names by id; an id with no organisation is absent. */
export async function namesOf(r: Reader | Tx, ids: readonly number[]): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const q = reading(r);
  const o = q.t.customerOrganisations;
  const rows = await q.db
    .select({ id: o.id, name: o.name })
    .from(o)
    .where(and(eq(o.trustCenterId, q.trustCenter), inArray(o.id, [...ids])));
  return new Map(rows.map((row) => [row.id, row.name]));
}

/** The organisation a (normalised) domain is one of, if any. */
export async function domainOwner(r: Reader | Tx, domain: string): Promise<OrganisationRow | undefined> {
  const q = reading(r);
  const { organisationDomains: d, customerOrganisations: o } = q.t;
  const rows = await q.db
    .select({ id: o.id, name: o.name })
    .from(d)
    .innerJoin(o, and(eq(o.id, d.organisationId), eq(o.trustCenterId, q.trustCenter)))
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.domain, domain)))
    .limit(1);
  return rows[0];
}

export async function insertOrganisation(tx: Tx, name: string, stamp: Stamp): Promise<number> {
  const q = query(tx);
  const o = q.t.customerOrganisations;
  const rows = await q.db
    .insert(o)
    .values({ name, createdAt: stamp.at, createdBy: stamp.by, updatedAt: stamp.at, updatedBy: stamp.by, trustCenterId: q.trustCenter })
    .returning({ id: o.id });
  const row = rows[0];
  if (!row) throw new Error('the organisation was not inserted');
  return row.id;
}

export async function renameOrganisationRow(tx: Tx, id: number, name: string, stamp: Stamp): Promise<number> {
  const q = query(tx);
  const o = q.t.customerOrganisations;
  return affected(
    await q.db
      .update(o)
      .set({ name, updatedAt: stamp.at, updatedBy: stamp.by })
      .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id))),
  );
}

/** Marks the organisation changed now, by this staff member. */
export async function touchOrganisation(tx: Tx, id: number, stamp: Stamp): Promise<void> {
  const q = query(tx);
  const o = q.t.customerOrganisations;
  await q.db
    .update(o)
    .set({ updatedAt: stamp.at, updatedBy: stamp.by })
    .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id)));
}

/** Removes the organisation; its domains and staff memberships go with it (foreign keys, both engines). */
export async function deleteOrganisationRow(tx: Tx, id: number): Promise<number> {
  const q = query(tx);
  const o = q.t.customerOrganisations;
  return affected(await q.db.delete(o).where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id))));
}

export async function insertDomain(tx: Tx, organisationId: number, domain: string, domainHash: string, stamp: Stamp): Promise<void> {
  const q = query(tx);
  await q.db
    .insert(q.t.organisationDomains)
    .values({ organisationId, domain, domainHash, addedAt: stamp.at, addedBy: stamp.by, trustCenterId: q.trustCenter });
}

/** How many were removed (0 or 1). */
export async function deleteDomain(tx: Tx, organisationId: number, domain: string): Promise<number> {
  const q = query(tx);
  const d = q.t.organisationDomains;
  return affected(
    await q.db.delete(d).where(and(eq(d.trustCenterId, q.trustCenter), eq(d.organisationId, organisationId), eq(d.domain, domain))),
  );
}

/** The organisation's domains, in order. */
export async function domainsOf(r: Reader | Tx, organisationId: number): Promise<string[]> {
  const q = reading(r);
  const d = q.t.organisationDomains;
  const rows = await q.db
    .select({ domain: d.domain })
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.organisationId, organisationId)));
  return rows.map((row) => row.domain).sort(byText);
}

/** How many addresses staff placed in the organisation, whatever their state. */
export async function staffMemberCount(r: Reader | Tx, organisationId: number): Promise<number> {
  const q = reading(r);
  const m = q.t.organisationMembers;
  return toInteger(await q.db.$count(m, and(eq(m.trustCenterId, q.trustCenter), eq(m.organisationId, organisationId))));
}

/** Every organisation's domains, each list in order. */
export async function allDomains(r: Reader | Tx): Promise<Map<number, string[]>> {
  const q = reading(r);
  const d = q.t.organisationDomains;
  const rows = await q.db.select({ organisationId: d.organisationId, domain: d.domain }).from(d).where(eq(d.trustCenterId, q.trustCenter));
  const domains = new Map<number, string[]>();
  for (const row of rows.sort((a, b) => byText(a.domain, b.domain)))
    domains.set(row.organisationId, [...(domains.get(row.organisationId) ?? []), row.domain]);
  return domains;
}

export interface DomainDetail {
  domain: string;
  addedAt: Date;
  addedBy: string | null;
}

export async function domainDetails(r: Reader | Tx, organisationId: number): Promise<DomainDetail[]> {
  const q = reading(r);
  const { organisationDomains: d, staff: s } = q.t;
  const rows = await q.db
    .select({ domain: d.domain, addedAt: d.addedAt, addedBy: s.email })
    .from(d)
    .leftJoin(s, and(eq(s.id, d.addedBy), eq(s.trustCenterId, q.trustCenter)))
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.organisationId, organisationId)));
  return rows.sort((a, b) => byText(a.domain, b.domain));
}

export interface OrganisationDetail extends OrganisationRow {
  createdAt: Date;
  createdBy: string | null;
  updatedAt: Date;
  updatedBy: string | null;
}

export async function organisationDetail(r: Reader | Tx, id: number): Promise<OrganisationDetail | undefined> {
  const q = reading(r);
  const { customerOrganisations: o, staff } = q.t;
  const rows = await q.db
    .select({ id: o.id, name: o.name, createdAt: o.createdAt, createdBy: o.createdBy, updatedAt: o.updatedAt, updatedBy: o.updatedBy })
    .from(o)
    .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id)))
    .limit(1);
  const row = rows[0];
  if (!row) return undefined;
  const ids = [row.createdBy, row.updatedBy].filter((v): v is number => v !== null);
  const emails = new Map(
    ids.length === 0
      ? []
      : (
          await q.db
            .select({ id: staff.id, email: staff.email })
            .from(staff)
            .where(and(eq(staff.trustCenterId, q.trustCenter), inArray(staff.id, ids)))
        ).map((s) => [s.id, s.email]),
  );
  const email = (id: number | null) => (id === null ? null : (emails.get(id) ?? null));
  return { ...row, createdBy: email(row.createdBy), updatedBy: email(row.updatedBy) };
}

/** Unresolved incidents whose audience names this organisation, by id. */
export async function openIncidentsFor(r: Reader | Tx, organisationId: number): Promise<{ id: number; title: string }[]> {
  const q = reading(r);
  const i = q.t.incidents;
  // The audience is a JSON array (text on SQLite, jsonb on PostgreSQL): the column's mapping parses it on
  // both, so it is matched here rather than with each engine's own JSON functions.
  const rows = await q.db
    .select({ id: i.id, title: i.title, audience: i.audienceOrganisationIds })
    .from(i)
    .where(and(eq(i.trustCenterId, q.trustCenter), ne(i.status, 'resolved'), isNotNull(i.audienceOrganisationIds)));
  return rows
    .filter((row) => row.audience?.includes(organisationId))
    .map(({ id, title }) => ({ id, title }))
    .sort((a, b) => a.id - b.id);
}

export async function subscriberRow(r: Reader | Tx, id: number): Promise<{ id: number; organisation: string | null } | undefined> {
  const q = reading(r);
  const s = q.t.subscribers;
  const rows = await q.db
    .select({ id: s.id, organisation: s.organisation })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id)))
    .limit(1);
  return rows[0];
}

/** The subscriber's addresses, by id. */
export async function recipientsOf(r: Reader | Tx, subscriberId: number): Promise<{ id: number; channel: ChannelName }[]> {
  const q = reading(r);
  const rc = q.t.recipients;
  const rows = await q.db
    .select({ id: rc.id, channel: rc.channel })
    .from(rc)
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.subscriberId, subscriberId)));
  return rows.sort((a, b) => a.id - b.id);
}

/** Places the recipient in the organisation; false when it already was. */
export async function insertMember(
  tx: Tx,
  member: { organisationId: number; recipientId: number; basis: 'assigned' | 'claim' },
  stamp: Stamp,
): Promise<boolean> {
  const q = query(tx);
  const m = q.t.organisationMembers;
  const rows = await q.db
    .insert(m)
    .values({ ...member, createdAt: stamp.at, createdBy: stamp.by, trustCenterId: q.trustCenter })
    .onConflictDoNothing({ target: [m.organisationId, m.recipientId] })
    .returning({ id: m.id });
  return rows.length === 1;
}

export interface MembershipHeader {
  organisationId: number;
  organisation: string;
  recipientId: number;
  basis: 'assigned' | 'claim';
  channel: ChannelName;
  subscriberId: number | null;
}

/** A staff membership with its organisation's name and its address's channel and subscriber. */
export async function membershipById(r: Reader | Tx, membershipId: number): Promise<MembershipHeader | undefined> {
  const q = reading(r);
  const { organisationMembers: m, customerOrganisations: o, recipients: rc } = q.t;
  const rows = await q.db
    .select({
      organisationId: m.organisationId,
      organisation: o.name,
      recipientId: m.recipientId,
      basis: m.basis,
      channel: rc.channel,
      subscriberId: rc.subscriberId,
    })
    .from(m)
    .innerJoin(o, and(eq(o.id, m.organisationId), eq(o.trustCenterId, q.trustCenter)))
    .innerJoin(rc, and(eq(rc.id, m.recipientId), eq(rc.trustCenterId, q.trustCenter)))
    .where(and(eq(m.trustCenterId, q.trustCenter), eq(m.id, membershipId)))
    .limit(1);
  return rows[0];
}

export async function deleteMembership(tx: Tx, membershipId: number): Promise<number> {
  const q = query(tx);
  const m = q.t.organisationMembers;
  return affected(await q.db.delete(m).where(and(eq(m.trustCenterId, q.trustCenter), eq(m.id, membershipId))));
}

/** Active addresses that belong, per organisation: by an email domain, and placed by staff (each address once per kind). */
export async function activeMemberCounts(r: Reader | Tx): Promise<Map<number, { domain: number; staff: number }>> {
  const q = reading(r);
  const { organisationDomains: d, organisationMembers: m, recipients: rc } = q.t;
  const byDomain = await q.db
    .select({ organisationId: d.organisationId, n: countDistinct(rc.id) })
    .from(rc)
    .innerJoin(d, and(eq(d.domainHash, rc.domainHash), eq(d.trustCenterId, q.trustCenter)))
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.channel, 'email'), eq(rc.status, 'active')))
    .groupBy(d.organisationId);
  const byStaff = await q.db
    .select({ organisationId: m.organisationId, n: countDistinct(rc.id) })
    .from(m)
    .innerJoin(rc, and(eq(rc.id, m.recipientId), eq(rc.trustCenterId, q.trustCenter)))
    .where(and(eq(m.trustCenterId, q.trustCenter), eq(rc.status, 'active')))
    .groupBy(m.organisationId);
  const counts = new Map<number, { domain: number; staff: number }>();
  const entry = (id: number) => counts.get(id) ?? counts.set(id, { domain: 0, staff: 0 }).get(id) ?? { domain: 0, staff: 0 };
  for (const row of byDomain) entry(row.organisationId).domain = toInteger(row.n);
  for (const row of byStaff) entry(row.organisationId).staff = toInteger(row.n);
  return counts;
}

export interface MemberRow {
  organisationId: number;
  organisation: string;
  recipientId: number;
  subscriberId: number | null;
  channel: ChannelName;
  status: string;
  /** the address as stored (sealed) */
  address: string;
  basis: 'domain' | 'assigned' | 'claim';
  /** the matching domain (basis `domain`) */
  domain: string | null;
  /** the staff membership (bases `assigned`, `claim`), when and by whom */
  membershipId: number | null;
  since: Date | null;
  by: string | null;
}

const basisOrder = (a: MemberRow['basis'], b: MemberRow['basis']) => byText(a, b);

/**
 * Who belongs, one row per (organisation, address, basis), of one subscriber or one organisation:
 * domain matches only for confirmed (active) addresses, staff memberships whatever the address's
 * state. Ordered by organisation name, subscriber, address and basis.
 */
export async function memberRows(r: Reader | Tx, of: { subscriberId: number } | { organisationId: number }): Promise<MemberRow[]> {
  const q = reading(r);
  const { organisationDomains: d, organisationMembers: m, customerOrganisations: o, recipients: rc, staff: s } = q.t;
  const domainFilter: SQL | undefined =
    'subscriberId' in of ? eq(rc.subscriberId, of.subscriberId) : eq(d.organisationId, of.organisationId);
  const staffFilter: SQL | undefined =
    'subscriberId' in of ? eq(rc.subscriberId, of.subscriberId) : eq(m.organisationId, of.organisationId);
  const recipient = { recipientId: rc.id, subscriberId: rc.subscriberId, channel: rc.channel, status: rc.status, address: rc.address };
  const byDomain = await q.db
    .select({ organisationId: d.organisationId, organisation: o.name, domain: d.domain, ...recipient })
    .from(rc)
    .innerJoin(d, and(eq(d.domainHash, rc.domainHash), eq(d.trustCenterId, q.trustCenter)))
    .innerJoin(o, and(eq(o.id, d.organisationId), eq(o.trustCenterId, q.trustCenter)))
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.channel, 'email'), eq(rc.status, 'active'), domainFilter));
  const byStaff = await q.db
    .select({
      organisationId: m.organisationId,
      organisation: o.name,
      basis: m.basis,
      membershipId: m.id,
      since: m.createdAt,
      by: s.email,
      ...recipient,
    })
    .from(m)
    .innerJoin(o, and(eq(o.id, m.organisationId), eq(o.trustCenterId, q.trustCenter)))
    .innerJoin(rc, and(eq(rc.id, m.recipientId), eq(rc.trustCenterId, q.trustCenter)))
    .leftJoin(s, and(eq(s.id, m.createdBy), eq(s.trustCenterId, q.trustCenter)))
    .where(and(eq(m.trustCenterId, q.trustCenter), staffFilter));
  const rows: MemberRow[] = [
    ...byDomain.map((row) => ({ ...row, basis: 'domain' as const, membershipId: null, since: null, by: null })),
    ...byStaff.map((row) => ({ ...row, domain: null })),
  ];
  return rows.sort(
    (a, b) =>
      byText(asciiLower(a.organisation), asciiLower(b.organisation)) ||
      (a.subscriberId ?? -1) - (b.subscriberId ?? -1) ||
      a.recipientId - b.recipientId ||
      basisOrder(a.basis, b.basis),
  );
}
