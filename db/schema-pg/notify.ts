import { sql } from 'drizzle-orm';
import { bigint, doublePrecision, index, integer, jsonb, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { channels, deliveryStatuses } from '../schema/notify.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/**
 * db/schema/notify.ts on PostgreSQL: subscribers, their addresses, and the
 * notifications and deliveries that reach them (see there). Deliveries, their
 * attempts and logged messages have bigint ids: a fan-out writes one row per
 * recipient and channel.
 */
export const subscribers = pgTable('subscribers', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  /** company name, for notices targeted at affected customers */
  organisation: text('organisation'),
  createdAt: timestamptz('created_at').notNull(),
  trustCenterId: trustCenterId(),
});

export const subscriberTopics = pgTable(
  'subscriber_topics',
  {
    subscriberId: integer('subscriber_id')
      .notNull()
      .references(() => subscribers.id, { onDelete: 'cascade' }),
    topic: text('topic').notNull(),
    /** '' = every component */
    component: text('component').notNull().default(''),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.subscriberId, t.topic, t.component] }), index('subscriber_topics_topic').on(t.topic, t.component)],
);

export const recipients = pgTable(
  'recipients',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    subscriberId: integer('subscriber_id').references(() => subscribers.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: channels }).notNull(),
    address: text('address').notNull(),
    addressHash: text('address_hash').notNull(),
    /** email only: blind index of the address's domain */
    domainHash: text('domain_hash'),
    /** webhook signing secret or Slack bot token, sealed */
    secret: text('secret'),
    status: text('status', { enum: ['pending', 'active', 'suppressed', 'removed'] }).notNull(),
    suppressedAt: timestamptz('suppressed_at'),
    suppressedReason: text('suppressed_reason'),
    /** the status it had when suppressed: lifting the suppression returns it there */
    suppressedFrom: text('suppressed_from', { enum: ['pending', 'active'] }),
    createdAt: timestamptz('created_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    uniqueIndex('recipients_channel_address').on(t.channel, t.addressHash),
    index('recipients_subscriber').on(t.subscriberId),
    index('recipients_domain').on(t.domainHash),
  ],
);

export const notifications = pgTable('notifications', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  kind: text('kind').notNull(),
  /** groups messages into one conversation (a Slack thread), e.g. `incident:12` */
  threadKey: text('thread_key'),
  title: text('title').notNull(),
  content: jsonb('content').$type<Record<string, unknown>>().notNull(),
  audience: jsonb('audience').$type<Record<string, unknown>>().notNull(),
  recipientCount: integer('recipient_count').notNull(),
  createdBy: integer('created_by'),
  createdAt: timestamptz('created_at').notNull(),
  trustCenterId: trustCenterId(),
});

export const deliveries = pgTable(
  'deliveries',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    notificationId: integer('notification_id')
      .notNull()
      .references(() => notifications.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id').references(() => recipients.id, { onDelete: 'set null' }),
    channel: text('channel', { enum: channels }).notNull(),
    status: text('status', { enum: deliveryStatuses }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamptz('next_attempt_at').notNull(),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: timestamptz('lease_expires_at'),
    /** the provider request this delivery was sent in; a retry resends exactly that request (same idempotency key) */
    /**
     * set while a send's outcome is unknown: from the claim that began it until an outcome is recorded
     * (sent, failed, or a retry the provider proves did nothing). A claim that finds it set (a crashed
     * sender's, or a lost answer's) asks the provider before sending again (src/core/notify/reconcile.ts).
     */
    unknownSince: timestamptz('unknown_since'),
    batchKey: text('batch_key'),
    providerMessageId: text('provider_message_id'),
    lastError: text('last_error'),
    sentAt: timestamptz('sent_at'),
    finishedAt: timestamptz('finished_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    uniqueIndex('deliveries_notification_recipient').on(t.notificationId, t.recipientId),
    index('deliveries_due').on(t.status, t.channel, t.nextAttemptAt),
    // A provider's report names the message and its recipient: found by recipient among those sent. Keyed
    // on the recipient, not on the provider's (random) message id, and only once sent: sends go in
    // recipient order, so each record of a fan-out adds to the index in order rather than all over it,
    // which cost a third of the dispatcher's time on SQLite (npm run bench -- fanout).
    index('deliveries_recipient_sent').on(t.recipientId).where(sql`${t.providerMessageId} IS NOT NULL`),
  ],
);

export const deliveryAttempts = pgTable(
  'delivery_attempts',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    deliveryId: bigint('delivery_id', { mode: 'number' })
      .notNull()
      .references(() => deliveries.id, { onDelete: 'cascade' }),
    at: timestamptz('at').notNull(),
    outcome: text('outcome', { enum: ['sent', 'retry', 'failed', 'suppressed'] }).notNull(),
    /** `send`: a request that carried the message; `reconcile`: asking the provider whether an earlier send of unknown outcome reached it */
    kind: text('kind', { enum: ['send', 'reconcile'] })
      .notNull()
      .default('send'),
    httpStatus: integer('http_status'),
    providerCode: text('provider_code'),
    durationMs: integer('duration_ms').notNull(),
    error: text('error'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('delivery_attempts_delivery').on(t.deliveryId)],
);

export const slackThreads = pgTable(
  'slack_threads',
  {
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    threadKey: text('thread_key').notNull(),
    /** null while the root is being posted */
    channelId: text('channel_id'),
    /** null while the root is being posted */
    ts: text('ts'),
    claimedBy: text('claimed_by'),
    claimExpiresAt: timestamptz('claim_expires_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.recipientId, t.threadKey] })],
);

export const loggedMessages = pgTable(
  'logged_messages',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    deliveryId: bigint('delivery_id', { mode: 'number' }).references(() => deliveries.id, { onDelete: 'set null' }),
    channel: text('channel', { enum: channels }).notNull(),
    /** masked: enough to recognise, not a copy of the personal data */
    to: text('to').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    at: timestamptz('at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('logged_messages_at').on(t.at)],
);

/** A provider's token bucket and 429 pause, shared by every dispatcher (see db/schema/notify.ts). */
export const providerLimits = pgTable('provider_limits', {
  key: text('key').primaryKey(),
  tokens: doublePrecision('tokens').notNull(),
  granted: doublePrecision('granted').notNull(),
  updatedAt: timestamptz('updated_at').notNull(),
  pausedUntil: timestamptz('paused_until'),
  trustCenterId: trustCenterId(),
});
