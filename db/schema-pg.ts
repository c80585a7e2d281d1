/**
 * The database schema on PostgreSQL: db/schema.ts (SQLite) table for table,
 * with PostgreSQL's own types (`timestamp with time zone` read as Date,
 * `jsonb`, `boolean`, identity columns for SQLite's AUTOINCREMENT ids,
 * `bytea`). The two must stay in step: same tables, column names,
 * nullability, keys, foreign keys (with their ON DELETE) and indexes, and
 * the same TypeScript row types. tests/integration/engine-parity.test.ts
 * compares the two migrated databases' catalogues and the row types, and
 * fails on any difference. After a change, `npx drizzle-kit generate
 * --config drizzle.pg.config.ts` writes the migration into db/migrations-pg
 * (row-level security for a new table is hand-written there; see 0000).
 */
export * from './schema-pg/access.ts';
export * from './schema-pg/audit.ts';
export * from './schema-pg/automation.ts';
export * from './schema-pg/backups.ts';
export * from './schema-pg/breaches.ts';
export * from './schema-pg/changes.ts';
export * from './schema-pg/consents.ts';
export * from './schema-pg/content.ts';
export * from './schema-pg/incidents.ts';
export * from './schema-pg/jobs.ts';
export * from './schema-pg/notify.ts';
export * from './schema-pg/organisations.ts';
export * from './schema-pg/postmortems.ts';
export * from './schema-pg/staff.ts';
export * from './schema-pg/subscriptions.ts';
export { trustCenters } from './schema-pg/trust-centers.ts';
