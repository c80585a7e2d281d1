/**
 * `candor backup`, `backup --check` and `restore` on PostgreSQL: Debian's
 * `pg_dump` / `pg_restore` (postgresql-client) inside the same encrypted
 * file as SQLite's backups (format.ts, header `"engine":"postgres"`).
 *
 * - Backup: a read-only REPEATABLE READ transaction exports its snapshot;
 *   the row counts and the newest audit entry are read in it, and
 *   `pg_dump --format=custom --no-owner --no-privileges --snapshot=…`
 *   dumps exactly that snapshot. Its stdout is encrypted as it arrives: no
 *   plaintext dump ever touches the disk. The sealed plaintext is one JSON
 *   line (the manifest: those counts and that entry) followed by the
 *   archive.
 * - Restore: every chunk is authenticated first (a file changed or cut
 *   anywhere is refused before the database is touched), then decrypted
 *   again into `pg_restore --clean --if-exists --no-owner --single-transaction`,
 *   so the target ends up either wholly the backup or as it was. A chunk
 *   that fails the second time kills pg_restore before its input closes,
 *   so it never commits. A target that already has tables is only replaced
 *   when asked (`replace`). Then the counts and the newest audit entry are
 *   compared with the manifest, an older schema migrated, and the audit
 *   chain verified when audit keys are given.
 * - Check: the same restore into a scratch database
 *   (`candor_restore_check_<UTC time>_<random>`, dropped whatever happens;
 *   ones a crashed check left, older than an hour by the time in their
 *   name, are dropped first), then
 *   check.ts's steps: a schema this version knows, the counts against the
 *   manifest, migrated to this version, the audit chain verified with the
 *   audit keys (src/core/audit/chain-postgres.ts) and ending with the
 *   manifest's newest entry.
 *
 * Rights: pg_dump of tables under FORCE ROW LEVEL SECURITY needs a role
 * that bypasses it (a superuser, or a role with BYPASSRLS such as the
 * owner given it); any other role would stop at the first table, or with
 * `--enable-row-security` silently dump only the rows of the trust center
 * it is scoped to, so that is refused up front. `pg_restore --no-owner`
 * makes the restoring role the owner of what it creates: restore as the
 * owner role (the one migrations run as). The check creates a database:
 * its role needs CREATEDB.
 *
 * The programs are spawned without a shell; the URL's password reaches
 * them as PGPASSWORD in their environment, never on their command line,
 * and never in a message.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { z } from 'zod';
import type { MigrationState } from '../../../db/client.ts';
import { openPostgresDatabase } from '../../../db/engine/postgres.ts';
import { analyzePostgres, migratePostgres, PG_MIGRATIONS } from '../../../db/engine/postgres-setup.ts';
import { BACKUP_DATABASE_URL, DATABASE_URL, describeDatabaseUrl } from '../../../db/engine/url.ts';
import { verifyAuditChainPostgres } from '../audit/chain-postgres.ts';
import { type AuditKeyring, bindAuditKeys } from '../audit/key.ts';
import { type AuditEntry, type AuditInput, type AuditVerification, describeFailure, writeAudit } from '../audit/log.ts';
import { ConfigError } from '../config/env.ts';
import { checkTarget, publish } from './backup.ts';
import { type CheckResult, type CheckSteps, runCheck } from './check.ts';
import {
  assertEngine,
  BackupError,
  type BackupHeader,
  backupKey,
  decryptChunks,
  newHeader,
  readHeader,
  writeEncryptedStream,
} from './format.ts';
import { backupSource, COUNTED, countMismatch } from './staging.ts';

/** What the backup says about its own snapshot, sealed with it. */
const manifestSchema = z.strictObject({
  counts: z.record(z.string(), z.number().int().min(0)),
  audit: z.strictObject({
    entries: z.number().int().min(0),
    newest: z.strictObject({ id: z.number().int(), hash: z.string() }).nullable(),
  }),
});
type Manifest = z.infer<typeof manifestSchema>;
const MANIFEST_MAX = 1024 * 1024;

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

