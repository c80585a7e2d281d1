import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { incidents } from './incidents.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/postmortems.ts on PostgreSQL: what happened and what changes, after an incident is resolved. */
export const postmortems = pgTable('postmortems', {
  incidentId: integer('incident_id')
    .primaryKey()
    .references(() => incidents.id, { onDelete: 'cascade' }),
  body: text('body').notNull(),
  publishedAt: timestamptz('published_at').notNull(),
  publishedBy: integer('published_by').notNull(),
  notificationId: integer('notification_id'),
  trustCenterId: trustCenterId(),
});
