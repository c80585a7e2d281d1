import { boolean, index, integer, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/jobs.ts on PostgreSQL: durable timers, and incident updates scheduled for later. */
export const jobs = pgTable(
  'jobs',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    /** one live job per key: rescheduling replaces the time */
    key: text('key').notNull().unique(),
    kind: text('kind').notNull(),
    runAt: timestamptz('run_at').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['pending', 'running', 'done', 'cancelled', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    lockedUntil: timestamptz('locked_until'),
    lastError: text('last_error'),
    createdAt: timestamptz('created_at').notNull(),
    finishedAt: timestamptz('finished_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('jobs_due').on(t.status, t.runAt)],
);

export const scheduledUpdates = pgTable('scheduled_updates', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  incidentId: integer('incident_id').notNull(),
  status: text('status').notNull(),
  body: text('body').notNull(),
  components: jsonb('components').$type<Record<string, string>>().notNull(),
  runAt: timestamptz('run_at').notNull(),
  createdBy: integer('created_by').notNull(),
  createdAt: timestamptz('created_at').notNull(),
  cancelledAt: timestamptz('cancelled_at'),
  publishedUpdateId: integer('published_update_id'),
  /** false: published on the pages only, as staff chose when scheduling it */
  notify: boolean('notify').notNull().default(true),
  /** the next update it promises; null: the cadence */
  nextUpdateBy: timestamptz('next_update_by'),
  trustCenterId: trustCenterId(),
});