// ---------------------------------------------------------------- the programs

/** How pg_dump/pg_restore reach the URL's database: the URL without its password, and the password in their environment. */
function libpq(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password) || u.searchParams.get('password') || '';
  u.password = '';
  u.searchParams.delete('password');
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10' };
  if (password) env.PGPASSWORD = password;
  return { dbname: u.toString(), env };
}

/** `text` on one line, with the URL's password (if any) blanked out. */
function scrub(text: string, url: string): string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    // nothing to hide
  }
  return (password ? text.split(password).join('***') : text).replace(/\s+/g, ' ').trim();
}

/** The first error line a program wrote (or its last line), without the password. */
function toolError(stderr: string, url: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines.find((l) => /\berror:/i.test(l)) ?? lines.at(-1) ?? 'no message';
  return scrub(line, url).replace(/^pg_(dump|restore): (error: )?/, '');
}

/**
 * One connection for one job, closed (and waited for) afterwards. Not a pool: a pool's end() resolves
 * before its connections are gone, and dropping the scratch database would then cut one off under it.
 */
async function withClient<T>(url: string, job: (client: pg.Client) => Promise<T>, setting: string = DATABASE_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  // A connection lost mid-query fails that query, which says so; nothing else listens.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const message = err instanceof Error ? err.message || err.name : String(err);
    throw new ConfigError(setting, `cannot reach PostgreSQL at ${describeDatabaseUrl(url)}: ${scrub(message, url)}`);
  }
  try {
    return await job(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

interface Exit {
  code: number | null;
  error: NodeJS.ErrnoException | null;
}

function run(program: string, args: string[], env: NodeJS.ProcessEnv, stdin: 'pipe' | 'ignore', stdout: 'pipe' | 'ignore') {
  const child = spawn(program, args, { env, stdio: [stdin, stdout, 'pipe'], shell: false });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += chunk.toString('utf8');
  });
  const exit = new Promise<Exit>((settle) => {
    child.once('error', (error: NodeJS.ErrnoException) => settle({ code: null, error }));
    child.once('close', (code) => settle({ code, error: null }));
  });
  return { child, exit, stderr: () => stderr };
}

function missing(program: string, exit: Exit): BackupError | null {
  if (exit.error?.code === 'ENOENT') {
    return new BackupError(
      `${program} was not found: install PostgreSQL's client programs (on Debian: apt-get install postgresql-client), of the server's major version or newer`,
    );
  }
  return exit.error ? new BackupError(`${program} could not be started: ${exit.error.message}`) : null;
}

// ---------------------------------------------------------------- reading a database

function knownMigrations(): { tag: string; when: number }[] {
  const journal = JSON.parse(readFileSync(join(PG_MIGRATIONS, 'meta/_journal.json'), 'utf8')) as {
    entries: { tag: string; when: number }[];
  };
  return journal.entries.map(({ tag, when }) => ({ tag, when }));
}

/** Which PostgreSQL migrations a database has had (drizzle records each by its journal time in drizzle.__drizzle_migrations). */
async function migrationState(db: pg.ClientBase): Promise<MigrationState> {
  const { rows: exists } = await db.query<{ t: string | null }>(`SELECT to_regclass('drizzle.__drizzle_migrations')::text AS t`);
  if (!exists[0]?.t) return { applied: 0, latest: null, latestAt: null };
  const { rows } = await db.query<{ n: string; at: string | null }>(
    'SELECT count(*) AS n, max(created_at) AS at FROM drizzle.__drizzle_migrations',
  );
  const latestAt = rows[0]?.at == null ? null : Number(rows[0].at);
  return { applied: Number(rows[0]?.n ?? 0), latest: knownMigrations().find((m) => m.when === latestAt)?.tag ?? null, latestAt };
}

