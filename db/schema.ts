/**
 * The database schema, one file per capability under db/schema/. After a
 * change, `npm run db:generate` writes the migration into db/migrations.
 */
export * from './schema/audit.ts';
export * from './schema/backups.ts';
export * from './schema/breaches.ts';
export * from './schema/changes.ts';
export * from './schema/content.ts';
export * from './schema/incidents.ts';
export * from './schema/jobs.ts';
export * from './schema/notify.ts';
export * from './schema/organisations.ts';
export * from './schema/postmortems.ts';
export * from './schema/staff.ts';
export * from './schema/subscriptions.ts';
