/**
 * Customer organisations as staff keep them: a name, the email domains
 * Candor trusts for it, and the addresses staff placed in it (assigned, or
 * a subscriber's claim approved). Targeted notices name organisations from
 * here; who receives them is decided by membership.ts. Every change is
 * audited in the transaction that makes it; reading the members of one is
 * reading personal data, and the console audits it.
 */
import type { Db } from '../../../db/client.ts';
import type { ChannelName } from '../../../db/schema/notify.ts';
import type { AuditAction } from '../audit/actions.ts';
import { recordAudit } from '../audit/log.ts';
import { type Keys, maskAddress, openRecipient } from '../notify/recipients.ts';
import { checkDomain, domainHash } from './domains.ts';
import { basisLabels, type MembershipBasis, VERIFIED_MEMBERS_SQL } from './membership.ts';

export interface OrganisationContext {
  db: Db;
  keys: Keys;
  now: Date;
  actor: { id: number; label: string };
  ip: string | null;
  userAgent: string | null;
}

export type Result<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string };

const NAME_MAX = 200;
const DOMAINS_MAX = 50;

function audit(ctx: OrganisationContext, action: AuditAction, target: string, summary: Record<string, unknown>): void {
  recordAudit(
    ctx.db,
    {
      actor: { type: 'staff', id: ctx.actor.id, label: ctx.actor.label },
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      action,
      target,
      summary,
    },
    ctx.now,
  );
}

const cleanName = (raw: string) => raw.replace(/\s+/g, ' ').trim();
const sameName = (a: string, b: string) => a.toLocaleLowerCase('en') === b.toLocaleLowerCase('en');

function nameProblem(db: Db, name: string, except: number | null): string | null {
  if (name === '') return 'Give the organisation a name.';
  if (name.length > NAME_MAX) return `The name is too long (${NAME_MAX} characters at most).`;
  const rows = db.$client.prepare('SELECT id, name FROM customer_organisations').all() as { id: number; name: string }[];
  const taken = rows.find((r) => r.id !== except && sameName(r.name, name));
  return taken ? `There is already an organisation called ${taken.name}.` : null;
}

/** Why this domain cannot be added to the organisation, or the normalised domain. */
function domainFor(db: Db, organisationId: number | null, raw: string): { ok: true; domain: string } | { ok: false; message: string } {
  const checked = checkDomain(raw);
  if (!checked.ok) return checked;
  const owner = db.$client
    .prepare('SELECT o.id, o.name FROM organisation_domains d JOIN customer_organisations o ON o.id = d.organisation_id WHERE d.domain = ?')
    .get(checked.domain) as { id: number; name: string } | undefined;
  if (owner && owner.id === organisationId) return { ok: false, message: `${checked.domain} is already one of its domains.` };
  if (owner) return { ok: false, message: `${checked.domain} is already a domain of ${owner.name}: a domain belongs to one organisation.` };
  return checked;
}

const splitDomains = (text: string) =>
  text
    .split(/[\s,;]+/)
    .map((d) => d.trim())
    .filter(Boolean);

export function createOrganisation(ctx: OrganisationContext, rawName: string, domainsText: string): Result<{ id: number }> {
  const name = cleanName(rawName);
  const problem = nameProblem(ctx.db, name, null);
  if (problem) return { ok: false, message: problem };
  const typed = [...new Set(splitDomains(domainsText).map((d) => d.toLowerCase()))];
  if (typed.length > DOMAINS_MAX) return { ok: false, message: `Give at most ${DOMAINS_MAX} domains.` };
  const domains: string[] = [];
  for (const raw of typed) {
    const checked = domainFor(ctx.db, null, raw);
    if (!checked.ok) return checked;
    if (!domains.includes(checked.domain)) domains.push(checked.domain);
  }
  const sqlite = ctx.db.$client;
  const id = sqlite
    .transaction(() => {
      const { id } = sqlite
        .prepare(
          'INSERT INTO customer_organisations (name, created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) RETURNING id',
        )
        .get(name, ctx.now.getTime(), ctx.actor.id, ctx.now.getTime(), ctx.actor.id) as { id: number };
      const insert = sqlite.prepare(
        'INSERT INTO organisation_domains (organisation_id, domain, domain_hash, added_at, added_by) VALUES (?, ?, ?, ?, ?)',
      );
      for (const domain of domains) insert.run(id, domain, domainHash(ctx.keys.secret, domain), ctx.now.getTime(), ctx.actor.id);
      audit(ctx, 'organisations.created', `organisation:${id}`, { name, domains });
      return id;
    })
    .immediate();
  return { ok: true, id };
}