/** Refuses a backup (or restored copy) whose schema this version cannot run. */
function assertKnownSchema(state: MigrationState, name: string): void {
  if (state.applied === 0) throw new BackupError(`${name} does not hold a Candor database (no migrations recorded)`);
  const newest = knownMigrations().at(-1);
  if (newest && state.latestAt !== null && state.latestAt > newest.when) {
    throw new BackupError(
      `${name} was made by a newer version of Candor (its schema has migrations this version does not know, after ${newest.tag}); upgrade Candor first`,
    );
  }
}

/**
 * Rows per counted table, and the audit log's newest entry, read inside the
 * caller's transaction. Counted one trust center at a time, each with its
 * own `app.trust_center` and an explicit filter, so the totals are right
 * whether or not row-level security holds the role (the owner restoring
 * without BYPASSRLS is held by FORCE; a superuser is not).
 */
async function readTotals(db: pg.ClientBase): Promise<Manifest> {
  const { rows: tables } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
  );
  const present = new Set(tables.map((t) => t.name));
  const counted = COUNTED.filter((t) => present.has(t));
  const counts: Record<string, number> = Object.fromEntries(counted.map((t) => [t, 0]));
  let newest: Manifest['audit']['newest'] = null;
  // trust_centers is not FORCEd: its owner (and anyone bypassing row security) sees every row.
  const centers = present.has('trust_centers')
    ? (await db.query<{ id: number }>('SELECT id FROM public.trust_centers ORDER BY id')).rows.map((r) => r.id)
    : [];
  for (const center of centers) {
    await db.query(`SELECT set_config('app.trust_center', $1, true)`, [String(center)]);
    // The names come from the constant COUNTED, never from input.
    for (const table of counted) {
      const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM public.${quote(table)} WHERE trust_center_id = $1`, [
        center,
      ]);
      counts[table] = (counts[table] ?? 0) + Number(rows[0]?.n ?? 0);
    }
    if (present.has('audit_log')) {
      const { rows } = await db.query<{ id: string; hash: string }>(
        'SELECT id, hash FROM public.audit_log WHERE trust_center_id = $1 ORDER BY id DESC LIMIT 1',
        [center],
      );
      const row = rows[0];
      if (row && (newest === null || Number(row.id) > newest.id)) newest = { id: Number(row.id), hash: row.hash };
    }
  }
  return { counts, audit: { entries: counts.audit_log ?? 0, newest } };
}

/** readTotals in a read-only snapshot of its own. */
function totalsOf(url: string): Promise<Manifest> {
  return withClient(url, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await readTotals(client);
    } finally {
      await client.query('ROLLBACK');
    }
  });
}

/**
 * The audit chain, verified in one read-only snapshot scoped to trust center 1 (the only one today, as
 * `db copy` verifies it; a role that bypasses row security sees every entry anyway).
 */
function verifyChainOf(url: string, keyring: AuditKeyring): Promise<AuditVerification> {
  return withClient(url, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      await client.query(`SELECT set_config('app.trust_center', '1', true)`);
      return await verifyAuditChainPostgres({ db: drizzle({ client }) }, keyring);
    } finally {
      await client.query('ROLLBACK');
    }
  });
}

function stateOf(url: string): Promise<MigrationState> {
  return withClient(url, migrationState);
}

// ---------------------------------------------------------------- backup

export interface PostgresBackupOptions {
  /** CANDOR_DATABASE_URL, as a role that bypasses row-level security */
  url: string;
  /** the setting `url` came from, named in messages; default CANDOR_DATABASE_URL (the server's schedule: CANDOR_BACKUP_DATABASE_URL) */
  setting?: string;
  file: string;
  /** the installation's current encryption key */
  key: Buffer;
  secret: string | undefined;
  now: () => Date;
  signal?: AbortSignal;
}

export interface PostgresBackupResult {
  file: string;
  bytes: number;
  header: BackupHeader;
  counts: Record<string, number>;
}

export async function backupPostgres(options: PostgresBackupOptions): Promise<PostgresBackupResult> {
  const target = resolve(options.file);
  checkTarget(target);
  const where = describeDatabaseUrl(options.url);
  const setting = options.setting ?? DATABASE_URL;
  const partial = join(dirname(target), `.${basename(target)}.partial-${randomBytes(8).toString('hex')}`);
  let published = false;
  try {
    return await withClient(
      options.url,
      async (client) => {
        const { rows: who } = await client.query<{ role: string; bypasses: boolean }>(
          'SELECT current_user AS role, rolsuper OR rolbypassrls AS bypasses FROM pg_roles WHERE rolname = current_user',
        );
        const role = who[0]?.role ?? '?';
        if (!who[0]?.bypasses) {
          throw new BackupError(
            `${setting} connects as "${role}", which row-level security holds, so pg_dump cannot read every trust center's rows: ` +
              'back up as a role with BYPASSRLS (the owner role given it with ALTER ROLE … BYPASSRLS) or as a superuser',
          );
        }
        // The snapshot pg_dump will dump; counted in the same snapshot, so the restore check can compare.
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        try {
          const { rows: snap } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
          const snapshot = snap[0]?.id ?? '';
          const migration = await migrationState(client);
          assertKnownSchema(migration, where);
          const manifest = await readTotals(client);
          const createdAt = options.now();
          const header = newHeader(options.key, options.secret, createdAt, migration, 'postgres');
          const output = await open(partial, 'wx', 0o600);
          let bytes: number;
          try {
            bytes = await dumpInto(options.url, snapshot, manifest, output, options.key, header, options.signal);
            await output.sync();
          } finally {
            await output.close();
          }
          publish(partial, target);
          published = true;
          return { file: target, bytes, header, counts: manifest.counts };
        } finally {
          await client.query('ROLLBACK').catch(() => undefined);
        }
      },
      setting,
    );
  } catch (err) {
    if (options.signal?.aborted && !published) throw new BackupError('interrupted; no backup was written');
    throw err;
  } finally {
    rmSync(partial, { force: true });
  }
}

