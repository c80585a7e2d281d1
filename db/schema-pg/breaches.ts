import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { incidents } from './incidents.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/breaches.ts on PostgreSQL: what GDPR Art. 33(3) requires a breach notification to say. */
export const breachDetails = pgTable('breach_details', {
  incidentId: integer('incident_id')
    .primaryKey()
    .references(() => incidents.id, { onDelete: 'cascade' }),
  /** when the company became aware: the 72-hour clock starts here */
  awareAt: timestamptz('aware_at').notNull(),
  /** when it is thought to have begun, if known: how fast it was detected */
  occurredAt: timestamptz('occurred_at'),
  nature: text('nature').notNull(),
  subjects: text('subjects').notNull(),
  records: text('records').notNull(),
  consequences: text('consequences').notNull(),
  measures: text('measures').notNull(),
  authorityNotifiedAt: timestamptz('authority_notified_at'),
  trustCenterId: trustCenterId(),
});
