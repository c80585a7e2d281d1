import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { trustCenterId } from './trust-centers.ts';

/**
 * Durable timers: work due at a time, run once by whichever worker claims
 * it. A job due while everything was down runs at the next start.
 */
export const jobs = sqliteTable(
  'jobs',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** one live job per key: rescheduling replaces the time */
    key: text('key').notNull().unique(),
    kind: text('kind').notNull(),
    runAt: integer('run_at', { mode: 'timestamp_ms' }).notNull(),
    payload: text('payload', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['pending', 'running', 'done', 'cancelled', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    lockedUntil: integer('locked_until', { mode: 'timestamp_ms' }),
    lastError: text('last_error'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    finishedAt: integer('finished_at', { mode: 'timestamp_ms' }),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('jobs_due').on(t.status, t.runAt)],
);

/** An incident update written now to be published later; editable (cancel and write again) until then. */
export const scheduledUpdates = sqliteTable('scheduled_updates', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  incidentId: integer('incident_id').notNull(),
  status: text('status').notNull(),
  body: text('body').notNull(),
  components: text('components', { mode: 'json' }).$type<Record<string, string>>().notNull(),
  runAt: integer('run_at', { mode: 'timestamp_ms' }).notNull(),
  createdBy: integer('created_by').notNull(),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  cancelledAt: integer('cancelled_at', { mode: 'timestamp_ms' }),
  publishedUpdateId: integer('published_update_id'),
  /** false: published on the pages only, as staff chose when scheduling it */
  notify: integer('notify', { mode: 'boolean' }).notNull().default(true),
  /** the next update it promises; null: the cadence */
  nextUpdateBy: integer('next_update_by', { mode: 'timestamp_ms' }),
  trustCenterId: trustCenterId(),
});
