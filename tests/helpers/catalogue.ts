/**
 * Each engine's schema as read back from its own catalogue, in one plain
 * form: sorted lines such as `column deliveries.status: not null` or
 * `index deliveries.deliveries_due (status, channel, next_attempt_at)`. Two
 * engines have the same schema when they give the same lines; the parity
 * test (tests/integration/engine-parity.test.ts) compares them.
 *
 * What is compared: tables; columns with nullability and whether they have a
 * default (an identity column, SQLite's AUTOINCREMENT, has none); primary
 * keys; foreign keys with their ON UPDATE / ON DELETE; indexes with their
 * key columns (or expressions), unique or not, partial or not (not the
 * predicate's text: each engine prints it its own way); triggers by name.
 * Not compared: column types, which differ by design.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';

/** `lower("name")`, `lower(name)` and `` `name` `` all read the same. */
const normalise = (expression: string) => expression.replace(/["`]/g, '').replace(/\s+/g, ' ').trim().toLowerCase();

const action = (rule: string) => rule.toLowerCase();

/** The key expressions of `CREATE INDEX … ON t (a, lower(b))`, split at the top-level commas. */
function indexExpressions(createSql: string): string[] {
  const on = /\bON\s+[`"]?\w+[`"]?\s*\(/i.exec(createSql);
  if (!on) return [];
  const parts: string[] = [];
  let depth = 1;
  let current = '';
  for (const char of createSql.slice(on.index + on[0].length)) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (depth === 0) break;
    if (char === ',' && depth === 1) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts.map((p) => normalise(p.replace(/\s+(ASC|DESC)\s*$/i, '')));
}

export function sqliteCatalogue(sqlite: Database.Database): string[] {
  const lines: string[] = [];
  const tables = sqlite
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != '__drizzle_migrations'`)
    .all() as { name: string }[];
  for (const { name: table } of tables) {
    lines.push(`table ${table}`);
    const columns = sqlite.pragma(`table_info("${table}")`) as { name: string; notnull: number; dflt_value: string | null; pk: number }[];
    for (const c of columns) {
      lines.push(`column ${table}.${c.name}: ${c.notnull ? 'not null' : 'null'}${c.dflt_value === null ? '' : ', default'}`);
    }
    const pk = columns
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    if (pk.length > 0) lines.push(`primary key ${table} (${pk.join(', ')})`);
    const fks = sqlite.pragma(`foreign_key_list("${table}")`) as {
      id: number;
      seq: number;
      table: string;
      from: string;
      to: string | null;
      on_update: string;
      on_delete: string;
    }[];
    for (const id of new Set(fks.map((f) => f.id))) {
      const parts = fks.filter((f) => f.id === id).sort((a, b) => a.seq - b.seq);
      const first = parts[0];
      if (!first) continue;
      lines.push(
        `foreign key ${table} (${parts.map((p) => p.from).join(', ')}) references ${first.table} (${parts.map((p) => p.to ?? '(its primary key)').join(', ')}) on update ${action(first.on_update)} on delete ${action(first.on_delete)}`,
      );
    }
    const indexes = sqlite.pragma(`index_list("${table}")`) as { name: string; unique: number; origin: string; partial: number }[];
    for (const index of indexes) {
      // The primary key's own index (origin 'pk') is the primary key line above.
      if (index.origin === 'pk') continue;
      const keys = (sqlite.pragma(`index_xinfo("${index.name}")`) as { seqno: number; cid: number; name: string | null; key: number }[])
        .filter((k) => k.key === 1)
        .sort((a, b) => a.seqno - b.seqno);
      const createSql =
        (
          sqlite.prepare(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`).get(index.name) as
            | { sql: string | null }
            | undefined
        )?.sql ?? '';
      const expressions = indexExpressions(createSql);
      const columns = keys.map((k, i) => (k.name === null ? (expressions[i] ?? '(expression)') : normalise(k.name)));
      lines.push(`index ${table}.${index.name} (${columns.join(', ')})${index.unique ? ' unique' : ''}${index.partial ? ' partial' : ''}`);
    }
  }
  const triggers = sqlite.prepare(`SELECT tbl_name AS "table", name FROM sqlite_master WHERE type = 'trigger'`).all() as {
    table: string;
    name: string;
  }[];
  for (const t of triggers) lines.push(`trigger ${t.table}.${t.name}`);
  return lines.sort();
}