function organisationRow(db: Db, id: number): { id: number; name: string } | undefined {
  return db.$client.prepare('SELECT id, name FROM customer_organisations WHERE id = ?').get(id) as { id: number; name: string } | undefined;
}

const touch = (ctx: OrganisationContext, id: number) =>
  ctx.db.$client
    .prepare('UPDATE customer_organisations SET updated_at = ?, updated_by = ? WHERE id = ?')
    .run(ctx.now.getTime(), ctx.actor.id, id);

const NO_SUCH = 'There is no such organisation (it may have been deleted).';

export function renameOrganisation(ctx: OrganisationContext, id: number, rawName: string): Result {
  const current = organisationRow(ctx.db, id);
  if (!current) return { ok: false, message: NO_SUCH };
  const name = cleanName(rawName);
  if (name === current.name) return { ok: false, message: 'That is already its name.' };
  const problem = nameProblem(ctx.db, name, id);
  if (problem) return { ok: false, message: problem };
  ctx.db.$client
    .transaction(() => {
      ctx.db.$client.prepare('UPDATE customer_organisations SET name = ? WHERE id = ?').run(name, id);
      touch(ctx, id);
      audit(ctx, 'organisations.renamed', `organisation:${id}`, { before: { name: current.name }, after: { name } });
    })
    .immediate();
  return { ok: true };
}

export function addDomain(ctx: OrganisationContext, id: number, raw: string): Result<{ domain: string }> {
  if (!organisationRow(ctx.db, id)) return { ok: false, message: NO_SUCH };
  const checked = domainFor(ctx.db, id, raw);
  if (!checked.ok) return checked;
  const count = (
    ctx.db.$client.prepare('SELECT count(*) AS n FROM organisation_domains WHERE organisation_id = ?').get(id) as { n: number }
  ).n;
  if (count >= DOMAINS_MAX) return { ok: false, message: `An organisation has at most ${DOMAINS_MAX} domains.` };
  ctx.db.$client
    .transaction(() => {
      ctx.db.$client
        .prepare('INSERT INTO organisation_domains (organisation_id, domain, domain_hash, added_at, added_by) VALUES (?, ?, ?, ?, ?)')
        .run(id, checked.domain, domainHash(ctx.keys.secret, checked.domain), ctx.now.getTime(), ctx.actor.id);
      touch(ctx, id);
      audit(ctx, 'organisations.domain_added', `organisation:${id}`, { domain: checked.domain });
    })
    .immediate();
  return { ok: true, domain: checked.domain };
}

export function removeDomain(ctx: OrganisationContext, id: number, raw: string): Result {
  if (!organisationRow(ctx.db, id)) return { ok: false, message: NO_SUCH };
  const domain = raw.trim().toLowerCase();
  const changed = ctx.db.$client
    .transaction(() => {
      const removed = ctx.db.$client.prepare('DELETE FROM organisation_domains WHERE organisation_id = ? AND domain = ?').run(id, domain);
      if (removed.changes === 0) return false;
      touch(ctx, id);
      audit(ctx, 'organisations.domain_removed', `organisation:${id}`, { domain });
      return true;
    })
    .immediate();
  return changed ? { ok: true } : { ok: false, message: `${domain.slice(0, 80)} is not one of its domains.` };
}

