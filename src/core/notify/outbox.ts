/**
 * Writing a notification and all its deliveries in the caller's transaction (the transactional
 * outbox: a fan-out commits with the change it announces, or not at all), the deliveries chosen by
 * `INSERT … SELECT` from the recipients query (src/stores/notifications.ts), so no subscriber list
 * ever passes through memory and a crash leaves either everything or nothing. Also the composer's
 * counts of an audience, from the same definition.
 */
import type { Reader, Tx } from '../../../db/engine/types.ts';
import { type ChannelName, channels } from '../../../db/schema/notify.ts';
import {
  audienceCounts,
  deliveriesPerChannel,
  insertDeliveriesFor,
  insertNotification,
  organisationCounts,
  setRecipientCount,
} from '../../stores/notifications.ts';
import type { MembershipBasis } from '../organisations/membership.ts';
import { contentFor } from './channels/chat-from-slack.ts';
import type { NotificationContent } from './types.ts';

/** Who receives it. Suppressed, pending and removed recipients never do. */
export type Audience =
  /**
   * subscribers of a topic; with components, only those following one of them or the whole topic;
   * with organisations (targeted breach notices), only addresses Candor verified as members of one of
   * those customer organisations (src/core/organisations/membership.ts); an empty list reaches no one
   */
  | { kind: 'topic'; topic: string; components?: string[]; organisations?: number[] }
  /** subscribers of any of these topics (a free-form announcement), each recipient once */
  | { kind: 'topics'; topics: string[] }
  /** named recipients (a test send, staff reminders); `includePending` for the message that confirms an address */
  | { kind: 'recipients'; ids: number[]; includePending?: boolean };

export interface NewNotification {
  kind: string;
  title: string;
  threadKey?: string | null;
  content: NotificationContent;
  audience: Audience;
  createdBy?: number | null;
  /** when the first attempt is due (a scheduled send); default now */
  notBefore?: Date;
}

export interface Enqueued {
  notificationId: number;
  deliveries: number;
  byChannel: Partial<Record<ChannelName, number>>;
}

/**
 * How many notifications this process has enqueued (committed or not): the server wakes its dispatcher
 * after a request during which this moved (src/server.ts), and only then, so that a flood of requests
 * that enqueue nothing does not turn into a flood of claims. Kept on globalThis under a registered
 * symbol: the server and the Astro bundle each load their own copy of this module.
 */
const ENQUEUED = Symbol.for('candor.notifications-enqueued');
const counter = globalThis as { [ENQUEUED]?: number };

export function enqueuedSoFar(): number {
  return counter[ENQUEUED] ?? 0;
}

/**
 * Writes the notification and one pending delivery per recipient its audience selects, in `tx`:
 * the caller's transaction, which holds the change the notification announces.
 */
export async function enqueueNotification(tx: Tx, input: NewNotification, now: Date): Promise<Enqueued> {
  const contentChannels = channels.filter((c) => contentFor(input.content, c) !== undefined);
  if (contentChannels.length === 0) throw new Error('a notification needs content for at least one channel');
  counter[ENQUEUED] = enqueuedSoFar() + 1;
  const notificationId = await insertNotification(tx, {
    kind: input.kind,
    threadKey: input.threadKey ?? null,
    title: input.title,
    content: { ...input.content },
    audience: { ...input.audience },
    createdBy: input.createdBy ?? null,
    createdAt: now,
  });
  await insertDeliveriesFor(tx, notificationId, input.audience, contentChannels, input.notBefore ?? now);
  const byChannel = await deliveriesPerChannel(tx, notificationId);
  const deliveries = Object.values(byChannel).reduce((sum, n) => sum + n, 0);
  await setRecipientCount(tx, notificationId, deliveries);
  return { notificationId, deliveries, byChannel };
}

/** How many deliveries a notification to this audience would make, per channel (the composer's preview). */
export function countAudience(r: Reader | Tx, audience: Audience, channels: readonly ChannelName[]): Promise<ChannelCounts> {
  return audienceCounts(r, audience, channels);
}

export type ChannelCounts = Partial<Record<ChannelName, number>>;

export interface OrganisationBreakdown {
  organisationId: number;
  /** distinct recipients of this organisation in the audience, per channel */
  byChannel: ChannelCounts;
  /** the same recipients by the basis they belong on; one matching on two bases is under both */
  bases: { basis: MembershipBasis; domain: string | null; byChannel: ChannelCounts }[];
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * For a targeted audience: per organisation, how many of the recipients it selects belong to that
 * organisation, per channel and per basis (domain bases first, by domain). The same filter as
 * sending, with the membership joined instead of tested.
 */
export async function organisationBreakdown(
  r: Reader | Tx,
  audience: Audience,
  channels: readonly ChannelName[],
): Promise<OrganisationBreakdown[]> {
  if (audience.kind !== 'topic' || !audience.organisations) return [];
  const ids = audience.organisations;
  const result = new Map<number, OrganisationBreakdown>(ids.map((id) => [id, { organisationId: id, byChannel: {}, bases: [] }]));
  const { totals, bases } = await organisationCounts(r, audience, channels, ids);
  for (const t of totals) {
    const entry = result.get(t.organisationId);
    if (entry) entry.byChannel[t.channel] = t.n;
  }
  const ordered = bases.sort(
    (a, b) =>
      Number(b.basis === 'domain') - Number(a.basis === 'domain') || byText(a.domain ?? '', b.domain ?? '') || byText(a.basis, b.basis),
  );
  for (const b of ordered) {
    const entry = result.get(b.organisationId);
    if (!entry) continue;
    let basis = entry.bases.find((x) => x.basis === b.basis && x.domain === b.domain);
    if (!basis) {
      basis = { basis: b.basis, domain: b.domain, byChannel: {} };
      entry.bases.push(basis);
    }
    basis.byChannel[b.channel] = b.n;
  }
  return [...result.values()];
}
