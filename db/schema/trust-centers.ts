import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * The trust centers this deployment serves. Every other table's rows belong
 * to one (`trust_center_id`). There is one today, id 1, written by the
 * migration that added the table; a later issue serves several, one per
 * hostname. On PostgreSQL row-level security keys every table on it (see
 * db/schema-pg/); on SQLite the stores scope their queries the same way.
 */
export const trustCenters = sqliteTable('trust_centers', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  /** a short stable name (`default` for the first) */
  slug: text('slug').notNull().unique(),
  /** the host name it answers on; null: whatever host the deployment is reached by (the single trust center) */
  hostname: text('hostname').unique(),
  name: text('name').notNull(),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
});

/** The one trust center of a deployment today, made by the migration that added the table. */
export const DEFAULT_TRUST_CENTER = 1;

/**
 * The owning trust center of a row. `DEFAULT 1` keeps every insert that
 * does not name one (all of today's code) in the single trust center.
 * Unique keys that will have to include it once a deployment serves several
 * trust centers (staff email, job key, recipient address, …) are left as
 * they are until then.
 */
export const trustCenterId = () =>
  integer('trust_center_id')
    .notNull()
    .default(DEFAULT_TRUST_CENTER)
    .references(() => trustCenters.id);
