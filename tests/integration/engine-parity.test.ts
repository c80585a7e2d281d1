/**
 * The two engines have one schema: db/schema (SQLite) and db/schema-pg
 * (PostgreSQL), each migrated by its own drizzle-kit migrations, give the
 * same tables, columns, nullability, defaults, keys, foreign keys, indexes
 * and triggers, and the same TypeScript row types. A failure prints the
 * lines one engine has and the other lacks.
 */
import { getTableColumns, getTableName, is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { SQLiteTable } from 'drizzle-orm/sqlite-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import * as sqliteSchema from '../../db/schema.ts';
import * as pgSchema from '../../db/schema-pg.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { catalogueDifference, postgresCatalogue, sqliteCatalogue } from '../helpers/catalogue.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';

// Compile-time: every table's row type ($inferSelect) is the same on both engines. A mismatch fails
// `astro check` with the names of the tables whose rows differ.
type SqliteSchema = typeof sqliteSchema;
type PgSchema = typeof pgSchema;
type Row<T> = T extends { $inferSelect: infer R } ? R : never;
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Mismatched = {
  [K in keyof SqliteSchema]: [Row<SqliteSchema[K]>] extends [never]
    ? never
    : K extends keyof PgSchema
      ? Equal<Row<SqliteSchema[K]>, Row<PgSchema[K]>> extends true
        ? never
        : K
      : K;
}[keyof SqliteSchema];
const rowTypesMatch: [Mismatched] extends [never] ? true : Mismatched = true;

// On PostgreSQL TRUNCATE skips row triggers; these statement triggers hold the append-only tables to it.
// SQLite has no TRUNCATE, so they have no counterpart there. Nor for the notifications that tell other
// nodes the public pages changed (migrations-pg/0003): SQLite serves one machine.
const POSTGRES_ONLY = new Set([
  'trigger audit_log.audit_log_no_truncate',
  'trigger audit_purges.audit_purges_no_truncate',
  ...['announcements', 'change_notices', 'component_states', 'incident_revisions', 'incident_updates', 'incidents', 'postmortems'].map(
    (table) => `trigger ${table}.public_changed`,
  ),
]);

function tablesOf(schema: Record<string, unknown>, kind: typeof SQLiteTable | typeof PgTable) {
  const tables = new Map<string, Record<string, string>>();
  for (const [exported, value] of Object.entries(schema)) {
    if (!is(value, kind)) continue;
    const columns = Object.fromEntries(Object.entries(getTableColumns(value)).map(([key, column]) => [key, column.name]));
    tables.set(`${exported} = ${getTableName(value)}`, columns);
  }
  return tables;
}

describe('the schemas in TypeScript', () => {
  it('define the same tables, exported under the same names, with the same keys for the same columns', () => {
    expect(rowTypesMatch).toBe(true);
    const sqlite = tablesOf(sqliteSchema, SQLiteTable);
    const postgres = tablesOf(pgSchema, PgTable);
    expect([...postgres.keys()].sort()).toEqual([...sqlite.keys()].sort());
    expect(sqlite.size).toBeGreaterThanOrEqual(37);
    for (const [table, columns] of sqlite) expect(postgres.get(table), table).toEqual(columns);
  });

  it('give every table but trust_centers a trust_center_id', () => {
    for (const [schema, kind] of [
      [sqliteSchema, SQLiteTable],
      [pgSchema, PgTable],
    ] as const) {
      for (const [table, columns] of tablesOf(schema, kind)) {
        if (table.endsWith('= trust_centers')) continue;
        expect(columns.trustCenterId, table).toBe('trust_center_id');
      }
    }
  });
});

describe('the migrated SQLite catalogue', () => {
  it('keeps the trust center, the column on every table and the append-only triggers', () => {
    const db = bindAuditKeys(openDatabase(':memory:'), auditKeyring(TEST_KEYS.secret));
    try {
      const lines = sqliteCatalogue(db.$client);
      const tables = lines.filter((l) => l.startsWith('table ')).map((l) => l.slice(6));
      expect(tables.length).toBeGreaterThanOrEqual(37);
      for (const table of tables.filter((t) => t !== 'trust_centers')) {
        expect(lines, table).toContain(`column ${table}.trust_center_id: not null, default`);
        expect(lines, table).toContain(
          `foreign key ${table} (trust_center_id) references trust_centers (id) on update no action on delete no action`,
        );
      }
      expect(lines.filter((l) => l.startsWith('trigger '))).toEqual([
        'trigger alert_events.alert_events_no_update',
        'trigger audit_log.audit_log_delete_only_purged',
        'trigger audit_log.audit_log_no_update',
        'trigger audit_purges.audit_purges_no_delete',
        'trigger audit_purges.audit_purges_no_update',
        'trigger component_states.component_states_no_update',
        'trigger document_views.document_views_no_update',
        'trigger incident_revisions.incident_revisions_no_update',
        'trigger nda_acceptances.nda_acceptances_no_update',
        'trigger nda_texts.nda_texts_no_delete',
        'trigger nda_texts.nda_texts_no_update',
      ]);
      expect(db.$client.prepare('SELECT id, slug FROM trust_centers').all()).toEqual([{ id: 1, slug: 'default' }]);
    } finally {
      db.$client.close();
    }
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('the migrated catalogues of both engines', () => {
  let pg: TestPostgres;
  let sqlite: string[];
  let postgres: string[];

  beforeAll(async () => {
    pg = await createTestPostgres();
    const db = bindAuditKeys(openDatabase(':memory:'), auditKeyring(TEST_KEYS.secret));
    try {
      sqlite = sqliteCatalogue(db.$client);
    } finally {
      db.$client.close();
    }
    postgres = (await postgresCatalogue(pg.owner)).filter((l) => !POSTGRES_ONLY.has(l));
  });
  afterAll(async () => {
    await pg?.drop();
  });

  it('are the same: tables, columns, nullability, defaults, keys, foreign keys, indexes and triggers', () => {
    expect(sqlite.length).toBeGreaterThan(400);
    expect(catalogueDifference(sqlite, postgres)).toEqual({ onlySqlite: [], onlyPostgres: [] });
  });

  it('notice a difference: a dropped column, an index made non-unique, another ON DELETE', async () => {
    const client = await pg.owner.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE deliveries DROP COLUMN batch_key');
      await client.query('DROP INDEX recipients_channel_address');
      await client.query('CREATE INDEX recipients_channel_address ON recipients (channel, address_hash)');
      await client.query('ALTER TABLE objections DROP CONSTRAINT objections_recipient_id_recipients_id_fk');
      await client.query('ALTER TABLE objections ADD FOREIGN KEY (recipient_id) REFERENCES recipients (id) ON DELETE CASCADE');
      const changed = (await postgresCatalogue(client)).filter((l) => !POSTGRES_ONLY.has(l));
      expect(catalogueDifference(sqlite, changed)).toEqual({
        onlySqlite: [
          'column deliveries.batch_key: null',
          'foreign key objections (recipient_id) references recipients (id) on update no action on delete set null',
          'index recipients.recipients_channel_address (channel, address_hash) unique',
        ],
        onlyPostgres: [
          'foreign key objections (recipient_id) references recipients (id) on update no action on delete cascade',
          'index recipients.recipients_channel_address (channel, address_hash)',
        ],
      });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
