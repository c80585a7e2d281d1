import { index, integer, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { recipients } from './notify.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/subscriptions.ts on PostgreSQL: proofs of address ownership, and Slack's OAuth state. */
export const subscriptionChallenges = pgTable(
  'subscription_challenges',
  {
    id: text('id').primaryKey(),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['email_link', 'sms_code'] }).notNull(),
    secretHash: text('secret_hash').notNull(),
    attempts: integer('attempts').notNull().default(0),
    createdAt: timestamptz('created_at').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
    usedAt: timestamptz('used_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('subscription_challenges_recipient').on(t.recipientId)],
);

export const slackOauthStates = pgTable('slack_oauth_states', {
  id: text('id').primaryKey(),
  choices: jsonb('choices').$type<Record<string, unknown>>().notNull(),
  createdAt: timestamptz('created_at').notNull(),
  expiresAt: timestamptz('expires_at').notNull(),
  usedAt: timestamptz('used_at'),
  trustCenterId: trustCenterId(),
});