/** pg_dump's output, after the manifest line, encrypted into `output` as it arrives. */
async function dumpInto(
  url: string,
  snapshot: string,
  manifest: Manifest,
  output: FileHandle,
  key: Buffer,
  header: BackupHeader,
  signal: AbortSignal | undefined,
): Promise<number> {
  const { dbname, env } = libpq(url);
  // --no-privileges is --no-acl: grants name roles of this cluster, which another may not have; the target's own
  // default privileges (or a GRANT after restoring) give the application role its rights.
  const dump = run(
    'pg_dump',
    ['--format=custom', '--no-owner', '--no-privileges', `--snapshot=${snapshot}`, `--dbname=${dbname}`],
    env,
    'ignore',
    'pipe',
  );
  const stdout = dump.child.stdout;
  if (!stdout) throw new BackupError('pg_dump could not be started');
  async function* payload(): AsyncGenerator<Buffer> {
    yield Buffer.from(`${JSON.stringify(manifest)}\n`, 'utf8');
    for await (const piece of stdout as AsyncIterable<Buffer>) yield piece;
  }
  const onAbort = () => dump.child.kill('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const writing = writeEncryptedStream(payload(), output, key, header, signal).catch((err: unknown) => {
      dump.child.kill('SIGKILL');
      throw err;
    });
    const [written, exit] = await Promise.allSettled([writing, dump.exit]);
    const ended = exit.status === 'fulfilled' ? exit.value : { code: null, error: null };
    const notFound = missing('pg_dump', ended);
    if (notFound) throw notFound;
    if (signal?.aborted) throw new BackupError('interrupted; no backup was written');
    if (ended.code !== 0) throw new BackupError(`pg_dump failed on ${describeDatabaseUrl(url)}: ${toolError(dump.stderr(), url)}`);
    if (written.status === 'rejected') throw written.reason;
    return written.value;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------- restore

interface OpenedBackup {
  input: FileHandle;
  source: string;
  name: string;
  read: { header: BackupHeader; raw: Buffer };
  key: Buffer;
}

