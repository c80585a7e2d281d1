/**
 * Row-level security on PostgreSQL: a transaction scoped to one trust
 * center (`set_config('app.trust_center', '1', true)`) neither reads nor
 * writes another's rows, in every table, and a transaction without the
 * setting sees and writes nothing. The tables are enumerated from the
 * catalogue and each gets one row per trust center built from it (its NOT
 * NULL columns without defaults, parents first), so a table added without
 * policies fails here. What it does not hold against (the application role
 * sets the trust center itself) is asserted last, as a known limit.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';

interface Column {
  name: string;
  type: string;
  notNull: boolean;
  hasDefault: boolean;
}

interface Table {
  name: string;
  columns: Column[];
  /** column → the parent table and column it references */
  parents: Map<string, { table: string; column: string }>;
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

async function readTables(db: pg.Pool): Promise<Map<string, Table>> {
  const tables = new Map<string, Table>();
  const columns = await db.query<{ table: string; name: string; type: string; nullable: string; default: string | null; identity: string }>(
    `SELECT table_name AS "table", column_name AS name, data_type AS type, is_nullable AS nullable,
            column_default AS "default", is_identity AS identity
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
  );
  for (const c of columns.rows) {
    const table: Table = tables.get(c.table) ?? { name: c.table, columns: [], parents: new Map() };
    table.columns.push({
      name: c.name,
      type: c.type,
      notNull: c.nullable === 'NO',
      hasDefault: c.default !== null || c.identity === 'YES',
    });
    tables.set(c.table, table);
  }
  const fks = await db.query<{ table: string; column: string; parent: string; parentColumn: string }>(
    `SELECT child.relname::text AS "table", a.attname::text AS "column", parent.relname::text AS parent, pa.attname::text AS "parentColumn"
       FROM pg_constraint c
       JOIN pg_class child ON child.oid = c.conrelid
       JOIN pg_class parent ON parent.oid = c.confrelid
       JOIN pg_namespace n ON n.oid = child.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
       JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
      WHERE c.contype = 'f' AND n.nspname = 'public' AND cardinality(c.conkey) = 1`,
  );
  for (const f of fks.rows) tables.get(f.table)?.parents.set(f.column, { table: f.parent, column: f.parentColumn });
  return tables;
}

let counter = 0;

/** A value of the column's type, different at every call (unique keys hold across trust centers for now). */
function sample(table: string, column: Column): unknown {
  const n = ++counter;
  switch (column.type) {
    case 'integer':
    case 'bigint':
    case 'smallint':
      return 1_000_000 + n;
    case 'text':
      return `${table}.${column.name}.${n.toString()}`;
    case 'double precision':
      return n + 0.5;
    case 'boolean':
      return false;
    case 'jsonb':
      return JSON.stringify({ n });
    case 'timestamp with time zone':
      return new Date();
    case 'bytea':
      return Buffer.from([n % 256]);
    default:
      throw new Error(`no sample value for ${table}.${column.name} of type ${column.type}: teach sample() about it`);
  }
}

/** One transaction as `client`, scoped to the trust center unless it is null. */
async function scoped<T>(db: pg.Pool, trustCenter: number | null, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    if (trustCenter !== null) await client.query(`SELECT set_config('app.trust_center', $1, true)`, [String(trustCenter)]);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

/** The error a statement fails with, or null when it succeeds (in a savepoint, so the transaction goes on). */
async function refusal(client: pg.PoolClient, text: string, values: unknown[] = []): Promise<string | null> {
  await client.query('SAVEPOINT attempt');
  try {
    await client.query(text, values);
    await client.query('RELEASE SAVEPOINT attempt');
    return null;
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT attempt');
    return err instanceof Error ? err.message : String(err);
  }
}

/** A row of `table` whose parents `parentRow` gives; `explicit` names a trust center instead of the setting's default. */
async function build(
  table: Table,
  parentRow: (table: string) => Promise<Record<string, unknown>>,
  explicit?: number,
): Promise<Record<string, unknown>> {
  const values: Record<string, unknown> = {};
  for (const column of table.columns) {
    if (column.name === 'trust_center_id') {
      if (explicit !== undefined) values[column.name] = explicit;
      continue;
    }
    const parent = table.parents.get(column.name);
    if (parent && column.notNull) values[column.name] = (await parentRow(parent.table))[parent.column];
    else if (column.notNull && !column.hasDefault) values[column.name] = sample(table.name, column);
  }
  return values;
}

function insertSql(table: string, values: Record<string, unknown>): { text: string; values: unknown[] } {
  const names = Object.keys(values);
  const placeholders = names.map((_, i) => `$${(i + 1).toString()}`).join(', ');
  return {
    text: `INSERT INTO ${quote(table)} (${names.map(quote).join(', ')}) VALUES (${placeholders}) RETURNING *`,
    values: Object.values(values),
  };
}

describe.skipIf(!TEST_POSTGRES_URL)('row-level security on PostgreSQL', () => {
  let pg: TestPostgres;
  let tables: Map<string, Table>;
  /** every table whose rows belong to a trust center: all but trust_centers */
  let scopedTables: Table[];
  /** per trust center, the row made in each table */
  const made = new Map<number, Map<string, Record<string, unknown>>>();

  /** Inserts one row in every table for the trust center, as the application role scoped to it. */
  async function populate(trustCenter: number): Promise<void> {
    const rows = new Map<string, Record<string, unknown>>();
    made.set(trustCenter, rows);
    await scoped(pg.app, trustCenter, async (client) => {
      const rowOf = async (name: string): Promise<Record<string, unknown>> => {
        const existing = rows.get(name);
        if (existing) return existing;
        const table = tables.get(name);
        if (!table) throw new Error(`no table ${name}`);
        const { text, values } = insertSql(name, await build(table, rowOf));
        const inserted = (await client.query<Record<string, unknown>>(text, values)).rows[0];
        if (!inserted) throw new Error(`${name}: nothing inserted`);
        rows.set(name, inserted);
        return inserted;
      };
      for (const table of scopedTables) await rowOf(table.name);
    });
  }

  beforeAll(async () => {
    pg = await createTestPostgres();
    const second = await pg.owner.query<{ id: number }>(
      `INSERT INTO trust_centers (slug, hostname, name, created_at) VALUES ('second', 'second.example', 'Second', now()) RETURNING id`,
    );
    expect(second.rows[0]?.id).toBe(2);
    tables = await readTables(pg.owner);
    scopedTables = [...tables.values()].filter((t) => t.name !== 'trust_centers');
    await populate(1);
    await populate(2);
  });
  afterAll(async () => {
    await pg?.drop();
  });

  it('covers every table: each has a trust_center_id, row-level security enabled and forced, and a policy', async () => {
    expect(scopedTables.length).toBeGreaterThanOrEqual(36);
    const flags = await pg.owner.query<{ name: string; enabled: boolean; forced: boolean; policies: number }>(
      `SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
              (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
    );
    const problems: string[] = [];
    for (const row of flags.rows) {
      if (row.name === 'trust_centers') {
        if (!row.enabled || row.policies !== 1) problems.push(`${row.name}: row-level security not enabled with one policy`);
        continue;
      }
      if (!tables.get(row.name)?.columns.some((c) => c.name === 'trust_center_id' && c.notNull))
        problems.push(`${row.name}: no trust_center_id`);
      if (!row.enabled) problems.push(`${row.name}: row-level security not enabled`);
      if (!row.forced) problems.push(`${row.name}: row-level security not forced`);
      if (row.policies === 0) problems.push(`${row.name}: no policy`);
    }
    expect(problems).toEqual([]);
  });

  it('shows a scoped transaction only its own trust center’s rows, in every table', async () => {
    const seen: Record<string, { trustCenter: number; rows: number }[]> = {};
    const expected: typeof seen = {};
    for (const trustCenter of [1, 2]) {
      await scoped(pg.app, trustCenter, async (client) => {
        for (const table of scopedTables) {
          const { rows } = await client.query<{ trustCenter: number; rows: number }>(
            `SELECT trust_center_id AS "trustCenter", count(*)::int AS rows FROM ${quote(table.name)} GROUP BY 1 ORDER BY 1`,
          );
          seen[`${table.name} as ${trustCenter.toString()}`] = rows;
          expected[`${table.name} as ${trustCenter.toString()}`] = [{ trustCenter, rows: 1 }];
        }
      });
    }
    expect(seen).toEqual(expected);
  });

  it('lets a scoped transaction change or remove none of another trust center’s rows', async () => {
    const touched: Record<string, number> = {};
    await scoped(pg.app, 1, async (client) => {
      for (const table of scopedTables) {
        const updated = await client.query(`UPDATE ${quote(table.name)} SET trust_center_id = 1 WHERE trust_center_id = 2`);
        const deleted = await client.query(`DELETE FROM ${quote(table.name)} WHERE trust_center_id = 2`);
        touched[table.name] = (updated.rowCount ?? 0) + (deleted.rowCount ?? 0);
      }
    });
    expect(Object.values(touched).every((n) => n === 0) ? 'none' : touched).toBe('none');
    // Still there, unchanged, for the trust center they belong to.
    await scoped(pg.app, 2, async (client) => {
      for (const table of scopedTables) {
        const { rows } = await client.query(`SELECT * FROM ${quote(table.name)}`);
        expect(rows, table.name).toEqual([made.get(2)?.get(table.name)]);
      }
    });
  });

  it('refuses a scoped transaction’s insert into another trust center, and moving its own rows there', async () => {
    const refusals: Record<string, { insert: string | null; move: string | null }> = {};
    await scoped(pg.app, 1, async (client) => {
      const own = made.get(1);
      const parentRow = async (name: string) => own?.get(name) ?? {};
      for (const table of scopedTables) {
        const { text, values } = insertSql(table.name, await build(table, parentRow, 2));
        const insert = await refusal(client, text, values);
        const move = await refusal(client, `UPDATE ${quote(table.name)} SET trust_center_id = 2`);
        refusals[table.name] = { insert, move };
      }
    });
    const problems = Object.entries(refusals).flatMap(([table, { insert, move }]) => [
      ...(insert?.includes('violates row-level security policy') ? [] : [`${table}: insert for trust center 2: ${insert ?? 'accepted'}`]),
      // An append-only table's trigger refuses the update before the policy does.
      ...(move && /violates row-level security policy|append-only/.test(move)
        ? []
        : [`${table}: move to trust center 2: ${move ?? 'accepted'}`]),
    ]);
    expect(problems).toEqual([]);
  });

  it('shows and takes nothing without the setting, also on a connection a scoped transaction used before', async () => {
    const client = await pg.app.connect();
    const visible: Record<string, number> = {};
    const inserts: Record<string, string | null> = {};
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.trust_center', '1', true)`);
      await client.query('COMMIT');
      // The setting now reads '' on this connection, not "unset": it must still match nothing.
      expect((await client.query(`SELECT current_setting('app.trust_center', true) AS v`)).rows).toEqual([{ v: '' }]);
      await client.query('BEGIN');
      const own = made.get(1);
      for (const table of [...scopedTables, tables.get('trust_centers') as Table]) {
        const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quote(table.name)}`);
        visible[table.name] = rows[0]?.n ?? -1;
        if (table.name === 'trust_centers') continue;
        const withDefault = insertSql(table.name, await build(table, async (name) => own?.get(name) ?? {}));
        const named = insertSql(table.name, await build(table, async (name) => own?.get(name) ?? {}, 1));
        const [a, b] = [await refusal(client, withDefault.text, withDefault.values), await refusal(client, named.text, named.values)];
        // The default (no trust center) fails the policy's check before the NOT NULL constraint would.
        inserts[table.name] =
          a?.includes('violates row-level security policy') && b?.includes('violates row-level security policy')
            ? 'refused'
            : `${a} / ${b}`;
      }
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(Object.entries(visible).filter(([, n]) => n !== 0)).toEqual([]);
    expect(Object.entries(inserts).filter(([, r]) => r !== 'refused')).toEqual([]);
    // A fresh connection, which never had the setting at all.
    await scoped(pg.app, null, async (c) => {
      for (const table of scopedTables) {
        expect((await c.query(`SELECT count(*)::int AS n FROM ${quote(table.name)}`)).rows, table.name).toEqual([{ n: 0 }]);
      }
    });
  });

  it('holds the tables’ owner to the policies too (FORCE): unscoped it sees nothing', async () => {
    const visible: Record<string, number> = {};
    for (const table of scopedTables) {
      const { rows } = await pg.owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quote(table.name)}`);
      visible[table.name] = rows[0]?.n ?? -1;
    }
    expect(Object.entries(visible).filter(([, n]) => n !== 0)).toEqual([]);
  });

  it('lets a scoped transaction read only its own trust center, and change none', async () => {
    for (const trustCenter of [1, 2]) {
      await scoped(pg.app, trustCenter, async (client) => {
        expect((await client.query('SELECT id FROM trust_centers')).rows).toEqual([{ id: trustCenter }]);
        expect(await refusal(client, `INSERT INTO trust_centers (slug, name, created_at) VALUES ('third', 'Third', now())`)).toMatch(
          /violates row-level security policy/,
        );
        expect((await client.query(`UPDATE trust_centers SET name = 'Renamed'`)).rowCount).toBe(0);
        expect((await client.query('DELETE FROM trust_centers')).rowCount).toBe(0);
      });
    }
    const names = await pg.owner.query('SELECT id, name FROM trust_centers ORDER BY id');
    expect(names.rows).toEqual([
      { id: 1, name: 'Trust center' },
      { id: 2, name: 'Second' },
    ]);
  });

  it('keeps the audit log append-only for the application role', async () => {
    // Above every purge the fixture rows recorded (their up_to_id is an arbitrary number).
    const id = 900_000_000;
    await scoped(pg.app, 1, async (client) => {
      await client.query(
        `INSERT INTO audit_log (id, at, actor_type, action, summary, prev_hash, hash) VALUES ($1, now(), 'system', 'test', '{}', 'p', 'h')`,
        [id],
      );
      expect(await refusal(client, `UPDATE audit_log SET action = 'rewritten'`)).toMatch(
        /audit_log is append-only: entries cannot be changed/,
      );
      expect(await refusal(client, 'DELETE FROM audit_log WHERE id = $1', [id])).toMatch(
        /only entries covered by a recorded purge can be removed/,
      );
      expect(await refusal(client, 'TRUNCATE audit_log')).toMatch(/permission denied/);
      expect(await refusal(client, 'DELETE FROM audit_purges')).toMatch(/audit_purges is append-only/);
      expect(await refusal(client, `UPDATE component_states SET status = 'degraded'`)).toMatch(/component_states is append-only/);
      expect(await refusal(client, `UPDATE incident_revisions SET after = 'x'`)).toMatch(/incident_revisions is append-only/);
    });
    // A purge recorded in another trust center covers none of this one's entries.
    await scoped(pg.app, 2, (client) =>
      client.query(`INSERT INTO audit_purges (at, up_to_id, last_hash, removed) VALUES (now(), $1, 'h', 1)`, [id]),
    );
    await scoped(pg.app, 1, async (client) => {
      expect(await refusal(client, 'DELETE FROM audit_log WHERE id = $1', [id])).toMatch(/only entries covered by a recorded purge/);
    });
    // A purge recorded in its own lets exactly the entries it covers go.
    await scoped(pg.app, 1, async (client) => {
      await client.query(`INSERT INTO audit_purges (at, up_to_id, last_hash, removed) VALUES (now(), $1, 'h', 1)`, [id]);
      expect((await client.query('DELETE FROM audit_log WHERE id = $1', [id])).rowCount).toBe(1);
    });
    // TRUNCATE skips row triggers; the application role may not, and the owner is stopped by a trigger.
    const owner = await pg.owner.connect();
    try {
      await owner.query('BEGIN');
      expect(await refusal(owner, 'TRUNCATE audit_log')).toMatch(/audit_log is append-only: it cannot be truncated/);
      expect(await refusal(owner, 'TRUNCATE audit_purges')).toMatch(/audit_purges is append-only/);
      await owner.query('ROLLBACK');
    } finally {
      owner.release();
    }
  });

  // KNOWN LIMIT (README, PostgreSQL and Security → Known limits), asserted so that it stays written down:
  // the policies trust app.trust_center, which the application role sets itself. Row-level security
  // separates trust centers against the application's bugs (a query that forgets its scope), not against
  // SQL injection or a compromised application role, which can re-scope its own transaction. When a
  // stronger design lands (a login role per trust center, or a setting only a SECURITY DEFINER function
  // may set), this test must be turned round to expect the switch to be refused.
  it('known limit: the application role can re-scope its own transaction to another trust center', async () => {
    const seen = await scoped(pg.app, 1, async (client) => {
      const before = (await client.query<{ id: number }>('SELECT id FROM trust_centers')).rows;
      await client.query(`SELECT set_config('app.trust_center', '2', true)`);
      const after = (await client.query<{ id: number }>('SELECT id FROM trust_centers')).rows;
      return { before, after };
    });
    expect(seen).toEqual({ before: [{ id: 1 }], after: [{ id: 2 }] });
  });
});
