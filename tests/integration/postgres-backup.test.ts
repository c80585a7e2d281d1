/**
 * `candor backup`, `backup --check` and `restore` on PostgreSQL, run as the
 * operator would (the CLI as a child process, CANDOR_DATABASE_URL naming
 * the database): a seeded database is backed up into a file nothing of it
 * can be read from without the key, the check restores it into a scratch
 * database (dropped afterwards, as are ones a crashed check left more than
 * an hour ago) and prints how long it took, and a restore
 * into a second database reproduces every row of every table. A flipped
 * byte, the wrong key, a backup of the other engine, a missing
 * CANDOR_ENCRYPTION_KEY, a role row-level security holds and a target that
 * already has tables are each refused with one line.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_MIGRATIONS } from '../../db/engine/postgres-setup.ts';
import { auditLog } from '../../db/schema-pg/audit.ts';
import { incidents, incidentUpdates } from '../../db/schema-pg/incidents.ts';
import { subscribers } from '../../db/schema-pg/notify.ts';
import { staff } from '../../db/schema-pg/staff.ts';
import { auditKeyring } from '../../src/core/audit/key.ts';
import { entryMac, GENESIS_HASH } from '../../src/core/audit/log.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';
import { ROOT, tempDir } from '../helpers/server.ts';

const KEY_HEX = (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex');
const OTHER_KEY_HEX = 'ab'.repeat(32);
const CANARY = 'Canary outage of the zebra-striped queue';
/** The PostgreSQL migrations this code ships; the newest is the schema a backup names. */
const PG_JOURNAL = (JSON.parse(readFileSync(join(PG_MIGRATIONS, 'meta/_journal.json'), 'utf8')) as { entries: { tag: string }[] }).entries;
const LATEST_PG = PG_JOURNAL.at(-1)?.tag ?? '';

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function candor(args: string[], env: Record<string, string | undefined>, dataDir: string): Promise<CliRun> {
  const full: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dataDir,
    CANDOR_DATA_DIR: dataDir,
    CANDOR_SECRET: TEST_KEYS.secret,
    CANDOR_ENCRYPTION_KEY: KEY_HEX,
  };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete full[name];
    else full[name] = value;
  }
  const child = spawn(process.execPath, ['--max-semi-space-size=4', join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: full,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** A refusal is one line on stderr, without a stack trace. */
function refusal(run: CliRun): string {
  expect(run.code, run.stdout + run.stderr).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).not.toMatch(/\n\s+at /);
  const lines = run.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0] ?? '';
}

/** Every row of every table (and where every sequence stands), read as the superuser, which row security does not hold. */
async function everything(db: TestPostgres): Promise<Record<string, string[]>> {
  const { rows: tables } = await db.superuser.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('public', 'drizzle') ORDER BY 1, 2`,
  );
  const all: Record<string, string[]> = {};
  for (const t of tables) {
    const { rows } = await db.superuser.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${t.schema}"."${t.name}" t`);
    all[`${t.schema}.${t.name}`] = rows.map((r) => r.row).sort();
  }
  const { rows: sequences } = await db.superuser.query<{ name: string; last: string | null }>(
    `SELECT schemaname || '.' || sequencename AS name, last_value::text AS last FROM pg_sequences WHERE schemaname IN ('public', 'drizzle')`,
  );
  all['(sequences)'] = sequences.map((s) => `${s.name}=${s.last}`).sort();
  return all;
}

/** The newest audit entry of a dump made by `everything`, and the dump without it. */
function newestAuditEntry(all: Record<string, string[]>): [Record<string, unknown>, Record<string, string[]>] {
  const rows = (all['public.audit_log'] ?? []).map((row) => [row, JSON.parse(row) as Record<string, unknown>] as const);
  const newest = rows.reduce((a, b) => (Number(b[1].id) > Number(a[1].id) ? b : a));
  return [newest[1], { ...all, 'public.audit_log': rows.filter((r) => r !== newest).map((r) => r[0]) }];
}

