/**
 * Whom a targeted notice reaches, before it goes: per organisation, per
 * channel, and on what basis the recipients belong. Counted by the same
 * filter that sends (outbox.ts), so the figures are what will be enqueued.
 * A targeted notice that reaches no one is refused until staff confirm it.
 */
import type { Reader, Tx } from '../../../db/engine/types.ts';
import { type ChannelName, channels } from '../../../db/schema/notify.ts';
import { type Audience, type ChannelCounts, countAudience, type OrganisationBreakdown, organisationBreakdown } from '../notify/outbox.ts';
import { basisLabels } from './membership.ts';
import { nameOf, readOrganisationNames } from './organisations.ts';

export interface AudienceReach {
  /** false: every subscriber of the topic; the figures below are then only `total` */
  targeted: boolean;
  /** distinct recipients per channel: what a notification to this audience enqueues */
  total: Record<ChannelName, number>;
  organisations: {
    id: number;
    name: string;
    byChannel: Record<ChannelName, number>;
    /** "email domain acmebank.example", "assigned by staff", "claim approved by staff" */
    bases: { label: string; byChannel: ChannelCounts }[];
  }[];
  /** an incident targeted by typed company names before organisations were kept: those names, which reach no one */
  typedNames: string[] | null;
  /** targeted, and nobody on any channel */
  reachesNoOne: boolean;
}

const full = (counts: ChannelCounts): Record<ChannelName, number> =>
  Object.fromEntries(channels.map((c) => [c, counts[c] ?? 0])) as Record<ChannelName, number>;

/** Whom a notice to this audience reaches, read in the caller's snapshot or transaction. */
export async function audienceReach(r: Reader | Tx, audience: Audience, typedNames: string[] | null = null): Promise<AudienceReach> {
  const ids = audience.kind === 'topic' ? (audience.organisations ?? null) : null;
  const counts = await countAudience(r, audience, channels);
  const breakdown = await organisationBreakdown(r, audience, channels);
  return reachOf(ids, counts, breakdown, await readOrganisationNames(r, ids ?? []), typedNames);
}

function reachOf(
  ids: readonly number[] | null,
  counts: ChannelCounts,
  breakdown: OrganisationBreakdown[],
  names: Map<number, string>,
  typedNames: string[] | null,
): AudienceReach {
  const total = full(counts);
  const organisations = breakdown.map((o) => ({
    id: o.organisationId,
    name: nameOf(names, o.organisationId),
    byChannel: full(o.byChannel),
    bases: o.bases.map((b) => ({
      label: b.basis === 'domain' ? `domain ${b.domain ?? ''}` : basisLabels[b.basis],
      byChannel: b.byChannel,
    })),
  }));
  const targeted = ids !== null;
  return {
    targeted,
    total,
    organisations,
    typedNames,
    reachesNoOne: targeted && Object.values(total).every((n) => n === 0),
  };
}

/** The refusal of a targeted notice that reaches no one, naming why; null when it reaches someone or is not targeted. */
export function noRecipientsProblem(reach: AudienceReach | null): string | null {
  if (!reach?.reachesNoOne) return null;
  const why =
    reach.typedNames && reach.organisations.length === 0
      ? `it was addressed to typed company names (${reach.typedNames.join(', ')}), which prove nothing, so it reaches no one`
      : `${reach.organisations.map((o) => o.name).join(', ')} ${reach.organisations.length === 1 ? 'has' : 'have'} no verified member (a confirmed email address in one of its domains, or an address staff assigned) among the subscribers of these services`;
  return `This targeted notice would reach no one: ${why}. Check the organisations, or tick "Send anyway: it reaches no one" to publish it regardless.`;
}