/** The file, its header (a PostgreSQL backup, of a schema this version knows) and the key it needs. */
async function openBackup(file: string, keys: readonly Buffer[]): Promise<OpenedBackup> {
  const { source, name } = backupSource(file);
  const input = await open(source, 'r');
  try {
    const read = await readHeader(input, name);
    assertEngine(read.header, 'postgres', name);
    const key = backupKey(keys, read.header, name);
    assertKnownSchema(read.header.migration, name);
    return { input, source, name, read, key };
  } catch (err) {
    await input.close();
    throw err;
  }
}

/** The archive pg_restore reads: the decrypted chunks after the manifest line, which is handed to `onManifest`. */
async function* archiveOf(chunks: AsyncIterable<Buffer>, name: string, onManifest: (m: Manifest) => void): AsyncGenerator<Buffer> {
  let head: Buffer | null = Buffer.alloc(0);
  for await (const chunk of chunks) {
    if (head === null) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf(0x0a);
    if (end < 0) {
      if (head.length > MANIFEST_MAX) throw new BackupError(`${name} does not hold a Candor PostgreSQL backup (no manifest)`);
      continue;
    }
    let manifest: Manifest;
    try {
      manifest = manifestSchema.parse(JSON.parse(head.subarray(0, end).toString('utf8')));
    } catch {
      throw new BackupError(`${name} does not hold a Candor PostgreSQL backup (its manifest is not readable)`);
    }
    onManifest(manifest);
    const rest = head.subarray(end + 1);
    head = null;
    if (rest.length) yield rest;
  }
  if (head !== null) throw new BackupError(`${name} does not hold a Candor PostgreSQL backup (no manifest)`);
}

/** Every chunk authenticates (the whole file, before anything is restored); returns the manifest. */
async function authenticate(backup: OpenedBackup, signal: AbortSignal | undefined): Promise<Manifest> {
  let manifest: Manifest | null = null;
  for await (const _ of archiveOf(decryptChunks(backup.input, backup.key, backup.read, backup.name, signal), backup.name, (m) => {
    manifest = m;
  })) {
    // only authenticating
  }
  if (manifest === null) throw new BackupError(`${backup.name} does not hold a Candor PostgreSQL backup (no manifest)`);
  return manifest;
}

/** Decrypts the backup into pg_restore, in one transaction on `url`'s database. */
async function restoreArchive(backup: OpenedBackup, url: string, signal: AbortSignal | undefined): Promise<void> {
  const { dbname, env } = libpq(url);
  const restore = run(
    'pg_restore',
    ['--clean', '--if-exists', '--no-owner', '--no-privileges', '--single-transaction', `--dbname=${dbname}`],
    env,
    'pipe',
    'ignore',
  );
  const stdin = restore.child.stdin;
  if (!stdin) throw new BackupError('pg_restore could not be started');
  const chunks = decryptChunks(backup.input, backup.key, backup.read, backup.name, signal);
  const fed = pipeline(
    Readable.from(
      killOnError(
        archiveOf(chunks, backup.name, () => undefined),
        restore.child,
      ),
    ),
    stdin,
  ).then(
    () => null,
    (err: unknown) => err,
  );
  const [exit, feedError] = await Promise.all([restore.exit, fed]);
  const notFound = missing('pg_restore', exit);
  if (notFound) throw notFound;
  // A chunk that failed (or Ctrl-C) killed pg_restore before its input closed: nothing was committed.
  if (feedError instanceof BackupError) throw feedError;
  if (signal?.aborted) throw new BackupError('interrupted; the database was not changed');
  if (exit.code !== 0) {
    throw new BackupError(
      `pg_restore failed on ${describeDatabaseUrl(url)}, which was left as it was: ${toolError(restore.stderr(), url)}`,
    );
  }
  if (feedError) throw feedError;
}

/** Passes the archive on; if it fails, pg_restore is killed before its input is closed, so it cannot commit what it has. */
async function* killOnError(source: AsyncIterable<Buffer>, child: ChildProcess): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

