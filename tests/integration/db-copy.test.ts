/**
 * `candor db copy --to postgres://…` moves a SQLite deployment to
 * PostgreSQL: every table and every row arrive unchanged, the identity
 * sequences continue after the copied ids, the audit chain verifies on
 * PostgreSQL with the same CANDOR_SECRET (and catches an entry changed
 * there), and the copy is refused — with nothing written on either side —
 * into a database that is not empty, from a broken audit chain, to a server
 * it cannot reach, and while the server has the SQLite database open.
 *
 * The source is a data dir made as the server makes it (createAppContext:
 * content snapshots, components) and filled through the domain (staff and a
 * session, subscribers, an organisation with a domain and a member, a
 * notification with its deliveries, audit entries with a retention purge
 * and an open repeat window). The tables no domain call here reaches get a
 * row built from the schema, so every table holds at least one row, and a
 * table added later without data here fails the first test.
 */

import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type Column, getTableColumns, getTableName, is, sql } from 'drizzle-orm';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { openPostgresDatabase, type PostgresEngine } from '../../db/engine/postgres.ts';
import { databaseOf, legacyConnection } from '../../db/engine/sqlite.ts';
import { auditLog as pgAuditLog } from '../../db/schema-pg.ts';
import { verifyAuditChainPostgres } from '../../src/core/audit/chain-postgres.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { describeFailure, purgeAudit, recordAudit, verifyAuditChain } from '../../src/core/audit/log.ts';
import { recordRefusal } from '../../src/core/audit/repeats.ts';
import { createLink } from '../../src/core/auth/links.ts';
import { hitLimitNow } from '../../src/core/auth/rate-limit.ts';
import { readConfig } from '../../src/core/config/env.ts';
import { type CopyTable, copyPlan, copyToPostgres } from '../../src/core/database/copy.ts';
import { scheduleJob } from '../../src/core/jobs/jobs.ts';
import { createEmailChallenge } from '../../src/core/subscriptions/challenges.ts';
import { createAppContext } from '../../src/runtime/context.ts';
import { addSubscribers, emailContent } from '../helpers/notify.ts';
import { keepOrganisation } from '../helpers/organisations.ts';
import { enqueueNotification } from '../helpers/outbox-on-connection.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';
import { ROOT, tempDir } from '../helpers/server.ts';
import { newSession, staffMember } from '../helpers/staff.ts';
import { flipLast } from '../helpers/tamper.ts';

const SECRET = 'db-copy-integration-test-secret-long-enough';
const ENCRYPTION_KEY = 'ab'.repeat(32);
const KEYRING = auditKeyring(SECRET);
const DAY = 86_400_000;

