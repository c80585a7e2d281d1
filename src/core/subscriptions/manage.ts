/**
 * What a subscriber can do from the signed links in every message, without
 * an account: see and change what they follow, take a copy of everything
 * held about them, leave, or have it all erased. The rows are
 * src/stores/subscribers.ts's (issue 15); each change and its audit entry are one transaction.
 */
import type { Reader, Tx } from '../../../db/engine/types.ts';
import { deliveriesOf, recipientById, recipientsOfSubscriber, subscriberHeader, topicsOf } from '../../stores/subscribers.ts';
import type { AuditAction } from '../audit/actions.ts';
import { writeAudit } from '../audit/log.ts';
import { readRecipientToken } from '../notify/links.ts';
import { maskAddress, openRecipient } from '../notify/recipients.ts';
import type { ChannelName } from '../notify/types.ts';
import { subscriberMemberships } from '../organisations/organisations.ts';
import type { SubscriptionContext } from './context.ts';
import { linksLocked, refuseLink } from './refusals.ts';
import { deleteSubscriberIn, removeRecipientIn } from './subscribers.ts';

export interface SubscriptionView {
  recipientId: number;
  subscriberId: number;
  organisation: string | null;
  channels: { id: number; channel: ChannelName; address: string; status: string }[];
  topics: { topic: string; component: string }[];
}

async function viewOf(ctx: SubscriptionContext, r: Reader, recipientId: number): Promise<SubscriptionView | null> {
  const recipient = await recipientById(r, recipientId);
  if (!recipient?.subscriberId) return null;
  const subscriber = await subscriberHeader(r, recipient.subscriberId);
  if (!subscriber) return null;
  const channels = (await recipientsOfSubscriber(r, subscriber.id)).map((c) => ({
    id: c.id,
    channel: c.channel,
    address: maskAddress(c.channel, openRecipient(ctx.keys, c).address),
    status: c.status,
  }));
  return {
    recipientId: recipient.id,
    subscriberId: subscriber.id,
    organisation: subscriber.organisation,
    channels,
    topics: await topicsOf(r, subscriber.id),
  };
}

export async function subscriptionFromToken(
  ctx: SubscriptionContext,
  purpose: 'manage' | 'unsubscribe',
  token: string,
): Promise<SubscriptionView | null> {
  const id = readRecipientToken(ctx.keys.secret, purpose, token);
  return id === null ? null : ctx.database.read((r) => viewOf(ctx, r, id));
}
export type LinkLookup = { ok: true; view: SubscriptionView } | { ok: false; status: 404 | 429; message: string | null };

/**
 * A manage or unsubscribe link as a request presents it: refused while the client's address is locked
 * out; a forged one is counted and audited (refusals.ts). A link we signed whose address is gone is
 * just gone (status 404, message null: the page says so in its own words), not an attempt.
 */
export async function openSubscriptionLink(
  ctx: SubscriptionContext,
  purpose: 'manage' | 'unsubscribe',
  token: string,
  /** true when an action of the same request already presented (and counted) this token */
  counted = false,
): Promise<LinkLookup> {
  const locked = await linksLocked(ctx);
  if (locked) return { ok: false, status: 429, message: locked };
  if (readRecipientToken(ctx.keys.secret, purpose, token) === null) {
    if (!counted) await refuseLink(ctx, purpose);
    return { ok: false, status: 404, message: null };
  }
  const view = await subscriptionFromToken(ctx, purpose, token);
  return view ? { ok: true, view } : { ok: false, status: 404, message: null };
}

const anonymousAudit = (
  tx: Tx,
  ctx: SubscriptionContext,
  action: Extract<AuditAction, 'subscriber.unsubscribed' | 'subscriber.erased' | 'subscriber.exported'>,
  subscriberId: number,
  summary: Record<string, unknown>,
) => writeAudit(tx, { actor: { type: 'anonymous' }, ip: ctx.ip, action, target: `subscriber:${subscriberId}`, summary }, ctx.now);

/**
 * One-click leave: the address is deleted at once, not merely marked, and audited in the same
 * transaction. A second click (or a concurrent one) finds it gone: nothing more is removed or audited.
 */
export async function unsubscribe(ctx: SubscriptionContext, view: SubscriptionView): Promise<void> {
  await ctx.database.transaction(async (tx) => {
    const removed = await removeRecipientIn(tx, view.recipientId, 'unsubscribed', ctx.now);
    if (removed) await anonymousAudit(tx, ctx, 'subscriber.unsubscribed', view.subscriberId, { channel: removed.channel });
  });
}

export async function erase(ctx: SubscriptionContext, view: SubscriptionView): Promise<void> {
  await ctx.database.transaction(async (tx) => {
    const erased = await deleteSubscriberIn(tx, view.subscriberId, 'erased', ctx.now);
    if (erased) await anonymousAudit(tx, ctx, 'subscriber.erased', view.subscriberId, { channels: view.channels.length });
  });
}

/** Everything held about the subscriber, addresses in full: the right of access and portability. Read and audited in one transaction. */
export async function exportData(ctx: SubscriptionContext, view: SubscriptionView): Promise<Record<string, unknown>> {
  const held = await ctx.database.transaction(async (tx) => {
    const subscriber = await subscriberHeader(tx, view.subscriberId);
    const recipients = await recipientsOfSubscriber(tx, view.subscriberId);
    const topics = await topicsOf(tx, view.subscriberId);
    const memberships = await subscriberMemberships(tx, view.subscriberId);
    const deliveries = await deliveriesOf(tx, view.subscriberId);
    await anonymousAudit(tx, ctx, 'subscriber.exported', view.subscriberId, { deliveries: deliveries.length });
    return { subscriber, recipients, topics, memberships, deliveries };
  });
  const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
  return {
    exportedAt: ctx.now.toISOString(),
    subscriber: { organisation: held.subscriber?.organisation ?? null, subscribedAt: iso(held.subscriber?.createdAt) },
    channels: held.recipients.map((r) => ({
      channel: r.channel,
      address: openRecipient(ctx.keys, r).address,
      status: r.status,
      suppressedReason: r.suppressedReason,
      since: r.createdAt.toISOString(),
    })),
    follows: held.topics.map((t) => ({ topic: t.topic, component: t.component || 'all' })),
    // which customer organisations' targeted notices reach them, and why (an email domain, or staff)
    organisations: held.memberships.map((m) => ({
      organisation: m.organisation,
      channel: m.channel,
      basis: m.basisLabel,
      since: iso(m.since),
    })),
    messages: held.deliveries.map((d) => ({
      title: d.title,
      channel: d.channel,
      status: d.status,
      createdAt: iso(d.createdAt),
      sentAt: iso(d.sentAt),
    })),
  };
}