/** Tables in the database outside PostgreSQL's own schemas. */
function tableCount(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`,
    );
    return Number(rows[0]?.n ?? 0);
  });
}

export interface PostgresRestoreOptions {
  file: string;
  /** the keyring: the current key first, then previous ones */
  keys: readonly Buffer[];
  /** CANDOR_DATABASE_URL, as the role that owns the tables */
  url: string;
  /** replace a database that already has tables (everything in it is dropped) */
  replace?: boolean;
  /** the audit keys (CANDOR_SECRET) to verify the restored chain with; without them it is not verified */
  auditKeys?: AuditKeyring;
  signal?: AbortSignal;
}

export interface PostgresRestoreResult {
  header: BackupHeader;
  /** where it went, without the password */
  database: string;
  /** whether the database had tables that were replaced */
  replaced: boolean;
  migratedFrom: string | null;
  migratedTo: string | null;
  counts: Record<string, number>;
  auditEntries: number;
  /** null when no audit keys were given */
  audit: AuditVerification | null;
}

export async function restorePostgres(options: PostgresRestoreOptions): Promise<PostgresRestoreResult> {
  const database = describeDatabaseUrl(options.url);
  const backup = await openBackup(options.file, options.keys);
  try {
    const tables = await tableCount(options.url);
    if (tables > 0 && !options.replace) {
      throw new BackupError(
        `${database} already has ${tables} tables; restoring replaces everything in it: stop the servers and workers, then run \`restore --replace ${options.file}\``,
      );
    }
    const manifest = await authenticate(backup, options.signal);
    options.signal?.throwIfAborted();
    await restoreArchive(backup, options.url, options.signal);
    const restored = await afterRestore(options.url, backup.name, manifest);
    const audit = options.auditKeys ? await verifyChainOf(options.url, options.auditKeys) : null;
    return { header: backup.read.header, database, replaced: tables > 0, ...restored, audit };
  } catch (err) {
    if (options.signal?.aborted) throw new BackupError('interrupted; the database was not changed');
    throw err;
  } finally {
    await backup.input.close();
  }
}

/**
 * Appends a backup event (events.ts: `backup.created`, `backup.restored`) to the audit chain of the
 * database at `url`, sealed with `keyring`, in a transaction of its own after the work it records: as
 * on SQLite, a snapshot does not hold the entry that records it.
 */
export async function recordOnPostgres(url: string, keyring: AuditKeyring, input: AuditInput, now: Date): Promise<AuditEntry> {
  const database = bindAuditKeys(openPostgresDatabase({ url, maxConnections: 1 }), keyring);
  try {
    return await database.transaction((tx) => writeAudit(tx, input, now));
  } finally {
    await database.close();
  }
}

/** The restored database holds what the snapshot held, then is brought to this version's schema. */
async function afterRestore(url: string, name: string, manifest: Manifest) {
  const before = await stateOf(url);
  assertKnownSchema(before, name);
  const totals = await totalsOf(url);
  const mismatch = countMismatch(name, manifest.counts, totals.counts);
  if (mismatch) throw new BackupError(mismatch);
  checkNewestEntry(name, manifest, totals);
  await migratePostgres(url);
  // pg_restore leaves the planner's statistics empty (postgres-setup.ts `analyzePostgres` says why it matters).
  await analyzePostgres(url);
  const after = await stateOf(url);
  return { migratedFrom: before.latest, migratedTo: after.latest, counts: totals.counts, auditEntries: totals.audit.entries };
}

/** The audit log restored ends with the entry the snapshot ended with (its count is compared with the other tables'). */
function checkNewestEntry(name: string, expected: Manifest, actual: Manifest): void {
  const want = expected.audit.newest;
  const got = actual.audit.newest;
  if (want?.id !== got?.id || want?.hash !== got?.hash) {
    throw new BackupError(
      `${name} restores an audit log whose newest entry (${got ? `#${got.id}` : 'none'}) is not the snapshot's (${want ? `#${want.id}` : 'none'})`,
    );
  }
}