/** Unresolved incidents whose audience names this organisation. */
function openIncidentsFor(db: Db, id: number): { id: number; title: string }[] {
  return db.$client
    .prepare(
      `SELECT id, title FROM incidents WHERE status != 'resolved' AND audience_organisation_ids IS NOT NULL
         AND EXISTS (SELECT 1 FROM json_each(audience_organisation_ids) WHERE value = ?) ORDER BY id`,
    )
    .all(id) as { id: number; title: string }[];
}

/** Its domains and memberships go with it; refused while an open incident is addressed to it. */
export function deleteOrganisation(ctx: OrganisationContext, id: number): Result<{ name: string }> {
  const current = organisationRow(ctx.db, id);
  if (!current) return { ok: false, message: NO_SUCH };
  const open = openIncidentsFor(ctx.db, id);
  if (open.length > 0)
    return {
      ok: false,
      message: `${current.name} is the audience of open incident${open.length === 1 ? '' : 's'} ${open.map((i) => `#${i.id} "${i.title}"`).join(', ')}: resolve ${open.length === 1 ? 'it' : 'them'} first.`,
    };
  ctx.db.$client
    .transaction(() => {
      const sqlite = ctx.db.$client;
      const domains = (
        sqlite.prepare('SELECT domain FROM organisation_domains WHERE organisation_id = ?').all(id) as { domain: string }[]
      ).map((d) => d.domain);
      const members = (sqlite.prepare('SELECT count(*) AS n FROM organisation_members WHERE organisation_id = ?').get(id) as { n: number })
        .n;
      sqlite.prepare('DELETE FROM customer_organisations WHERE id = ?').run(id);
      audit(ctx, 'organisations.deleted', `organisation:${id}`, { name: current.name, domains, members });
    })
    .immediate();
  return { ok: true, name: current.name };
}

/**
 * Places the subscriber's addresses in the organisation: one (`recipientId`)
 * or every address they have now (`all`; an address added later is not a
 * member by inheritance). `claim`: staff approve what the subscriber typed.
 */
export function assignMembers(
  ctx: OrganisationContext,
  input: { subscriberId: number; organisationId: number; recipientId: number | 'all'; basis: 'assigned' | 'claim' },
): Result<{ added: number; organisation: string }> {
  const sqlite = ctx.db.$client;
  const organisation = organisationRow(ctx.db, input.organisationId);
  if (!organisation) return { ok: false, message: NO_SUCH };
  const subscriber = sqlite.prepare('SELECT id, organisation FROM subscribers WHERE id = ?').get(input.subscriberId) as
    | { id: number; organisation: string | null }
    | undefined;
  if (!subscriber) return { ok: false, message: 'That subscriber no longer exists.' };
  if (input.basis === 'claim' && !subscriber.organisation)
    return { ok: false, message: 'This subscriber did not say which company they are with.' };
  const recipients = sqlite.prepare('SELECT id, channel FROM recipients WHERE subscriber_id = ? ORDER BY id').all(input.subscriberId) as {
    id: number;
    channel: ChannelName;
  }[];
  const chosen = input.recipientId === 'all' ? recipients : recipients.filter((r) => r.id === input.recipientId);
  if (chosen.length === 0) return { ok: false, message: 'That address is not one of this subscriber’s.' };
  return sqlite
    .transaction((): Result<{ added: number; organisation: string }> => {
      const insert = sqlite.prepare(
        'INSERT OR IGNORE INTO organisation_members (organisation_id, recipient_id, basis, created_at, created_by) VALUES (?, ?, ?, ?, ?)',
      );
      const added = chosen.filter(
        (r) => insert.run(input.organisationId, r.id, input.basis, ctx.now.getTime(), ctx.actor.id).changes === 1,
      );
      if (added.length === 0) return { ok: false, message: `Already a member of ${organisation.name}.` };
      audit(
        ctx,
        input.basis === 'claim' ? 'organisations.claim_approved' : 'organisations.member_assigned',
        `organisation:${input.organisationId}`,
        {
          subscriber: input.subscriberId,
          recipients: added.map((r) => r.id),
          channels: added.map((r) => r.channel),
          ...(input.basis === 'claim' ? { claimed: subscriber.organisation } : {}),
        },
      );
      return { ok: true, added: added.length, organisation: organisation.name };
    })
    .immediate();
}

