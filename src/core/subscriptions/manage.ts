/**
 * What a subscriber can do from the signed links in every message, without
 * an account: see and change what they follow, take a copy of everything
 * held about them, leave, or have it all erased.
 */

import { databaseOf } from '../../../db/engine/sqlite.ts';
import { recordAudit } from '../audit/log.ts';
import { readRecipientToken } from '../notify/links.ts';
import { maskAddress, openRecipient, type Recipient } from '../notify/recipients.ts';
import type { ChannelName } from '../notify/types.ts';
import { subscriberMemberships } from '../organisations/organisations.ts';
import type { SubscriptionContext } from './context.ts';
import { linksLocked, refuseLink } from './refusals.ts';
import { deleteSubscriber, removeRecipient, topicsOf } from './subscribers.ts';

export interface SubscriptionView {
  recipientId: number;
  subscriberId: number;
  organisation: string | null;
  channels: { id: number; channel: ChannelName; address: string; status: string }[];
  topics: { topic: string; component: string }[];
}

function recipientRow(ctx: SubscriptionContext, id: number): Recipient | undefined {
  const row = ctx.db.$client.prepare('SELECT * FROM recipients WHERE id = ?').get(id) as
    | {
        id: number;
        subscriber_id: number | null;
        channel: ChannelName;
        address: string;
        address_hash: string;
        domain_hash: string | null;
        secret: string | null;
        status: Recipient['status'];
        suppressed_at: number | null;
        suppressed_reason: string | null;
        suppressed_from: Recipient['suppressedFrom'];
        created_at: number;
        trust_center_id: number;
      }
    | undefined;
  if (!row) return undefined;
  return {
    id: row.id,
    subscriberId: row.subscriber_id,
    channel: row.channel,
    address: row.address,
    addressHash: row.address_hash,
    domainHash: row.domain_hash,
    secret: row.secret,
    status: row.status,
    suppressedAt: row.suppressed_at === null ? null : new Date(row.suppressed_at),
    suppressedReason: row.suppressed_reason,
    suppressedFrom: row.suppressed_from,
    createdAt: new Date(row.created_at),
    trustCenterId: row.trust_center_id,
  };
}

export function subscriptionFromToken(ctx: SubscriptionContext, purpose: 'manage' | 'unsubscribe', token: string): SubscriptionView | null {
  const id = readRecipientToken(ctx.keys.secret, purpose, token);
  const recipient = id === null ? undefined : recipientRow(ctx, id);
  if (!recipient?.subscriberId) return null;
  const subscriber = ctx.db.$client.prepare('SELECT id, organisation FROM subscribers WHERE id = ?').get(recipient.subscriberId) as
    | { id: number; organisation: string | null }
    | undefined;
  if (!subscriber) return null;
  const rows = ctx.db.$client.prepare('SELECT id FROM recipients WHERE subscriber_id = ? ORDER BY id').all(subscriber.id) as {
    id: number;
  }[];
  const channels = rows
    .map((r) => recipientRow(ctx, r.id))
    .filter((r): r is Recipient => r !== undefined)
    .map((r) => ({ id: r.id, channel: r.channel, address: maskAddress(r.channel, openRecipient(ctx.keys, r).address), status: r.status }));
  return {
    recipientId: recipient.id,
    subscriberId: subscriber.id,
    organisation: subscriber.organisation,
    channels,
    topics: topicsOf(ctx.db, subscriber.id),
  };
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
  const view = subscriptionFromToken(ctx, purpose, token);
  return view ? { ok: true, view } : { ok: false, status: 404, message: null };
}

const anonymousAudit = (
  ctx: SubscriptionContext,
  action: 'subscriber.unsubscribed' | 'subscriber.erased' | 'subscriber.exported',
  subscriberId: number,
  summary: Record<string, unknown>,
) => recordAudit(ctx.db, { actor: { type: 'anonymous' }, ip: ctx.ip, action, target: `subscriber:${subscriberId}`, summary }, ctx.now);

/** One-click leave: the address is deleted at once, not merely marked. */
export function unsubscribe(ctx: SubscriptionContext, view: SubscriptionView): void {
  const recipient = view.channels.find((c) => c.id === view.recipientId);
  removeRecipient(ctx.db, view.recipientId);
  anonymousAudit(ctx, 'subscriber.unsubscribed', view.subscriberId, { channel: recipient?.channel ?? null });
}

export function erase(ctx: SubscriptionContext, view: SubscriptionView): void {
  deleteSubscriber(ctx.db, view.subscriberId);
  anonymousAudit(ctx, 'subscriber.erased', view.subscriberId, { channels: view.channels.length });
}

/** Everything held about the subscriber, addresses in full: the right of access and portability. */
export async function exportData(ctx: SubscriptionContext, view: SubscriptionView): Promise<Record<string, unknown>> {
  // Read first, on the stores, before the synchronous reads and the audit entry below.
  const memberships = await databaseOf(ctx.db).read((r) => subscriberMemberships(r, view.subscriberId));
  const sqlite = ctx.db.$client;
  const recipients = (sqlite.prepare('SELECT id FROM recipients WHERE subscriber_id = ?').all(view.subscriberId) as { id: number }[])
    .map((r) => recipientRow(ctx, r.id))
    .filter((r): r is Recipient => r !== undefined);
  const subscriber = sqlite.prepare('SELECT organisation, created_at FROM subscribers WHERE id = ?').get(view.subscriberId) as {
    organisation: string | null;
    created_at: number;
  };
  const deliveries = sqlite
    .prepare(
      `SELECT d.id, d.channel, d.status, d.sent_at, d.finished_at, n.title, n.created_at
       FROM deliveries d JOIN notifications n ON n.id = d.notification_id
       WHERE d.recipient_id IN (SELECT id FROM recipients WHERE subscriber_id = ?) ORDER BY d.id`,
    )
    .all(view.subscriberId) as {
    id: number;
    channel: string;
    status: string;
    sent_at: number | null;
    finished_at: number | null;
    title: string;
    created_at: number;
  }[];
  anonymousAudit(ctx, 'subscriber.exported', view.subscriberId, { deliveries: deliveries.length });
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    exportedAt: ctx.now.toISOString(),
    subscriber: { organisation: subscriber.organisation, subscribedAt: iso(subscriber.created_at) },
    channels: recipients.map((r) => ({
      channel: r.channel,
      address: openRecipient(ctx.keys, r).address,
      status: r.status,
      suppressedReason: r.suppressedReason,
      since: r.createdAt.toISOString(),
    })),
    follows: topicsOf(ctx.db, view.subscriberId).map((t) => ({ topic: t.topic, component: t.component || 'all' })),
    // which customer organisations' targeted notices reach them, and why (an email domain, or staff)
    organisations: memberships.map((m) => ({
      organisation: m.organisation,
      channel: m.channel,
      basis: m.basisLabel,
      since: m.since ? iso(m.since.getTime()) : null,
    })),
    messages: deliveries.map((d) => ({
      title: d.title,
      channel: d.channel,
      status: d.status,
      createdAt: iso(d.created_at),
      sentAt: iso(d.sent_at),
    })),
  };
}