describe.skipIf(!TEST_POSTGRES_URL)('candor backup and restore on PostgreSQL', () => {
  let source: TestPostgres;
  let target: TestPostgres;
  let dataDir: string;
  let backupFile: string;
  /** the source's owner, given BYPASSRLS and CREATEDB as the README says a backup role needs */
  let backupUrl: string;
  const onSource = (extra: Record<string, string | undefined> = {}) => ({ CANDOR_DATABASE_URL: backupUrl, ...extra });

  beforeAll(async () => {
    // The target is as an operator makes one to restore into: an empty database its owner owns, whose default
    // privileges give the application role its rights on the tables the owner creates (README, Backups).
    [source, target] = await Promise.all([createTestPostgres(), createTestPostgres({ migrate: false })]);
    await target.owner.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "${target.appRole}";
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "${target.appRole}";
      GRANT USAGE ON SCHEMA public TO "${target.appRole}"`);
    dataDir = tempDir('candor-pg-backup-');
    backupFile = join(dataDir, 'pg.backup');
    await source.superuser.query(`ALTER ROLE "${source.ownerRole}" BYPASSRLS CREATEDB`);
    backupUrl = source.ownerUrl;
    // Seeded as the application would: the app role, in a transaction scoped to trust center 1.
    const db = drizzle({ client: source.app });
    const at = new Date('2025-03-01T09:00:00Z');
    await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT set_config('app.trust_center', '1', true)`);
      const [owner] = await tx
        .insert(staff)
        .values({ email: 'owner@vendor.example', role: 'owner', status: 'active', createdAt: at, updatedAt: at })
        .returning();
      const [incident] = await tx
        .insert(incidents)
        .values({
          kind: 'outage',
          severity: 'major',
          title: CANARY,
          status: 'investigating',
          public: true,
          startedAt: at,
          createdAt: at,
          createdBy: owner?.id,
        })
        .returning();
      for (let i = 0; i < 3; i++) {
        await tx
          .insert(incidentUpdates)
          .values({ incidentId: incident?.id ?? 0, status: 'investigating', body: `update ${i} of the zebra queue`, publishedAt: at });
      }
      for (let i = 0; i < 25; i++) await tx.insert(subscribers).values({ createdAt: at });
      // A keyed chain as Candor seals it (log.ts), so the restore check has a chain to verify. The log is
      // new, so its ids are 1, 2, 3, 4.
      const key = auditKeyring(TEST_KEYS.secret).current;
      let prev = GENESIS_HASH;
      for (let id = 1; id <= 4; id++) {
        const content = {
          id,
          at: at.getTime() + id,
          actorType: 'system',
          actorId: null,
          actorLabel: null,
          ip: null,
          userAgent: 'candor cli',
          action: 'incident.created',
          target: `incident:${incident?.id}`,
          summary: { title: CANARY },
        };
        const hash = entryMac(key, prev, content);
        const [row] = await tx
          .insert(auditLog)
          .values({ ...content, at: new Date(content.at), actorType: 'system', prevHash: prev, hash, keyId: key.id })
          .returning({ id: auditLog.id });
        expect(row?.id).toBe(id);
        prev = hash;
      }
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([source?.drop(), target?.drop()]);
  });

  it('writes a backup nothing of the database can be read from without the key, and records it in the audit log', async () => {
    const run = await candor(['backup', backupFile], onSource(), dataDir);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(`^backup written: .*pg\\.backup \\(.*PostgreSQL, encrypted with key [0-9a-f]{8}, schema ${LATEST_PG}\\)`),
    );
    const recorded = /recorded in the audit log as entry #(\d+)/.exec(run.stdout);
    expect(recorded).not.toBeNull();
    const [entry] = newestAuditEntry(await everything(source));
    expect(entry).toMatchObject({ id: Number(recorded?.[1]), action: 'backup.created', target: 'backup:pg.backup' });
    const bytes = readFileSync(backupFile);
    const [magic, header] = bytes.subarray(0, 600).toString('latin1').split('\n');
    expect(magic).toBe('CANDOR-BACKUP 1');
    expect(JSON.parse(header ?? '{}')).toMatchObject({ engine: 'postgres', migration: { applied: PG_JOURNAL.length } });
    const text = bytes.toString('latin1');
    for (const readable of [
      'PGDMP',
      'audit_log',
      'subscribers',
      'incident_updates',
      'CREATE TABLE',
      'zebra',
      'owner@vendor.example',
      source.database,
    ]) {
      expect(text).not.toContain(readable);
    }
    expect((await import('node:fs')).statSync(backupFile).mode & 0o777).toBe(0o600);
  }, 60_000);

  it('backup --check restores it into a scratch database, compares and prints how long it took; the scratch database is gone', async () => {
    const run = await candor(['backup', '--check', backupFile], onSource(), dataDir);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^restore check passed: .* restored into a scratch PostgreSQL database in \\d+ ms: schema ${LATEST_PG}, row counts match the snapshot, audit chain verified \\(4 entries\\)`,
      ),
    );
    const { rows } = await source.superuser.query(
      `SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1 AND datname LIKE 'candor_restore_check_%'`,
      [source.ownerRole],
    );
    expect(rows).toEqual([]);
  }, 60_000);

  it('backup --check first drops scratch databases a crashed check left more than an hour ago, and only those', async () => {
    const stamp = (ms: number) => new Date(Date.now() - ms).toISOString().replace(/\D/g, '').slice(0, 14);
    const suffix = () => randomBytes(6).toString('hex');
    const stale = `candor_restore_check_${stamp(2 * 3_600_000)}_${suffix()}`;
    const recent = `candor_restore_check_${stamp(10 * 60_000)}_${suffix()}`;
    // Not as a check names them: someone's own database, and one of the form before the time was in the name.
    const others = ['candor_restore_check_keep_me', `candor_restore_check_${suffix()}`];
    const planted = [stale, recent, ...others];
    for (const name of planted) await source.superuser.query(`CREATE DATABASE "${name}" OWNER "${source.ownerRole}"`);
    try {
      const run = await candor(['backup', '--check', backupFile], onSource(), dataDir);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines[0]).toBe(`dropped a scratch database left by a restore check that did not finish: ${stale}`);
      expect(lines[1]).toMatch(/^restore check passed: /);
      expect(lines).toHaveLength(2);
      const { rows } = await source.superuser.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY 1`,
        [planted],
      );
      expect(rows.map((r) => r.datname)).toEqual([recent, ...others].sort());
    } finally {
      for (const name of planted) await source.superuser.query(`DROP DATABASE IF EXISTS "${name}"`);
    }
  }, 60_000);

  it('restore reproduces every row of every table in a second database, as its owner', async () => {
    // The target's owner has neither BYPASSRLS nor CREATEDB: restoring needs neither.
    const run = await candor(['restore', backupFile], { CANDOR_DATABASE_URL: target.ownerUrl }, dataDir);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^restored .* into candor_owner_\w+@127\.0\.0\.1:5432\/candor_test_\w+: row counts and the audit log's newest entry match the snapshot \(4 audit entries\)/,
    );
    expect(run.stdout).toMatch(/audit log verified/i);
    expect(run.stdout).toMatch(/recorded in the audit log as entry #\d+/);
    // Each log ends, after the snapshot's newest entry, with its own record: the backup on the source,
    // the restore on the target (the same id, the next after the snapshot's). The rest is identical.
    const [created, before] = newestAuditEntry(await everything(source));
    const [restored, after] = newestAuditEntry(await everything(target));
    expect(created).toMatchObject({ action: 'backup.created' });
    expect(restored).toMatchObject({ action: 'backup.restored', id: created.id, target: 'backup:pg.backup' });
    // The planner has statistics for what was restored (ANALYZE after pg_restore, which leaves none).
    const { rows: planned } = await target.superuser.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stats WHERE schemaname = 'public' AND tablename = 'subscribers'`,
    );
    expect(Number(planned[0]?.n)).toBeGreaterThan(0);
    expect(after['public.incidents']?.join()).toContain(CANARY);
    expect(after['public.subscribers']).toHaveLength(25);
    expect(after).toEqual(before);
    // Owned by the restoring role, with row-level security forced again.
    const { rows } = await target.superuser.query<{ owner: string; rls: boolean; forced: boolean }>(
      `SELECT relowner::regrole::text AS owner, relrowsecurity AS rls, relforcerowsecurity AS forced FROM pg_class WHERE oid = 'public.audit_log'::regclass`,
    );
    expect(rows[0]).toEqual({ owner: target.ownerRole, rls: true, forced: true });
    // The application role reads its trust center's rows, and only in a transaction scoped to it.
    const app = await target.app.connect();
    try {
      expect((await app.query('SELECT count(*)::int AS n FROM subscribers')).rows[0]?.n).toBe(0);
      await app.query('BEGIN');
      await app.query(`SELECT set_config('app.trust_center', '1', true)`);
      expect((await app.query('SELECT count(*)::int AS n FROM subscribers')).rows[0]?.n).toBe(25);
      await app.query('COMMIT');
    } finally {
      app.release();
    }
  }, 60_000);

  it('refuses to restore over a database that has tables unless --replace, then replaces it', async () => {
    await target.superuser.query(`UPDATE trust_centers SET name = 'changed since' WHERE id = 1`);
    const line = refusal(await candor(['restore', backupFile], { CANDOR_DATABASE_URL: target.ownerUrl }, dataDir));
    expect(line).toMatch(/already has \d+ tables; restoring replaces everything in it: .*restore --replace/);
    expect((await target.superuser.query('SELECT name FROM trust_centers WHERE id = 1')).rows[0]?.name).toBe('changed since');
    const run = await candor(['restore', '--replace', backupFile], { CANDOR_DATABASE_URL: target.ownerUrl }, dataDir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/replacing what it held/);
    const [restored, after] = newestAuditEntry(await everything(target));
    expect(restored).toMatchObject({ action: 'backup.restored', summary: { replacedDatabase: true } });
    expect(after).toEqual(newestAuditEntry(await everything(source))[1]);
  }, 60_000);

  it('a flipped byte fails the check with one line, and restore leaves the target as it was', async () => {
    const damaged = join(dataDir, 'damaged.backup');
    copyFileSync(backupFile, damaged);
    const bytes = readFileSync(damaged);
    const at = bytes.length - 200;
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(damaged, bytes);
    expect(refusal(await candor(['backup', '--check', damaged], onSource(), dataDir))).toMatch(
      /^candor: restore check FAILED: damaged\.backup is (damaged|truncated) or was altered: its content does not authenticate/,
    );
    await target.superuser.query(`UPDATE trust_centers SET name = 'kept' WHERE id = 1`);
    expect(refusal(await candor(['restore', '--replace', damaged], { CANDOR_DATABASE_URL: target.ownerUrl }, dataDir))).toMatch(
      /does not authenticate/,
    );
    expect((await target.superuser.query('SELECT name FROM trust_centers WHERE id = 1')).rows[0]?.name).toBe('kept');
  }, 60_000);

  it('the check fails with one line when the audit chain does not verify with CANDOR_SECRET, and needs the secret', async () => {
    const other = 'another-secret-of-enough-length-for-candor-1234';
    expect(refusal(await candor(['backup', '--check', backupFile], onSource({ CANDOR_SECRET: other }), dataDir))).toMatch(
      /^candor: restore check FAILED: pg\.backup restores an audit log that does not verify/,
    );
    expect(refusal(await candor(['backup', '--check', backupFile], onSource({ CANDOR_SECRET: undefined }), dataDir))).toMatch(
      /^candor: CANDOR_SECRET is not set: on PostgreSQL it comes from the environment/,
    );
  }, 60_000);

  it('the wrong key names the key the backup needs', async () => {
    const header = JSON.parse(readFileSync(backupFile, 'latin1').split('\n')[1] ?? '{}') as { keyId: string };
    const line = refusal(await candor(['backup', '--check', backupFile], onSource({ CANDOR_ENCRYPTION_KEY: OTHER_KEY_HEX }), dataDir));
    expect(line).toContain(`made with encryption key ${header.keyId}`);
    expect(line).toContain('CANDOR_ENCRYPTION_KEY');
  }, 60_000);

  it('refuses a backup of the other engine with one line, both ways', async () => {
    const sqliteDir = tempDir('candor-pg-backup-sqlite-');
    const sqliteBackup = join(sqliteDir, 'sqlite.backup');
    const made = await candor(['backup', sqliteBackup], {}, sqliteDir);
    expect(made.code, made.stderr).toBe(0);
    expect(refusal(await candor(['restore', '--replace', sqliteBackup], { CANDOR_DATABASE_URL: target.ownerUrl }, dataDir))).toMatch(
      /sqlite\.backup is a SQLite backup, but CANDOR_DATABASE_URL names a PostgreSQL server/,
    );
    expect(refusal(await candor(['backup', '--check', sqliteBackup], onSource(), dataDir))).toMatch(/is a SQLite backup/);
    expect(refusal(await candor(['restore', backupFile], {}, sqliteDir))).toMatch(
      /pg\.backup is a PostgreSQL backup, but this installation runs on SQLite \(CANDOR_DATABASE_URL is unset\)/,
    );
    expect(refusal(await candor(['backup', '--check', backupFile], {}, sqliteDir))).toMatch(/is a PostgreSQL backup/);
    expect(existsSync(join(sqliteDir, 'candor.db'))).toBe(true);
  }, 90_000);

  it('on PostgreSQL a missing CANDOR_ENCRYPTION_KEY is one line naming it, even with a secrets.json in the data dir', async () => {
    writeFileSync(join(dataDir, 'secrets.json'), JSON.stringify({ secret: TEST_KEYS.secret, encryptionKey: KEY_HEX, previousKeys: [] }));
    for (const args of [
      ['backup', join(dataDir, 'never.backup')],
      ['backup', '--check', backupFile],
      ['restore', backupFile],
    ]) {
      expect(refusal(await candor(args, onSource({ CANDOR_ENCRYPTION_KEY: undefined }), dataDir))).toMatch(
        /^candor: CANDOR_ENCRYPTION_KEY is not set: on PostgreSQL the encryption key comes from the environment/,
      );
    }
    expect(existsSync(join(dataDir, 'never.backup'))).toBe(false);
  }, 60_000);

  it('refuses to back up as a role row-level security holds, and writes nothing', async () => {
    const file = join(dataDir, 'as-app.backup');
    const line = refusal(await candor(['backup', file], { CANDOR_DATABASE_URL: source.appUrl }, dataDir));
    expect(line).toMatch(/connects as "candor_app_\w+", which row-level security holds.*BYPASSRLS/);
    expect(line).not.toContain(new URL(source.appUrl).password);
    expect(existsSync(file)).toBe(false);
  }, 60_000);
});
