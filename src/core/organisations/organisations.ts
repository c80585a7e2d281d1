import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import type { ChannelName } from '../../../db/schema/notify.ts';
import {
  activeMemberCounts,
  allDomains,
  deleteDomain,
  deleteMembership,
  deleteOrganisationRow,
  domainDetails,
  domainOwner,
  domainsOf,
  insertDomain,
  insertMember,
  insertOrganisation,
  type MemberRow,
  memberRows,
  membershipById,
  namesOf,
  openIncidentsFor,
  organisationDetail,
  organisationRow,
  organisationRows,
  recipientsOf,
  renameOrganisationRow,
  type Stamp,
  staffMemberCount,
  subscriberRow,
  touchOrganisation,
} from '../../stores/organisations.ts';
import type { AuditAction } from '../audit/actions.ts';
import { writeAudit } from '../audit/log.ts';
import { type Keys, maskAddress, openRecipient } from '../notify/recipients.ts';
import { checkDomain, domainHash } from './domains.ts';
import { basisLabels, type MembershipBasis } from './membership.ts';

export interface OrganisationContext {
  database: Database;
  keys: Keys;
  now: Date;
  actor: { id: number; label: string };
  ip: string | null;
  userAgent: string | null;
}

export type Result<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string };

const NAME_MAX = 200;
const DOMAINS_MAX = 50;