const RULES: Record<string, string> = { a: 'no action', r: 'restrict', c: 'cascade', n: 'set null', d: 'set default' };

/** The `public` schema of the database the client is connected to. */
export async function postgresCatalogue(client: pg.ClientBase | pg.Pool): Promise<string[]> {
  const lines: string[] = [];
  const tables = await client.query<{ name: string }>(
    `SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
  );
  for (const t of tables.rows) lines.push(`table ${t.name}`);
  const columns = await client.query<{ table: string; name: string; nullable: string; default: string | null }>(
    `SELECT table_name AS "table", column_name AS name, is_nullable AS nullable, column_default AS "default"
       FROM information_schema.columns WHERE table_schema = 'public'`,
  );
  for (const c of columns.rows) {
    lines.push(`column ${c.table}.${c.name}: ${c.nullable === 'NO' ? 'not null' : 'null'}${c.default === null ? '' : ', default'}`);
  }
  const indexes = await client.query<{
    table: string;
    name: string;
    primary: boolean;
    unique: boolean;
    partial: boolean;
    columns: string[];
  }>(
    `SELECT ct.relname AS "table", ci.relname AS name, i.indisprimary AS primary, i.indisunique AS unique,
            i.indpred IS NOT NULL AS partial,
            array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS columns
       FROM pg_index i
       JOIN pg_class ci ON ci.oid = i.indexrelid
       JOIN pg_class ct ON ct.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = ct.relnamespace
      WHERE n.nspname = 'public'`,
  );
  for (const i of indexes.rows) {
    const columns = i.columns.map(normalise).join(', ');
    if (i.primary) lines.push(`primary key ${i.table} (${columns})`);
    else lines.push(`index ${i.table}.${i.name} (${columns})${i.unique ? ' unique' : ''}${i.partial ? ' partial' : ''}`);
  }
  const fks = await client.query<{
    table: string;
    parent: string;
    columns: string[];
    parentColumns: string[];
    onUpdate: string;
    onDelete: string;
  }>(
    `SELECT child.relname AS "table", parent.relname AS parent,
            array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.ord) AS columns,
            array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.ord) AS "parentColumns",
            c.confupdtype AS "onUpdate", c.confdeltype AS "onDelete"
       FROM pg_constraint c
       JOIN pg_class child ON child.oid = c.conrelid
       JOIN pg_class parent ON parent.oid = c.confrelid
       JOIN pg_namespace n ON n.oid = child.relnamespace
      WHERE c.contype = 'f' AND n.nspname = 'public'`,
  );
  for (const f of fks.rows) {
    lines.push(
      `foreign key ${f.table} (${f.columns.join(', ')}) references ${f.parent} (${f.parentColumns.join(', ')}) on update ${RULES[f.onUpdate] ?? f.onUpdate} on delete ${RULES[f.onDelete] ?? f.onDelete}`,
    );
  }
  const triggers = await client.query<{ table: string; name: string }>(
    `SELECT c.relname AS "table", t.tgname AS name FROM pg_trigger t
       JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal AND n.nspname = 'public'`,
  );
  for (const t of triggers.rows) lines.push(`trigger ${t.table}.${t.name}`);
  return lines.sort();
}

/** What one catalogue has that the other lacks, each sorted: both empty when the schemas match. */
export function catalogueDifference(
  sqlite: readonly string[],
  postgres: readonly string[],
): { onlySqlite: string[]; onlyPostgres: string[] } {
  const inPostgres = new Set(postgres);
  const inSqlite = new Set(sqlite);
  return { onlySqlite: sqlite.filter((l) => !inPostgres.has(l)), onlyPostgres: postgres.filter((l) => !inSqlite.has(l)) };
}
