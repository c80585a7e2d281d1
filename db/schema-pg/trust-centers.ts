import { sql } from 'drizzle-orm';
import { customType, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * The trust centers this deployment serves: db/schema/trust-centers.ts on
 * PostgreSQL. Row-level security lets the application role read only the
 * trust center its transaction is scoped to (the policies are in the
 * migration, db/migrations-pg/); the table is not FORCEd, so its owner (the
 * migrations' role) provisions trust centers.
 */
export const trustCenters = pgTable('trust_centers', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  /** a short stable name (`default` for the first) */
  slug: text('slug').notNull().unique(),
  /** the host name it answers on; null: whatever host the deployment is reached by (the single trust center) */
  hostname: text('hostname').unique(),
  name: text('name').notNull(),
  createdAt: timestamptz('created_at').notNull(),
});

/**
 * The trust center a transaction is scoped to: `set_config('app.trust_center', id, true)` at its start.
 * Null when it is not set, also after a scoped transaction on the same connection has ended (the setting
 * then reads as ''), so a policy on it matches no row and a default from it fails the NOT NULL.
 */
export const currentTrustCenter = sql`nullif(current_setting('app.trust_center', true), '')::integer`;

/**
 * The owning trust center of a row: by default the one the transaction is
 * scoped to. Unique keys that will have to include it once a deployment
 * serves several trust centers (staff email, job key, recipient address,
 * …) are left as they are until then, as on SQLite.
 */
export const trustCenterId = () =>
  integer('trust_center_id')
    .notNull()
    .default(currentTrustCenter)
    .references(() => trustCenters.id);

/** A point in time: `timestamp with time zone`, read as a Date (SQLite keeps milliseconds since the epoch). */
export function timestamptz(name: string) {
  return timestamp(name, { withTimezone: true, mode: 'date' });
}

/** Bytes: `bytea`, read as a Buffer (SQLite: a blob in buffer mode). drizzle's pg-core has no bytea column. */
export const bytea = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => 'bytea',
});