// ---------------------------------------------------------------- the restore check

export interface PostgresCheckOptions {
  file: string;
  keys: readonly Buffer[];
  /** CANDOR_DATABASE_URL, as a role with CREATEDB: the scratch database is made on its server */
  url: string;
  /** the setting `url` came from, named in messages; default CANDOR_DATABASE_URL */
  setting?: string;
  /** the audit keys the installation verifies its chain with (CANDOR_SECRET) */
  auditKeys: AuditKeyring;
  signal?: AbortSignal;
  /** the clock the scratch database's name is stamped with and stale ones are judged by; default the real one */
  now?: () => Date;
  /** one line per stale scratch database dropped; default stdout */
  log?: (line: string) => void;
}

/** A scratch database's name: the UTC time it was made (14 digits) and a random part. */
const SCRATCH_DATABASE = /^candor_restore_check_(\d{14})_[0-9a-f]{12}$/;
/** A scratch database older than this was left by a check that did not finish. */
export const STALE_SCRATCH_MS = 3_600_000;

const scratchStamp = (at: Date) => at.toISOString().replace(/\D/g, '').slice(0, 14);

function stampTime(stamp: string): number {
  const [, y, mo, d, h, mi, se] = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(stamp) ?? [];
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
}

/**
 * Drops the scratch databases crashed checks left: named exactly as a check names them, owned by this role
 * (or one it belongs to), and made more than an hour ago by the time in their name. A check running longer
 * holds a connection to its database, and PostgreSQL refuses to drop a database in use (no FORCE here):
 * that one is left.
 */
