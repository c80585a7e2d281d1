import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { incidents } from './incidents.ts';
import { trustCenterId } from './trust-centers.ts';

/** What happened and what changes, written after an incident is resolved, and announced like an update. */
export const postmortems = sqliteTable('postmortems', {
  incidentId: integer('incident_id')
    .primaryKey()
    .references(() => incidents.id, { onDelete: 'cascade' }),
  body: text('body').notNull(),
  publishedAt: integer('published_at', { mode: 'timestamp_ms' }).notNull(),
  publishedBy: integer('published_by').notNull(),
  notificationId: integer('notification_id'),
  trustCenterId: trustCenterId(),
});