function candor(dataDir: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      CANDOR_DATA_DIR: dataDir,
      CANDOR_SECRET: SECRET,
      CANDOR_ENCRYPTION_KEY: ENCRYPTION_KEY,
      CANDOR_PUBLIC_URL: 'http://127.0.0.1:4321',
      ...env,
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `candor …` run without blocking the event loop (a proxy in this process must answer it). */
function candorAsync(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<ReturnType<typeof candor>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        CANDOR_DATA_DIR: dataDir,
        CANDOR_SECRET: SECRET,
        CANDOR_ENCRYPTION_KEY: ENCRYPTION_KEY,
        CANDOR_PUBLIC_URL: 'http://127.0.0.1:4321',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A proxy in front of the test server that asks every client for a cleartext password (as a server with
 * `password` authentication would), records what it is sent, then hands the connection to the real server.
 * The test server trusts 127.0.0.1 and would accept any password, or none; this shows what the client sends.
 */
async function passwordRecordingProxy(upstream: URL): Promise<{ port: number; passwords: string[]; close(): Promise<void> }> {
  const passwords: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    let buffered = Buffer.alloc(0);
    let startup: Buffer | null = null;
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (startup === null) {
        if (buffered.length < 4 || buffered.length < buffered.readInt32BE(0)) return;
        startup = buffered.subarray(0, buffered.readInt32BE(0));
        buffered = buffered.subarray(startup.length);
        // AuthenticationCleartextPassword
        client.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]));
      }
      if (buffered.length < 5 || buffered.length < 1 + buffered.readInt32BE(1)) return;
      const length = buffered.readInt32BE(1);
      // PasswordMessage: 'p', its length, the password and a NUL; anything else is recorded as such.
      passwords.push(buffered[0] === 0x70 ? buffered.subarray(5, length).toString('utf8') : '(no password message)');
      const rest = buffered.subarray(1 + length);
      client.off('data', onData);
      client.pause();
      // The real server (trust) answers the same startup message with AuthenticationOk: the client, which has
      // sent its password, takes that as the answer to it.
      const server = connect(Number(upstream.port || 5432), upstream.hostname, () => {
        server.write(startup ?? Buffer.alloc(0));
        if (rest.length) server.write(rest);
        client.pipe(server).pipe(client);
        client.resume();
      });
      sockets.add(server);
      server.on('error', () => client.destroy());
      client.on('error', () => server.destroy());
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
  return {
    port: address.port,
    passwords,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The owner's URL without its password, and the password for PGPASSWORD, as README says to give them. */
function withoutPassword(target: TestPostgres): { url: string; env: { PGPASSWORD: string } } {
  const url = new URL(target.ownerUrl);
  const password = decodeURIComponent(url.password);
  url.password = '';
  return { url: url.toString(), env: { PGPASSWORD: password } };
}

function openSource(dataDir: string): Db {
  return bindAuditKeys(openDatabase(join(dataDir, 'candor.db')), KEYRING);
}

/** A data dir as the server leaves it, with data in every table. */
async function seedDataDir(): Promise<string> {
  const dataDir = tempDir('candor-db-copy-');
  const env = { CANDOR_DATA_DIR: dataDir, CANDOR_SECRET: SECRET, CANDOR_ENCRYPTION_KEY: ENCRYPTION_KEY };
  const context = await createAppContext(readConfig(env, ROOT), ROOT);
  const { keys } = context;
  const db = legacyConnection(context.database);
  try {
    const now = new Date();
    // Old entries, then a retention purge: the chain now starts at the purge record.
    const old = new Date(now.getTime() - 400 * DAY);
    for (let i = 0; i < 3; i++) recordAudit(db, { actor: { type: 'system' }, action: 'backup.created', summary: { i } }, old);
    expect((await purgeAudit(databaseOf(db), 365, now))?.removed).toBe(3);
    const staffId = staffMember(db, 'owner', { enrolled: true });
    newSession(db, staffId, { mfaVerified: true });
    await context.database.transaction((tx) => createLink(tx, staffId, 'invite', null, now));
    await hitLimitNow(context.database, { bucket: 'sign-in', max: 5, windowMs: 60_000 }, '203.0.113.66', now);
    await context.database.transaction((tx) =>
      scheduleJob(tx, 'housekeeping:test', 'housekeeping', new Date(now.getTime() + DAY), { reason: 'test' }, now),
    );
    recordAudit(db, { actor: { type: 'staff', id: staffId, label: 'owner' }, action: 'staff.created', target: `staff:${staffId}` }, now);
    const recipients = addSubscribers(db, keys, { count: 3, channel: 'email', address: (i) => `person${i}@acme.example` });
    await keepOrganisation(db, 'Acme', { domains: ['acme.example'], recipients: [recipients[0] ?? 0] });
    const sent = await enqueueNotification(
      db,
      { kind: 'test', title: 'Elevated API errors', content: emailContent(), audience: { kind: 'topic', topic: 'incidents' } },
      now,
    );
    expect(sent.deliveries).toBe(3);
    await createEmailChallenge(context.database, SECRET, recipients[1] ?? 0, now);
    // A refusal and its repeat: the first is an entry, the repeat is counted in the open window.
    const refusal = {
      actor: { type: 'anonymous' } as const,
      ip: '203.0.113.66',
      userAgent: 'curl/8.0',
      action: 'auth.sign_in.locked' as const,
      target: `staff:${staffId}`,
      summary: { reason: 'ip' },
    };
    await recordRefusal(databaseOf(db), refusal, now);
    await recordRefusal(databaseOf(db), refusal, new Date(now.getTime() + 1000));
    fillEmptyTables(db);
    expect(await verifyAuditChain(databaseOf(db), KEYRING)).toMatchObject({ ok: true });
  } finally {
    db.$client.close();
  }
  return dataDir;
}

function countRows(db: Db, table: CopyTable): number {
  return db.get<{ n: number }>(sql`SELECT count(*) AS n FROM ${table.sqlite}`)?.n ?? 0;
}

/** One row in every table still empty, built from its columns (parents first, so references point at real rows). */
function fillEmptyTables(db: Db): void {
  let n = 0;
  for (const table of copyPlan()) {
    if (countRows(db, table) > 0) continue;
    const values: Record<string, unknown> = {};
    for (const [key, column] of Object.entries(getTableColumns(table.sqlite))) {
      if (column.primary && column.columnType === 'SQLiteInteger' && key === 'id') continue;
      const parent = referenced(table, column.name);
      if (parent) {
        values[key] = db.get<Record<string, unknown>>(
          sql`SELECT ${sql.identifier(parent.column)} AS v FROM ${sql.identifier(parent.table)} LIMIT 1`,
        )?.v;
        continue;
      }
      if (key === 'trustCenterId') continue;
      values[key] = sample(table.name, column, ++n);
    }
    db.insert(table.sqlite)
      .values(values as never)
      .run();
  }
}

/** The parent a column references, from the schema's foreign keys. */
function referenced(table: CopyTable, column: string): { table: string; column: string } | null {
  for (const fk of getTableConfig(table.pg).foreignKeys) {
    const { columns, foreignColumns, foreignTable } = fk.reference();
    if (columns[0]?.name === column && foreignColumns[0]) return { table: getTableName(foreignTable), column: foreignColumns[0].name };
  }
  return null;
}

function sample(table: string, column: Column, n: number): unknown {
  if (!is(column, SQLiteColumn)) throw new Error(`${table}.${column.name} is not a SQLite column`);
  switch (column.columnType) {
    case 'SQLiteInteger':
      return 100 + n;
    case 'SQLiteReal':
      // a fraction a binary double holds exactly, so both engines give it back equal
      return 2.5 + n;
    case 'SQLiteTimestamp':
      return new Date(Date.UTC(2026, 2, 1, 9, 0, 0, n));
    case 'SQLiteBoolean':
      return true;
    case 'SQLiteTextJson':
      return { n, note: `${table}.${column.name}` };
    case 'SQLiteBlobBuffer':
      return Buffer.from([n % 256, 0, 255]);
    case 'SQLiteText':
      return column.enumValues?.[0] ?? `${table}.${column.name}.${n.toString()}`;
    default:
      throw new Error(`no sample value for ${table}.${column.name} (${column.columnType}): teach sample() about it`);
  }
}

/** A value as comparable JSON: object keys sorted at every depth (jsonb keeps its own order), Dates as ISO strings, bytes as hex. */
function comparable(value: unknown): unknown {
  if (value instanceof Date) return `date:${value.toISOString()}`;
  if (Buffer.isBuffer(value)) return `bytes:${value.toString('hex')}`;
  if (Array.isArray(value)) return value.map(comparable);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, comparable(v)]),
    );
  }
  return value;
}