async function audit(
  tx: Tx,
  ctx: OrganisationContext,
  action: AuditAction,
  target: string,
  summary: Record<string, unknown>,
): Promise<void> {
  await writeAudit(
    tx,
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

async function nameProblem(r: Reader | Tx, name: string, except: number | null): Promise<string | null> {
  if (name === '') return 'Give the organisation a name.';
  if (name.length > NAME_MAX) return `The name is too long (${NAME_MAX} characters at most).`;
  const taken = (await organisationRows(r)).find((o) => o.id !== except && sameName(o.name, name));
  return taken ? `There is already an organisation called ${taken.name}.` : null;
}

/** Why this domain cannot be added to the organisation, or the normalised domain. */
async function domainFor(
  r: Reader | Tx,
  organisationId: number | null,
  raw: string,
): Promise<{ ok: true; domain: string } | { ok: false; message: string }> {
  const checked = checkDomain(raw);
  if (!checked.ok) return checked;
  const owner = await domainOwner(r, checked.domain);
  if (owner && owner.id === organisationId) return { ok: false, message: `${checked.domain} is already one of its domains.` };
  if (owner) return { ok: false, message: `${checked.domain} is already a domain of ${owner.name}: a domain belongs to one organisation.` };
  return checked;
}

const splitDomains = (text: string) =>
  text
    .split(/[\s,;]+/)
    .map((d) => d.trim())
    .filter(Boolean);

const stampOf = (ctx: OrganisationContext): Stamp => ({ at: ctx.now, by: ctx.actor.id });

/** One staff change as one transaction: its checks, its writes and its audit entry. */
const change = <T>(ctx: OrganisationContext, fn: (tx: Tx) => Promise<T>): Promise<T> => ctx.database.transaction(fn);

export function createOrganisation(ctx: OrganisationContext, rawName: string, domainsText: string): Promise<Result<{ id: number }>> {
  return change(ctx, async (tx): Promise<Result<{ id: number }>> => {
    const name = cleanName(rawName);
    const problem = await nameProblem(tx, name, null);
    if (problem) return { ok: false, message: problem };
    const typed = [...new Set(splitDomains(domainsText).map((d) => d.toLowerCase()))];
    if (typed.length > DOMAINS_MAX) return { ok: false, message: `Give at most ${DOMAINS_MAX} domains.` };
    const domains: string[] = [];
    for (const raw of typed) {
      const checked = await domainFor(tx, null, raw);
      if (!checked.ok) return checked;
      if (!domains.includes(checked.domain)) domains.push(checked.domain);
    }
    const id = await insertOrganisation(tx, name, stampOf(ctx));
    for (const domain of domains) await insertDomain(tx, id, domain, domainHash(ctx.keys.secret, domain), stampOf(ctx));
    await audit(tx, ctx, 'organisations.created', `organisation:${id}`, { name, domains });
    return { ok: true, id };
  });
}

const NO_SUCH = 'There is no such organisation (it may have been deleted).';

export function renameOrganisation(ctx: OrganisationContext, id: number, rawName: string): Promise<Result> {
  return change(ctx, async (tx): Promise<Result> => {
    const current = await organisationRow(tx, id);
    if (!current) return { ok: false, message: NO_SUCH };
    const name = cleanName(rawName);
    if (name === current.name) return { ok: false, message: 'That is already its name.' };
    const problem = await nameProblem(tx, name, id);
    if (problem) return { ok: false, message: problem };
    await renameOrganisationRow(tx, id, name, stampOf(ctx));
    await audit(tx, ctx, 'organisations.renamed', `organisation:${id}`, { before: { name: current.name }, after: { name } });
    return { ok: true };
  });
}

export function addDomain(ctx: OrganisationContext, id: number, raw: string): Promise<Result<{ domain: string }>> {
  return change(ctx, async (tx): Promise<Result<{ domain: string }>> => {
    if (!(await organisationRow(tx, id))) return { ok: false, message: NO_SUCH };
    const checked = await domainFor(tx, id, raw);
    if (!checked.ok) return checked;
    if ((await domainsOf(tx, id)).length >= DOMAINS_MAX)
      return { ok: false, message: `An organisation has at most ${DOMAINS_MAX} domains.` };
    await insertDomain(tx, id, checked.domain, domainHash(ctx.keys.secret, checked.domain), stampOf(ctx));
    await touchOrganisation(tx, id, stampOf(ctx));
    await audit(tx, ctx, 'organisations.domain_added', `organisation:${id}`, { domain: checked.domain });
    return { ok: true, domain: checked.domain };
  });
}

export function removeDomain(ctx: OrganisationContext, id: number, raw: string): Promise<Result> {
  return change(ctx, async (tx): Promise<Result> => {
    if (!(await organisationRow(tx, id))) return { ok: false, message: NO_SUCH };
    const domain = raw.trim().toLowerCase();
    if ((await deleteDomain(tx, id, domain)) === 0) return { ok: false, message: `${domain.slice(0, 80)} is not one of its domains.` };
    await touchOrganisation(tx, id, stampOf(ctx));
    await audit(tx, ctx, 'organisations.domain_removed', `organisation:${id}`, { domain });
    return { ok: true };
  });
}

/** Its domains and memberships go with it; refused while an open incident is addressed to it. */
export function deleteOrganisation(ctx: OrganisationContext, id: number): Promise<Result<{ name: string }>> {
  return change(ctx, async (tx): Promise<Result<{ name: string }>> => {
    const current = await organisationRow(tx, id);
    if (!current) return { ok: false, message: NO_SUCH };
    const open = await openIncidentsFor(tx, id);
    if (open.length > 0)
      return {
        ok: false,
        message: `${current.name} is the audience of open incident${open.length === 1 ? '' : 's'} ${open.map((i) => `#${i.id} "${i.title}"`).join(', ')}: resolve ${open.length === 1 ? 'it' : 'them'} first.`,
      };
    const domains = await domainsOf(tx, id);
    const members = await staffMemberCount(tx, id);
    await deleteOrganisationRow(tx, id);
    await audit(tx, ctx, 'organisations.deleted', `organisation:${id}`, { name: current.name, domains, members });
    return { ok: true, name: current.name };
  });
}

/**
 * Places the subscriber's addresses in the organisation: one (`recipientId`)
 * or every address they have now (`all`; an address added later is not a
 * member by inheritance). `claim`: staff approve what the subscriber typed.
 */
export function assignMembers(
  ctx: OrganisationContext,
  input: { subscriberId: number; organisationId: number; recipientId: number | 'all'; basis: 'assigned' | 'claim' },
): Promise<Result<{ added: number; organisation: string }>> {
  return change(ctx, async (tx): Promise<Result<{ added: number; organisation: string }>> => {
    const organisation = await organisationRow(tx, input.organisationId);
    if (!organisation) return { ok: false, message: NO_SUCH };
    const subscriber = await subscriberRow(tx, input.subscriberId);
    if (!subscriber) return { ok: false, message: 'That subscriber no longer exists.' };
    if (input.basis === 'claim' && !subscriber.organisation)
      return { ok: false, message: 'This subscriber did not say which company they are with.' };
    const recipients = await recipientsOf(tx, input.subscriberId);
    const chosen = input.recipientId === 'all' ? recipients : recipients.filter((r) => r.id === input.recipientId);
    if (chosen.length === 0) return { ok: false, message: 'That address is not one of this subscriber’s.' };
    const added: typeof chosen = [];
    for (const r of chosen)
      if (await insertMember(tx, { organisationId: input.organisationId, recipientId: r.id, basis: input.basis }, stampOf(ctx)))
        added.push(r);
    if (added.length === 0) return { ok: false, message: `Already a member of ${organisation.name}.` };
    await audit(
      tx,
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
  });
}

export function removeMember(
  ctx: OrganisationContext,
  membershipId: number,
): Promise<Result<{ organisation: string; subscriberId: number | null }>> {
  return change(ctx, async (tx): Promise<Result<{ organisation: string; subscriberId: number | null }>> => {
    const row = await membershipById(tx, membershipId);
    if (!row || (await deleteMembership(tx, membershipId)) === 0) return { ok: false, message: 'That membership was already removed.' };
    await audit(tx, ctx, 'organisations.member_removed', `organisation:${row.organisationId}`, {
      subscriber: row.subscriberId,
      recipient: row.recipientId,
      channel: row.channel,
      basis: row.basis,
    });
    return { ok: true, organisation: row.organisation, subscriberId: row.subscriberId };
  });
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

export async function listOrganisations(r: Reader | Tx): Promise<OrganisationSummary[]> {
  const rows = await organisationRows(r);
  const domains = await allDomains(r);
  const counts = await activeMemberCounts(r);
  return rows.map((o) => ({
    id: o.id,
    name: o.name,
    domains: domains.get(o.id) ?? [],
    members: counts.get(o.id) ?? { domain: 0, staff: 0 },
  }));
}

/** Names by id, read on the stores; an id whose organisation was deleted is absent. */
export function readOrganisationNames(r: Reader | Tx, ids: readonly number[]): Promise<Map<number, string>> {
  return namesOf(r, ids);
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

const toMembership = (row: MemberRow): Membership => ({
  organisationId: row.organisationId,
  organisation: row.organisation,
  recipientId: row.recipientId,
  subscriberId: row.subscriberId,
  channel: row.channel,
  status: row.status,
  basis: row.basis,
  basisLabel: row.basis === 'domain' ? `${basisLabels.domain} ${row.domain ?? ''}` : basisLabels[row.basis],
  membershipId: row.membershipId,
  since: row.since,
  by: row.by,
});

/** The organisations a subscriber's addresses belong to, and how. */
export async function subscriberMemberships(r: Reader | Tx, subscriberId: number): Promise<Membership[]> {
  return (await memberRows(r, { subscriberId })).map(toMembership);
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

export async function organisationRecord(r: Reader | Tx, keys: Keys, id: number): Promise<OrganisationRecord | null> {
  const row = await organisationDetail(r, id);
  if (!row) return null;
  const domains = await domainDetails(r, id);
  const members = await memberRows(r, { organisationId: id });
  return {
    id: row.id,
    name: row.name,
    createdAt: row.createdAt,
    createdBy: row.createdBy,
    updatedAt: row.updatedAt,
    updatedBy: row.updatedBy,
    domains,
    members: members.map((m) => ({
      ...toMembership(m),
      address: maskAddress(m.channel, openRecipient(keys, { channel: m.channel, address: m.address, secret: null }).address),
    })),
  };
}