async function dropStaleScratchDatabases(client: pg.Client, now: Date, log: (line: string) => void): Promise<void> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT datname AS name FROM pg_database
      WHERE datname LIKE 'candor\\_restore\\_check\\_%' AND pg_has_role(current_user, datdba, 'MEMBER') ORDER BY 1`,
  );
  for (const { name } of rows) {
    const stamp = SCRATCH_DATABASE.exec(name)?.[1];
    if (stamp === undefined || now.getTime() - stampTime(stamp) < STALE_SCRATCH_MS) continue;
    try {
      await client.query(`DROP DATABASE IF EXISTS ${quote(name)}`);
      log(`dropped a scratch database left by a restore check that did not finish: ${name}`);
    } catch (err) {
      // 55006: in use, by a check still running.
      if ((err as { code?: string }).code !== '55006') throw err;
    }
  }
}

export async function checkPostgresBackup(options: PostgresCheckOptions): Promise<CheckResult> {
  const { name } = backupSource(options.file);
  return runCheck(name, postgresSteps(name, options), { signal: options.signal });
}

function postgresSteps(name: string, options: PostgresCheckOptions): CheckSteps {
  const now = options.now ?? (() => new Date());
  const scratchName = `candor_restore_check_${scratchStamp(now())}_${randomBytes(6).toString('hex')}`;
  const scratch = new URL(options.url);
  scratch.pathname = `/${scratchName}`;
  const scratchUrl = scratch.toString();
  let created = false;
  let manifest: Manifest | undefined;
  let restored: Manifest | undefined;
  return {
    async stage() {
      const backup = await openBackup(options.file, options.keys);
      try {
        manifest = await authenticate(backup, options.signal);
        await withClient(
          options.url,
          async (client) => {
            await dropStaleScratchDatabases(client, now(), options.log ?? ((line) => console.log(line)));
            try {
              await client.query(`CREATE DATABASE ${quote(scratchName)}`);
            } catch (err) {
              if ((err as { code?: string }).code === '42501') {
                const { rows } = await client.query<{ role: string }>('SELECT current_user AS role');
                throw new BackupError(
                  `the restore check makes a scratch database, which "${rows[0]?.role ?? '?'}" may not (it lacks CREATEDB): ` +
                    'run it as a role with CREATEDB (ALTER ROLE … CREATEDB)',
                );
              }
              throw err;
            }
          },
          options.setting,
        );
        created = true;
        await restoreArchive(backup, scratchUrl, options.signal);
        const before = await stateOf(scratchUrl);
        assertKnownSchema(before, name);
        return { header: backup.read.header, before, recordedCounts: manifest.counts };
      } finally {
        await backup.input.close();
      }
    },
    async counts() {
      restored = await totalsOf(scratchUrl);
      return restored.counts;
    },
    async migrate() {
      await migratePostgres(scratchUrl);
      return stateOf(scratchUrl);
    },
    async audit() {
      if (!manifest || !restored) throw new BackupError(`${name}: the scratch database was not restored`);
      const audit = await verifyChainOf(scratchUrl, options.auditKeys);
      if (!audit.ok) throw new BackupError(`${name} restores an audit log that does not verify: ${describeFailure(audit)}`);
      checkNewestEntry(name, manifest, restored);
      return { entries: audit.checked };
    },
    async dispose() {
      if (!created) return;
      try {
        await withClient(options.url, (client) => client.query(`DROP DATABASE IF EXISTS ${quote(scratchName)} WITH (FORCE)`));
        created = false;
      } catch (err) {
        throw new BackupError(
          `the scratch database ${scratchName} could not be dropped (${err instanceof Error ? err.message : String(err)}): drop it by hand`,
        );
      }
    },
  };
}

/**
 * What keeps the role at `url` (named by `setting`) from taking the server's daily backup and its
 * restore check, in one line, or null: it must be reachable, bypass row-level security (pg_dump reads
 * every trust center's rows) and have CREATEDB (the check's scratch database). Start-up asks, so a
 * wrong URL is known then rather than at the first backup.
 */
export async function backupRoleProblem(url: string, setting: string): Promise<string | null> {
  try {
    return await withClient(
      url,
      async (client) => {
        const { rows } = await client.query<{ role: string; bypasses: boolean; creates: boolean }>(
          `SELECT current_user AS role, rolsuper OR rolbypassrls AS bypasses, rolsuper OR rolcreatedb AS creates
             FROM pg_roles WHERE rolname = current_user`,
        );
        const row = rows[0];
        const lacks = [row?.bypasses ? null : 'BYPASSRLS', row?.creates ? null : 'CREATEDB'].filter(Boolean);
        if (lacks.length === 0) return null;
        return (
          `${setting} connects as "${row?.role ?? '?'}", which lacks ${lacks.join(' and ')}: the daily backup needs a role that bypasses ` +
          "row-level security and may create the restore check's scratch database (the owner role, given them with ALTER ROLE … BYPASSRLS CREATEDB)"
        );
      },
      setting,
    );
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    return `${setting}: ${scrub(err instanceof Error ? err.message : String(err), url)}`;
  }
}

/** Which database a URL reaches, whatever the route to it (a pooler, another host name): its name and its server's start. */
function identityOf(url: string, setting: string): Promise<{ database: string; server: string }> {
  return withClient(
    url,
    async (client) => {
      const { rows } = await client.query<{ database: string; server: string }>(
        'SELECT current_database() AS database, pg_postmaster_start_time()::text AS server',
      );
      return rows[0] ?? { database: '?', server: '?' };
    },
    setting,
  );
}

/**
 * Null when CANDOR_BACKUP_DATABASE_URL reaches the database CANDOR_DATABASE_URL does; else why not, in
 * one line. A backup of another database would be recorded as this one's: the run refuses it.
 */
export async function otherDatabaseProblem(backupUrl: string, appUrl: string): Promise<string | null> {
  const [backup, app] = await Promise.all([identityOf(backupUrl, BACKUP_DATABASE_URL), identityOf(appUrl, DATABASE_URL)]);
  if (backup.database === app.database && backup.server === app.server) return null;
  const where = backup.server === app.server ? '' : ' on another server';
  return (
    `${BACKUP_DATABASE_URL} reaches database "${backup.database}"${where}, not the one ${DATABASE_URL} names ("${app.database}"): ` +
    'it must name the same database, as the role that may back it up'
  );
}
