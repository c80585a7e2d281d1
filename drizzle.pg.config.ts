import { defineConfig } from 'drizzle-kit';

/**
 * drizzle-kit for the PostgreSQL schema (db/schema-pg.ts), beside
 * drizzle.config.ts for SQLite: `npx drizzle-kit generate --config
 * drizzle.pg.config.ts --name <what>` after a change to db/schema-pg/.
 */
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema-pg.ts',
  out: './db/migrations-pg',
});
