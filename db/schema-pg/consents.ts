import { boolean, index, integer, jsonb, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { consentMethods, consentSources, importFormats, removalReasons } from '../schema/consents.ts';
import { channels } from '../schema/notify.ts';
import { recipients, subscribers } from './notify.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/consents.ts on PostgreSQL: subscribers' consent records and import runs. */

export const subscriberConsents = pgTable(
  'subscriber_consents',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    subscriberId: integer('subscriber_id').references(() => subscribers.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    source: text('source', { enum: consentSources }).notNull(),
    method: text('method', { enum: consentMethods }).notNull(),
    optedInAt: timestamptz('opted_in_at'),
    optedInVia: text('opted_in_via').notNull(),
    importId: integer('import_id').references(() => subscriberImports.id, { onDelete: 'set null' }),
    importRow: integer('import_row'),
    recordedAt: timestamptz('recorded_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('subscriber_consents_recipient').on(t.recipientId), index('subscriber_consents_subscriber').on(t.subscriberId)],
);

export const subscriberImports = pgTable('subscriber_imports', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  format: text('format', { enum: importFormats }).notNull(),
  fileName: text('file_name').notNull(),
  fileSha256: text('file_sha256').notNull(),
  dryRun: boolean('dry_run').notNull(),
  consent: text('consent', { enum: ['carry_over', 'confirm'] }).notNull(),
  counts: jsonb('counts').$type<Record<string, number>>(),
  createdBy: integer('created_by'),
  startedAt: timestamptz('started_at').notNull(),
  finishedAt: timestamptz('finished_at'),
  trustCenterId: trustCenterId(),
});

export const removedAddresses = pgTable(
  'removed_addresses',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    channel: text('channel', { enum: channels }).notNull(),
    addressHash: text('address_hash').notNull(),
    reason: text('reason', { enum: removalReasons }).notNull(),
    removedAt: timestamptz('removed_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('removed_addresses_address').on(t.trustCenterId, t.channel, t.addressHash)],
);
