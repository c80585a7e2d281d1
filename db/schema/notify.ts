import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { trustCenterId } from './trust-centers.ts';

export const channels = ['email', 'sms', 'slack', 'webhook', 'teams', 'discord'] as const;
export type ChannelName = (typeof channels)[number];

/** A customer (person or organisation) following the trust center. Issue 6 fills in sign-up and consent. */
export const subscribers = sqliteTable('subscribers', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  /** company name, for notices targeted at affected customers */
  organisation: text('organisation'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  trustCenterId: trustCenterId(),
});

/** What a subscriber follows: a topic, optionally narrowed to one component. */
export const subscriberTopics = sqliteTable(
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

/**
 * An address on one channel: where a delivery goes. Personal data is sealed
 * (AES-256-GCM); `addressHash` (HMAC) finds an address without opening it.
 */
export const recipients = sqliteTable(
  'recipients',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    subscriberId: integer('subscriber_id').references(() => subscribers.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: channels }).notNull(),
    address: text('address').notNull(),
    addressHash: text('address_hash').notNull(),
    /**
     * email only: blind index of the address's domain (the part after @), so a customer organisation's
     * verified domains match without opening addresses. Written when the address is added; rows from
     * before it existed are filled at start-up (src/core/organisations/domains.ts).
     */
    domainHash: text('domain_hash'),
    /** webhook signing secret or Slack bot token, sealed */
    secret: text('secret'),
    status: text('status', { enum: ['pending', 'active', 'suppressed', 'removed'] }).notNull(),
    suppressedAt: integer('suppressed_at', { mode: 'timestamp_ms' }),
    suppressedReason: text('suppressed_reason'),
    /** the status it had when suppressed: lifting the suppression returns it there (a pending address stays unconfirmed) */
    suppressedFrom: text('suppressed_from', { enum: ['pending', 'active'] }),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    uniqueIndex('recipients_channel_address').on(t.channel, t.addressHash),
    index('recipients_subscriber').on(t.subscriberId),
    index('recipients_domain').on(t.domainHash),
  ],
);

/** One message, rendered once per channel; its deliveries carry it to each recipient. */
export const notifications = sqliteTable('notifications', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  kind: text('kind').notNull(),
  /** groups messages into one conversation (a Slack thread), e.g. `incident:12` */
  threadKey: text('thread_key'),
  title: text('title').notNull(),
  content: text('content', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
  audience: text('audience', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
  recipientCount: integer('recipient_count').notNull(),
  createdBy: integer('created_by'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  trustCenterId: trustCenterId(),
});

export const deliveryStatuses = ['pending', 'sending', 'sent', 'delivered', 'failed', 'suppressed'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

export const deliveries = sqliteTable(
  'deliveries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    notificationId: integer('notification_id')
      .notNull()
      .references(() => notifications.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id').references(() => recipients.id, { onDelete: 'set null' }),
    channel: text('channel', { enum: channels }).notNull(),
    status: text('status', { enum: deliveryStatuses }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at', { mode: 'timestamp_ms' }).notNull(),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: integer('lease_expires_at', { mode: 'timestamp_ms' }),
    /** the provider request this delivery was sent in; a retry resends exactly that request (same idempotency key) */
    /**
     * set while a send's outcome is unknown: from the claim that began it until an outcome is recorded
     * (sent, failed, or a retry the provider proves did nothing). A claim that finds it set (a crashed
     * sender's, or a lost answer's) asks the provider before sending again (src/core/notify/reconcile.ts).
     */
    unknownSince: integer('unknown_since', { mode: 'timestamp_ms' }),
    batchKey: text('batch_key'),
    providerMessageId: text('provider_message_id'),
    lastError: text('last_error'),
    sentAt: integer('sent_at', { mode: 'timestamp_ms' }),
    finishedAt: integer('finished_at', { mode: 'timestamp_ms' }),
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

export const deliveryAttempts = sqliteTable(
  'delivery_attempts',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    deliveryId: integer('delivery_id')
      .notNull()
      .references(() => deliveries.id, { onDelete: 'cascade' }),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
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

/**
 * The first Slack message of a thread key, per recipient: later messages go in its thread and the root is edited.
 * A row is claimed before the root is posted (`claimedBy`, `claimExpiresAt`, no `ts` yet), so of several
 * dispatchers only one posts it; the others wait for `ts` (src/core/notify/channels/slack.ts).
 */
export const slackThreads = sqliteTable(
  'slack_threads',
  {
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    threadKey: text('thread_key').notNull(),
    /** null while the root is being posted */
    channelId: text('channel_id'),
    /** the root's message ts; null while the root is being posted */
    ts: text('ts'),
    /** the Slack channel instance posting the root; null once it is recorded */
    claimedBy: text('claimed_by'),
    /** after this an unrecorded root's claim may be taken over (its poster crashed) */
    claimExpiresAt: integer('claim_expires_at', { mode: 'timestamp_ms' }),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.recipientId, t.threadKey] })],
);

/** What the log transport "sent" when a provider has no keys: shown in the console. */
export const loggedMessages = sqliteTable(
  'logged_messages',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    deliveryId: integer('delivery_id').references(() => deliveries.id, { onDelete: 'set null' }),
    channel: text('channel', { enum: channels }).notNull(),
    /** masked: enough to recognise, not a copy of the personal data */
    to: text('to').notNull(),
    payload: text('payload', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('logged_messages_at').on(t.at)],
);

/**
 * A provider's token bucket and 429 pause, shared by every dispatcher on the database
 * (src/core/notify/limiter.ts). `key` is the channel and a hash of the limiter key (Slack channel,
 * Twilio sender, webhook host): an incoming-webhook URL, which is a secret, is never stored.
 */
export const providerLimits = sqliteTable('provider_limits', {
  key: text('key').primaryKey(),
  /** tokens left at `updatedAt`; refilled by elapsed time × rate when next taken */
  tokens: real('tokens').notNull(),
  /** how many tokens the last take handed out: the UPDATE that takes them reports it back */
  granted: real('granted').notNull(),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  /** a provider's Retry-After: nothing goes to it before then */
  pausedUntil: integer('paused_until', { mode: 'timestamp_ms' }),
  trustCenterId: trustCenterId(),
});
