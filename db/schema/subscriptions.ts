import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { recipients } from './notify.ts';
import { trustCenterId } from './trust-centers.ts';

/**
 * Proof that an address belongs to the person subscribing it: an emailed
 * link (48 h), an SMS code (10 min, 5 tries). Only a hash of the secret is kept.
 */
export const subscriptionChallenges = sqliteTable(
  'subscription_challenges',
  {
    id: text('id').primaryKey(),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['email_link', 'sms_code'] }).notNull(),
    secretHash: text('secret_hash').notNull(),
    attempts: integer('attempts').notNull().default(0),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    usedAt: integer('used_at', { mode: 'timestamp_ms' }),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('subscription_challenges_recipient').on(t.recipientId)],
);

/** "Add to Slack": the OAuth state, single-use, remembering what the person chose before leaving for Slack. */
export const slackOauthStates = sqliteTable('slack_oauth_states', {
  id: text('id').primaryKey(),
  choices: text('choices', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
  usedAt: integer('used_at', { mode: 'timestamp_ms' }),
  trustCenterId: trustCenterId(),
});
