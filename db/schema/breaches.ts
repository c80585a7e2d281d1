import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { incidents } from './incidents.ts';
import { trustCenterId } from './trust-centers.ts';

/** What GDPR Art. 33(3) requires a breach notification to say, and the clock it runs on. */
export const breachDetails = sqliteTable('breach_details', {
  incidentId: integer('incident_id')
    .primaryKey()
    .references(() => incidents.id, { onDelete: 'cascade' }),
  /** when the company became aware: the 72-hour clock starts here */
  awareAt: integer('aware_at', { mode: 'timestamp_ms' }).notNull(),
  /** when it is thought to have begun, if known: how fast it was detected */
  occurredAt: integer('occurred_at', { mode: 'timestamp_ms' }),
  nature: text('nature').notNull(),
  subjects: text('subjects').notNull(),
  records: text('records').notNull(),
  consequences: text('consequences').notNull(),
  measures: text('measures').notNull(),
  authorityNotifiedAt: integer('authority_notified_at', { mode: 'timestamp_ms' }),
  trustCenterId: trustCenterId(),
});
