/**
 * The database schema, one file per capability under db/schema/. After a
 * change, `npm run db:generate` writes the migration into db/migrations.
 * db/schema-pg.ts is the same schema on PostgreSQL: change both together
 * (and generate both engines' migrations); the parity test
 * (tests/integration/engine-parity.test.ts) fails while they differ.
 */
export * from './schema/access.ts';
export * from './schema/audit.ts';
export * from './schema/automation.ts';
export * from './schema/backups.ts';
export * from './schema/breaches.ts';
export * from './schema/changes.ts';
export * from './schema/consents.ts';
export * from './schema/content.ts';
export * from './schema/incidents.ts';
export * from './schema/jobs.ts';
export * from './schema/notify.ts';
export * from './schema/organisations.ts';
export * from './schema/postmortems.ts';
export * from './schema/staff.ts';
export * from './schema/subscriptions.ts';
export { DEFAULT_TRUST_CENTER, trustCenters } from './schema/trust-centers.ts';
