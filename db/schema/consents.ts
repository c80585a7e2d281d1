import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { channels, recipients, subscribers } from './notify.ts';
import { trustCenterId } from './trust-centers.ts';

/**
 * Where each subscriber's consent came from (issue 17): signed up here and
 * confirmed, or imported from another status page, with the consent carried
 * over or a confirmation request sent. And each import run, with its counts.
 */

export const consentSources = ['signup', 'import'] as const;
export const consentMethods = ['confirmed', 'carried_over', 'confirmation_requested'] as const;
export const importFormats = ['statuspage', 'instatus', 'candor'] as const;
/** why an address was removed: the person unsubscribed or asked to be erased, or staff removed it (console or API) */
export const removalReasons = ['unsubscribed', 'erased', 'removed_by_staff'] as const;

/** One consent record per address: how and when it opted in. Erased with the subscriber. */
export const subscriberConsents = sqliteTable(
  'subscriber_consents',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    subscriberId: integer('subscriber_id').references(() => subscribers.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    source: text('source', { enum: consentSources }).notNull(),
    method: text('method', { enum: consentMethods }).notNull(),
    /** when the person opted in (from the import file when carried over) */
    optedInAt: integer('opted_in_at', { mode: 'timestamp_ms' }),
    /** where: `web form`, `statuspage export`, … (as the file says, trimmed) */
    optedInVia: text('opted_in_via').notNull(),
    importId: integer('import_id').references(() => subscriberImports.id, { onDelete: 'set null' }),
    /** the row of the import file it came from */
    importRow: integer('import_row'),
    recordedAt: integer('recorded_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('subscriber_consents_recipient').on(t.recipientId), index('subscriber_consents_subscriber').on(t.subscriberId)],
);

/** One import run (or dry run): the file's SHA-256, its format, and what became of its rows. */
export const subscriberImports = sqliteTable('subscriber_imports', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  format: text('format', { enum: importFormats }).notNull(),
  fileName: text('file_name').notNull(),
  fileSha256: text('file_sha256').notNull(),
  dryRun: integer('dry_run', { mode: 'boolean' }).notNull(),
  /** carry consent over, or send a confirmation request */
  consent: text('consent', { enum: ['carry_over', 'confirm'] }).notNull(),
  /** { rows, imported, unchanged, refused, confirmationsSent } */
  counts: text('counts', { mode: 'json' }).$type<Record<string, number>>(),
  createdBy: integer('created_by'),
  startedAt: integer('started_at', { mode: 'timestamp_ms' }).notNull(),
  finishedAt: integer('finished_at', { mode: 'timestamp_ms' }),
  trustCenterId: trustCenterId(),
});

/**
 * Addresses that were subscribed and removed, by their blind index only (no address is kept): an
 * import never adds one again, since the person withdrew. Signing up again on the public page and
 * confirming clears it. Kept until then: a withdrawal does not expire.
 */
export const removedAddresses = sqliteTable(
  'removed_addresses',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    channel: text('channel', { enum: channels }).notNull(),
    /** the recipient's blind index (src/core/notify/recipients.ts addressHash) */
    addressHash: text('address_hash').notNull(),
    reason: text('reason', { enum: removalReasons }).notNull(),
    removedAt: integer('removed_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('removed_addresses_address').on(t.trustCenterId, t.channel, t.addressHash)],
);