/** Rows as comparable text, in a stable order. */
function normalised(rows: Record<string, unknown>[]): string[] {
  return rows.map((row) => JSON.stringify(comparable(row))).sort();
}

describe.skipIf(!TEST_POSTGRES_URL)('candor db copy --to postgres://…', () => {
  let dataDir: string;
  let target: TestPostgres;
  let pg: PostgresEngine;
  const plan = copyPlan();
  let copy: ReturnType<typeof candor>;
  let proxy: Awaited<ReturnType<typeof passwordRecordingProxy>>;
  let ownerPassword: string;
  let toUrl: string;

  beforeAll(async () => {
    dataDir = await seedDataDir();
    // Not migrated: the copy migrates it, as the URL's role (the database's owner).
    target = await createTestPostgres({ migrate: false });
    // As README says to: the password in PGPASSWORD, not in --to (where `ps` would show it). Through a proxy
    // that asks for the password, since the test server's trust authentication would take none.
    const owner = new URL(target.ownerUrl);
    ownerPassword = decodeURIComponent(owner.password);
    proxy = await passwordRecordingProxy(owner);
    const withoutPassword = new URL(target.ownerUrl);
    withoutPassword.password = '';
    withoutPassword.port = proxy.port.toString();
    withoutPassword.hostname = '127.0.0.1';
    toUrl = withoutPassword.toString();
    // CANDOR_DATABASE_URL plays no part: the copy reads SQLite and writes --to.
    copy = await candorAsync(dataDir, ['db', 'copy', '--to', toUrl], {
      CANDOR_DATABASE_URL: 'postgres://elsewhere.invalid/x',
      PGPASSWORD: ownerPassword,
    });
    pg = openPostgresDatabase({ url: target.ownerUrl, maxConnections: 2 });
  }, 180_000);
  afterAll(async () => {
    await proxy?.close();
    await pg?.close();
    await target?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('takes the password from PGPASSWORD, for every connection it makes, and warns about none in the URL', async () => {
    expect(toUrl).not.toContain(ownerPassword);
    expect(new URL(toUrl).password).toBe('');
    // the migration's connection and the copy's own, at least; each sent PGPASSWORD
    expect(proxy.passwords.length).toBeGreaterThanOrEqual(2);
    expect(new Set(proxy.passwords)).toEqual(new Set([ownerPassword]));
    expect(copy.stderr).not.toMatch(/warning/);
  });

  it('copies every table, found in the schema and the catalogue, each holding rows, with one line per table', async () => {
    expect(copy.stderr).toBe('');
    expect(copy.code).toBe(0);
    const { rows } = await target.owner.query<{ name: string }>(
      `SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1`,
    );
    expect(plan.map((t) => t.name).sort()).toEqual(rows.map((r) => r.name));
    expect(plan.length).toBeGreaterThanOrEqual(39);
    const lines = copy.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(plan.length + 1);
    const source = openSource(dataDir);
    try {
      for (const [i, table] of plan.entries()) {
        const count = countRows(source, table);
        expect(count, `${table.name} has no rows in the source: give it some in seedDataDir`).toBeGreaterThan(0);
        expect(lines[i]).toMatch(new RegExp(`^  ${table.name} +${count.toString()} rows$`));
      }
    } finally {
      source.$client.close();
    }
    // The planner knows what was copied (ANALYZE): a table it took for empty would get nested-loop plans.
    const { rows: stale } = await target.owner.query<{ name: string }>(
      `SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples <= 0 ORDER BY 1`,
    );
    expect(stale.map((r) => r.name)).toEqual([]);
    expect(lines.at(-1)).toMatch(
      /^copied \d+ tables, \d+ rows, from .*candor\.db; audit log verified on PostgreSQL: \d+ entries, ending with the copy's own entry #\d+ \(database\.copied\), anchor \d+:[0-9a-f]{16}$/,
    );
  });

  it('copies every row unchanged: the same content read through drizzle on both engines', async () => {
    const source = openSource(dataDir);
    try {
      await pg.read(async (q) => {
        for (const table of plan) {
          const before = normalised(source.select().from(table.sqlite).all());
          const after = normalised(await q.db.select().from(table.pg));
          expect(after, table.name).toEqual(before);
        }
      });
    } finally {
      source.$client.close();
    }
  });

  it('records the copy as the last entry of both logs, the same entry, and the PostgreSQL chain verifies with the same secret', async () => {
    const source = openSource(dataDir);
    let sqliteResult: Awaited<ReturnType<typeof verifyAuditChain>>;
    try {
      sqliteResult = await verifyAuditChain(databaseOf(source), KEYRING);
    } finally {
      source.$client.close();
    }
    const pgResult = await pg.read((q) => verifyAuditChainPostgres(q, KEYRING));
    expect(sqliteResult).toMatchObject({ ok: true, head: { action: 'database.copied' } });
    expect(pgResult).toEqual(sqliteResult);
    expect(pgResult.ok && pgResult.checked).toBeGreaterThan(5);
    // Another secret cannot vouch for it.
    const other = await pg.read((q) => verifyAuditChainPostgres(q, auditKeyring('a-different-secret-of-sufficient-length')));
    expect(other).toMatchObject({ ok: false, problem: 'unknown-key' });
  });

  it('continues every identity sequence after the copied ids (and after ids SQLite issued and deleted)', async () => {
    const source = openSource(dataDir);
    const issued = new Map(
      (source.$client.prepare('SELECT name, seq FROM sqlite_sequence').all() as { name: string; seq: number }[]).map((r) => [
        r.name,
        r.seq,
      ]),
    );
    const maxIds = new Map(
      plan
        .filter((t) => t.identity)
        .map((t) => [t.name, (source.$client.prepare(`SELECT coalesce(max(id), 0) AS n FROM ${t.name}`).get() as { n: number }).n]),
    );
    for (const table of plan.filter((t) => t.identity)) {
      const { rows } = await target.owner.query<{ last: string | null }>(
        `SELECT pg_sequence_last_value(pg_get_serial_sequence($1, $2)::regclass) AS last`,
        [table.name, table.identity],
      );
      const expected = Math.max(issued.get(table.name) ?? 0, maxIds.get(table.name) ?? 0);
      expect(Number(rows[0]?.last ?? 0), table.name).toBe(expected);
    }
    source.$client.close();
    const subscriberMax = Math.max(issued.get('subscribers') ?? 0, maxIds.get('subscribers') ?? 0);
    const made = await pg.transaction(async (tx) => {
      const { rows } = await tx.db.execute<{ id: number }>(sql`INSERT INTO subscribers (created_at) VALUES (now()) RETURNING id`);
      return rows[0]?.id;
    });
    expect(made).toBe(subscriberMax + 1);
  });

  it('refuses to copy into a database that already holds rows, naming the table; the source log records nothing', async () => {
    const before = entries(dataDir);
    const again = candor(dataDir, ['db', 'copy', '--to', target.ownerUrl]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    // A password in --to: one line saying who could see it, and the copy goes on (here to its refusal).
    expect(again.stderr.trim().split('\n')).toEqual([
      'candor: warning: --to contains a password, which other users of this machine could see in the process list (and your shell history keeps it); next time leave it out of the URL and set PGPASSWORD or use ~/.pgpass',
      expect.stringMatching(/^candor: the target already holds rows in [a-z_]+: copy only into a new, empty database/),
    ]);
    expect(again.stderr).not.toContain(decodeURIComponent(new URL(target.ownerUrl).password));
    expect(entries(dataDir)).toBe(before);
  });

  it('the PostgreSQL verifier names an entry changed there behind the triggers’ back, and entries cut from the end', async () => {
    const client = await target.owner.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.trust_center', '1', true)`);
      const { rows } = await client.query<{ id: string; target: string | null }>(
        `SELECT id, target FROM audit_log WHERE action = 'staff.created'`,
      );
      const row = rows[0];
      if (!row) throw new Error('no staff.created entry');
      await client.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update');
      await client.query('UPDATE audit_log SET target = $1 WHERE id = $2', [flipLast(row.target ?? 'x'), row.id]);
      await client.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update');
      await client.query('COMMIT');
      const result = await pg.read((q) => verifyAuditChainPostgres(q, KEYRING));
      expect(result).toMatchObject({ ok: false, problem: 'altered', firstBrokenId: Number(row.id) });
      if (result.ok) throw new Error('verified');
      expect(describeFailure(result)).toMatch(
        new RegExp(`^entry ${row.id} \\(.* UTC, staff\\.created\\): its MAC does not match its content`),
      );

      // The newest entry deleted: the identity sequence still remembers it.
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.trust_center', '1', true)`);
      await client.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_delete_only_purged');
      const cut = await client.query<{ id: string }>('DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log) RETURNING id');
      await client.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_delete_only_purged');
      // Undo the first edit, so only the cut is left to find.
      await client.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update');
      await client.query('UPDATE audit_log SET target = $1 WHERE id = $2', [row.target, row.id]);
      await client.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update');
      await client.query('COMMIT');
      const cutId = Number(cut.rows[0]?.id);
      expect(await pg.read((q) => verifyAuditChainPostgres(q, KEYRING))).toMatchObject({
        ok: false,
        problem: 'missing',
        firstBrokenId: cutId,
        reason: `entry #${cutId.toString()} is missing (the newest entries were removed)`,
      });
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  });
});

/** How many audit entries the data dir's log holds. */
function entries(dataDir: string): number {
  const db = openSource(dataDir);
  try {
    return (db.$client.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  } finally {
    db.$client.close();
  }
}

describe.skipIf(!TEST_POSTGRES_URL)('candor db copy refuses, and writes nothing on either side', () => {
  let dataDir: string;
  let target: TestPostgres;

  beforeAll(async () => {
    dataDir = tempDir('candor-db-copy-refusals-');
    const db = bindAuditKeys(openDatabase(join(dataDir, 'candor.db')), KEYRING);
    const now = new Date();
    for (let i = 0; i < 4; i++) recordAudit(db, { actor: { type: 'system' }, action: 'backup.created', summary: { i } }, now);
    db.$client.close();
    target = await createTestPostgres({ migrate: false });
  }, 60_000);
  afterAll(async () => {
    await target?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Tables in the target: none, when the copy stopped before migrating it. */
  async function targetTables(): Promise<number> {
    const { rows } = await target.superuser.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'`,
    );
    return Number(rows[0]?.n);
  }

  it('while the server (or anything) has the SQLite database open', async () => {
    const held = openDatabase(join(dataDir, 'candor.db'));
    try {
      const result = candor(dataDir, ['db', 'copy', '--to', withoutPassword(target).url], withoutPassword(target).env);
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toMatch(/^candor: .*candor\.db is in use: stop the server \(and any `candor worker`\) before copying$/);
    } finally {
      held.$client.close();
    }
    expect(await targetTables()).toBe(0);
  });

  it('to a server it cannot reach: one line naming --to, never the password', async () => {
    const result = candor(dataDir, ['db', 'copy', '--to', 'postgres://someone:hunter2-very-secret@127.0.0.1:1/candor']);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^candor: warning: --to contains a password/);
    expect(lines[1]).toMatch(/^candor: --to: cannot reach PostgreSQL at someone@127\.0\.0\.1:1\/candor/);
    expect(result.stderr).not.toContain('hunter2');
    expect(entries(dataDir)).toBe(4);
  });

  it('without --to, or with a URL that is not PostgreSQL', async () => {
    expect(candor(dataDir, ['db', 'copy'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^candor: db copy needs --to postgres:\/\//),
    });
    const mysql = candor(dataDir, ['db', 'copy', '--to', 'mysql://root:pw@db/x']);
    expect(mysql.code).toBe(2);
    expect(mysql.stderr).toMatch(/^candor: --to must start with postgres:\/\/ or postgresql:\/\//);
    expect(mysql.stderr).not.toContain('pw@');
  });

  it('when anything fails midway, both sides are rolled back: the target holds no row, the source log no entry of the copy', async () => {
    const other = await createTestPostgres({ migrate: false });
    try {
      await expect(
        copyToPostgres({
          sqliteFile: join(dataDir, 'candor.db'),
          targetUrl: other.ownerUrl,
          keyring: KEYRING,
          now: () => new Date(),
          batchSize: 2,
          afterRows: async (tx) => {
            // Everything is there at this point, in batches of two...
            expect(await tx.db.$count(pgAuditLog)).toBe(5);
            throw new Error('the power went out');
          },
        }),
      ).rejects.toThrow(/^the copy to .* failed, nothing was copied: the power went out$/);
      const { rows } = await other.owner.query<{ audit: string; trust: string }>(
        `SELECT set_config('app.trust_center', '1', false), (SELECT count(*) FROM audit_log) AS audit, (SELECT count(*) FROM trust_centers) AS trust`,
      );
      // ...and nothing after: the migration's seed is back, the log empty.
      expect(rows[0]).toMatchObject({ audit: '0', trust: '1' });
    } finally {
      await other.drop();
    }
    expect(entries(dataDir)).toBe(4);
  });

  it('from a broken audit chain, naming the entry; the target is not even migrated', async () => {
    const db = openDatabase(join(dataDir, 'candor.db'));
    db.$client.exec('DROP TRIGGER IF EXISTS audit_log_no_update');
    db.$client.prepare(`UPDATE audit_log SET target = 'tampered' WHERE id = 2`).run();
    db.$client.close();
    const result = candor(dataDir, ['db', 'copy', '--to', withoutPassword(target).url], withoutPassword(target).env);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^candor: the audit log of .*candor\.db does not verify, so it is not copied: entry 2 \(.* UTC, backup\.created\): its MAC does not match its content/,
      ),
    ]);
    expect(await targetTables()).toBe(0);
    expect(entries(dataDir)).toBe(4);
  });
});