export function removeMember(
  ctx: OrganisationContext,
  membershipId: number,
): Result<{ organisation: string; subscriberId: number | null }> {
  const sqlite = ctx.db.$client;
  const row = sqlite
    .prepare(
      `SELECT m.organisation_id, m.recipient_id, m.basis, o.name, r.channel, r.subscriber_id FROM organisation_members m
       JOIN customer_organisations o ON o.id = m.organisation_id JOIN recipients r ON r.id = m.recipient_id WHERE m.id = ?`,
    )
    .get(membershipId) as
    | { organisation_id: number; recipient_id: number; basis: string; name: string; channel: string; subscriber_id: number | null }
    | undefined;
  if (!row) return { ok: false, message: 'That membership was already removed.' };
  sqlite
    .transaction(() => {
      sqlite.prepare('DELETE FROM organisation_members WHERE id = ?').run(membershipId);
      audit(ctx, 'organisations.member_removed', `organisation:${row.organisation_id}`, {
        subscriber: row.subscriber_id,
        recipient: row.recipient_id,
        channel: row.channel,
        basis: row.basis,
      });
    })
    .immediate();
  return { ok: true, organisation: row.name, subscriberId: row.subscriber_id };
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface OrganisationSummary {
  id: number;
  name: string;
  domains: string[];
  /** active addresses that belong, per basis */
  members: { domain: number; staff: number };
}

export function listOrganisations(db: Db): OrganisationSummary[] {
  const sqlite = db.$client;
  const rows = sqlite.prepare('SELECT id, name FROM customer_organisations ORDER BY lower(name), id').all() as {
    id: number;
    name: string;
  }[];
  const domains = sqlite.prepare('SELECT organisation_id, domain FROM organisation_domains ORDER BY domain').all() as {
    organisation_id: number;
    domain: string;
  }[];
  const counts = sqlite
    .prepare(
      `SELECT v.organisation_id, v.basis = 'domain' AS by_domain, count(DISTINCT v.recipient_id) AS n
       FROM (${VERIFIED_MEMBERS_SQL}) v JOIN recipients r ON r.id = v.recipient_id WHERE r.status = 'active'
       GROUP BY v.organisation_id, v.basis = 'domain'`,
    )
    .all() as { organisation_id: number; by_domain: number; n: number }[];
  return rows.map((o) => ({
    id: o.id,
    name: o.name,
    domains: domains.filter((d) => d.organisation_id === o.id).map((d) => d.domain),
    members: {
      domain: counts.find((c) => c.organisation_id === o.id && c.by_domain === 1)?.n ?? 0,
      staff: counts.find((c) => c.organisation_id === o.id && c.by_domain === 0)?.n ?? 0,
    },
  }));
}

/** Names by id; an id whose organisation was deleted is absent. */
export function organisationNames(db: Db, ids: readonly number[]): Map<number, string> {
  if (ids.length === 0) return new Map();
  const rows = db.$client
    .prepare('SELECT id, name FROM customer_organisations WHERE id IN (SELECT value FROM json_each(?))')
    .all(JSON.stringify(ids)) as { id: number; name: string }[];
  return new Map(rows.map((r) => [r.id, r.name]));
}

export const nameOf = (names: Map<number, string>, id: number) => names.get(id) ?? `organisation #${id} (deleted)`;

export interface Membership {
  organisationId: number;
  organisation: string;
  recipientId: number;
  subscriberId: number | null;
  channel: ChannelName;
  status: string;
  basis: MembershipBasis;
  /** how it belongs, in words: "email domain acmebank.example", "assigned by staff" */
  basisLabel: string;
  /** staff memberships: the row to remove, when and by whom */
  membershipId: number | null;
  since: Date | null;
  by: string | null;
}

interface MembershipRow {
  organisation_id: number;
  name: string;
  recipient_id: number;
  subscriber_id: number | null;
  channel: ChannelName;
  status: string;
  basis: MembershipBasis;
  domain: string | null;
  membership_id: number | null;
  created_at: number | null;
  by_email: string | null;
}

/** Domain matches count only for confirmed addresses; staff memberships are listed whatever the address's state. */
const membershipQuery = (where: string) => `
  SELECT v.organisation_id, o.name, v.recipient_id, r.subscriber_id, r.channel, r.status, v.basis, v.domain, v.membership_id,
         m.created_at, s.email AS by_email
  FROM (${VERIFIED_MEMBERS_SQL}) v
  JOIN customer_organisations o ON o.id = v.organisation_id
  JOIN recipients r ON r.id = v.recipient_id
  LEFT JOIN organisation_members m ON m.id = v.membership_id
  LEFT JOIN staff s ON s.id = m.created_by
  WHERE (v.basis != 'domain' OR r.status = 'active') AND ${where}
  ORDER BY lower(o.name), r.subscriber_id, r.id, v.basis`;

const toMembership = (row: MembershipRow): Membership => ({
  organisationId: row.organisation_id,
  organisation: row.name,
  recipientId: row.recipient_id,
  subscriberId: row.subscriber_id,
  channel: row.channel,
  status: row.status,
  basis: row.basis,
  basisLabel: row.basis === 'domain' ? `${basisLabels.domain} ${row.domain ?? ''}` : basisLabels[row.basis],
  membershipId: row.membership_id,
  since: row.created_at === null ? null : new Date(row.created_at),
  by: row.by_email,
});

/** The organisations a subscriber's addresses belong to, and how. */
export function subscriberMemberships(db: Db, subscriberId: number): Membership[] {
  return (db.$client.prepare(membershipQuery('r.subscriber_id = ?')).all(subscriberId) as MembershipRow[]).map(toMembership);
}

export interface OrganisationRecord {
  id: number;
  name: string;
  createdAt: Date;
  createdBy: string | null;
  updatedAt: Date;
  updatedBy: string | null;
  domains: { domain: string; addedAt: Date; addedBy: string | null }[];
  /** addresses masked: enough to recognise */
  members: (Membership & { address: string })[];
}

export function organisationRecord(db: Db, keys: Keys, id: number): OrganisationRecord | null {
  const sqlite = db.$client;
  const row = sqlite
    .prepare(
      `SELECT o.id, o.name, o.created_at, o.updated_at, c.email AS created_by, u.email AS updated_by FROM customer_organisations o
       LEFT JOIN staff c ON c.id = o.created_by LEFT JOIN staff u ON u.id = o.updated_by WHERE o.id = ?`,
    )
    .get(id) as
    | { id: number; name: string; created_at: number; updated_at: number; created_by: string | null; updated_by: string | null }
    | undefined;
  if (!row) return null;
  const domains = sqlite
    .prepare(
      'SELECT d.domain, d.added_at, s.email FROM organisation_domains d LEFT JOIN staff s ON s.id = d.added_by WHERE d.organisation_id = ? ORDER BY d.domain',
    )
    .all(id) as { domain: string; added_at: number; email: string | null }[];
  const members = sqlite.prepare(membershipQuery('v.organisation_id = ?')).all(id) as MembershipRow[];
  const sealed = sqlite.prepare('SELECT channel, address FROM recipients WHERE id = ?');
  return {
    id: row.id,
    name: row.name,
    createdAt: new Date(row.created_at),
    createdBy: row.created_by,
    updatedAt: new Date(row.updated_at),
    updatedBy: row.updated_by,
    domains: domains.map((d) => ({ domain: d.domain, addedAt: new Date(d.added_at), addedBy: d.email })),
    members: members.map((m) => {
      const r = sealed.get(m.recipient_id) as { channel: ChannelName; address: string };
      return { ...toMembership(m), address: maskAddress(r.channel, openRecipient(keys, { ...r, secret: null }).address) };
    }),
  };
}
