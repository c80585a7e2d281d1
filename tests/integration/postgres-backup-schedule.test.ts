/**
 * The daily backup on PostgreSQL, taken by the server (issue 15: "backups on a schedule, on both
 * engines"). Two nodes on one database, each given CANDOR_BACKUP_DATABASE_URL (the owner role with
 * BYPASSRLS and CREATEDB; the nodes themselves connect as the application role), start with the day's
 * backup due: exactly one of them takes it, into the backups folder of its data dir, encrypted; the
 * restore check restores it into a scratch database (dropped afterwards) and the run records that it
 * verified and how long it took; both dashboards show it; and `candor restore` of that file into a
 * fresh database gives the data back with its audit chain. Without the setting, start-up says in one
 * line how to enable it, the dashboard says scheduled backups are not configured, and when none has
 * come for 26 hours staff are told they are overdue. A bad value is one line naming the setting; a
 * role that cannot be reached or lacks a right is named at start, and one reaching another database
 * than CANDOR_DATABASE_URL's is refused (a backup of it would be recorded as this one's).
 * Mirrors tests/integration/backup-schedule.test.ts (SQLite, on a fake clock), here with real servers.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { verifyAuditChain, writeAudit } from '../../src/core/audit/log.ts';
import { backupRoleProblem, otherDatabaseProblem } from '../../src/core/backup/postgres.ts';
import { BACKUP_JOB_KIND, type BackupRun, lastVerifiedRun, plannedBackupJobs } from '../../src/core/backup/runs.ts';
import { type BackupDeps, nextSlot, runScheduledBackup, SCHEDULED_FILE } from '../../src/core/backup/schedule.ts';
import { scheduleJob } from '../../src/core/jobs/jobs.ts';
import type { Keys } from '../../src/core/notify/recipients.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { PG_TEST_SECRETS, readRows } from '../helpers/engine-server.ts';
import { addSubscribersTo } from '../helpers/notify.ts';
import { pageText, until } from '../helpers/page.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';
import { ROOT, type RunningServer, runServerExpectingExit, startServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const KEYS: Keys = { keys: [Buffer.from(PG_TEST_SECRETS.CANDOR_ENCRYPTION_KEY, 'hex')], secret: PG_TEST_SECRETS.CANDOR_SECRET };
const candorLines = (output: string) => output.split('\n').filter((l) => l.startsWith('[candor]'));

/** The test's handle on the server's data, as the application role, sealing audit entries with the server's key. */
const appDatabase = (pg: TestPostgres) =>
  bindAuditKeys(openPostgresDatabase({ url: pg.appUrl, maxConnections: 2 }), auditKeyring(PG_TEST_SECRETS.CANDOR_SECRET));

/** Plans the day's backup for `slot`, as the server's own planning does (schedule.ts), `created` at the given time. */
const planBackupAt = (database: Database, slot: Date, created: Date) =>
  database.transaction((tx) => scheduleJob(tx, `backups:${slot.toISOString()}`, BACKUP_JOB_KIND, slot, { slot: slot.getTime() }, created));

const allRuns = (database: Database): Promise<BackupRun[]> =>
  readRows(database, (q) => q.db.select().from(q.t.backupRuns).where(eq(q.t.backupRuns.trustCenterId, q.trustCenter)));

const backupNotices = (database: Database) =>
  readRows(database, (q) =>
    q.db
      .select({ title: q.t.notifications.title, content: q.t.notifications.content })
      .from(q.t.notifications)
      .where(and(eq(q.t.notifications.trustCenterId, q.trustCenter), eq(q.t.notifications.kind, 'staff-backup'))),
  );

const utc = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

function candor(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', CANDOR_DATA_DIR: tempDir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('CANDOR_BACKUP_DATABASE_URL', () => {
  it('refuses a bad value at start with one line naming the setting, never the password', async () => {
    const { code, output } = await runServerExpectingExit({
      env: {
        ...PG_TEST_SECRETS,
        CANDOR_DATABASE_URL: 'postgres://candor_app@127.0.0.1:1/candor',
        CANDOR_BACKUP_DATABASE_URL: 'mysql://root:hunter2@db.internal/candor',
      },
    });
    expect(code).not.toBe(0);
    expect(candorLines(output)).toEqual([
      '[candor] configuration error: CANDOR_BACKUP_DATABASE_URL must start with postgres:// or postgresql:// (it starts with mysql:), or be unset',
    ]);
    expect(output).not.toContain('hunter2');
    expect(output).not.toMatch(/\n\s+at /);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('the daily backup on PostgreSQL, taken by the server', () => {
  let pg: TestPostgres;
  let target: TestPostgres;
  let database: Database;
  const servers: RunningServer[] = [];
  let ownerToken: string;
  /** the day's slot, a minute ago: due when the servers start */
  const slot = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
  let run: BackupRun;

  beforeAll(async () => {
    [pg, target] = await Promise.all([createTestPostgres(), createTestPostgres({ migrate: false })]);
    // The backup role, as the README has the operator make it: the owner, given BYPASSRLS and CREATEDB.
    await pg.superuser.query(`ALTER ROLE "${pg.ownerRole}" BYPASSRLS CREATEDB`);
    // The restore target as an operator makes one (README, Backups and restore): empty, its owner's, whose default
    // privileges give the application role its rights on what the owner restores.
    await target.owner.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "${target.appRole}";
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "${target.appRole}";
      GRANT USAGE ON SCHEMA public TO "${target.appRole}"`);
    database = appDatabase(pg);
    await addSubscribersTo(database, KEYS, { count: 12, channel: 'email', address: (i) => `reader${i}@customer.example` });
    ownerToken = (await signedInStaffOn(database, 'owner')).token;
    await database.transaction((tx) =>
      writeAudit(tx, { actor: { type: 'system' }, action: 'settings.test_sent', target: 'x' }, new Date()),
    );
    await planBackupAt(database, slot, slot);
    const env = { ...PG_TEST_SECRETS, CANDOR_DATABASE_URL: pg.appUrl, CANDOR_BACKUP_DATABASE_URL: pg.ownerUrl };
    servers.push(...(await Promise.all([startServer({ env }), startServer({ env })])));
  }, 180_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await database?.close();
    await Promise.all([pg?.drop(), target?.drop()]);
  });

  it('is taken once by one of two nodes, encrypted into its data dir, and its restore check recorded with how long it took', async () => {
    await until(async () => (await lastVerifiedRun(database)) !== undefined, 'a verified scheduled backup', 90_000);
    // a moment for a second node, had it taken the day too, to record its run
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const runs = await allRuns(database);
    expect(runs, servers.map((s) => s.output()).join('\n')).toHaveLength(1);
    run = runs[0] as BackupRun;
    expect(run).toMatchObject({ slot, outcome: 'ok', error: null, restoreOutcome: 'ok', restoreError: null });
    expect(run.restoreMs).toEqual(expect.any(Number));
    expect(run.restoreMs as number).toBeGreaterThan(0);
    expect(run.restoreCheckedAt).toBeInstanceOf(Date);
    expect(run.counts).toMatchObject({ subscribers: 12, recipients: 12 });
    // in the backups folder of one node's data dir, and only there
    const file = run.file ?? '';
    const taker = servers.filter((s) => file.startsWith(`${join(s.dataDir, 'backups')}/`));
    expect(taker).toHaveLength(1);
    expect(SCHEDULED_FILE.test(file.split('/').at(-1) ?? '')).toBe(true);
    expect(readFileSync(file).subarray(0, 16).toString()).toBe('CANDOR-BACKUP 1\n');
    expect(readFileSync(file).includes(Buffer.from('reader1@customer.example'))).toBe(false);
    expect(run.bytes).toBe(statSync(file).size);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    for (const other of servers.filter((s) => s !== taker[0])) {
      const folder = join(other.dataDir, 'backups');
      expect(existsSync(folder) ? readdirSync(folder) : []).toEqual([]);
    }
    const log = taker[0]?.output() ?? '';
    expect(log).toContain(
      `[candor] daily backups: taken by this server as ${pg.ownerRole}@127.0.0.1:5432/${pg.database} (CANDOR_BACKUP_DATABASE_URL)`,
    );
    expect(log).toMatch(/\[candor\] restore check passed: .*candor-daily-\d{8}T\d{6}Z\.backup restored and verified in \d+ ms/);
    expect(log).not.toContain('daily backups will fail');
    // recorded in the audit log, by the scheduler
    const created = await readRows(database, (q) =>
      q.db
        .select({ userAgent: q.t.auditLog.userAgent, target: q.t.auditLog.target })
        .from(q.t.auditLog)
        .where(and(eq(q.t.auditLog.trustCenterId, q.trustCenter), eq(q.t.auditLog.action, 'backup.created'))),
    );
    expect(created).toEqual([{ userAgent: 'candor scheduler', target: `backup:${file.split('/').at(-1)}` }]);
    // the scratch database is gone
    const { rows: scratch } = await pg.superuser.query(`SELECT datname FROM pg_database WHERE datname LIKE 'candor\\_restore\\_check\\_%'
        AND datdba = (SELECT oid FROM pg_roles WHERE rolname = '${pg.ownerRole}')`);
    expect(scratch).toEqual([]);
    // the next day is planned
    const next = nextSlot(new Date(), '02:30');
    expect((await plannedBackupJobs(database)).map((j) => j.key)).toContain(`backups:${next.toISOString()}`);
    expect(await backupNotices(database)).toEqual([]);
  }, 120_000);

  it('shows on the dashboard of each node: the last backup and the last verified restore with its time', async () => {
    for (const server of servers) {
      const owner = new ConsoleClient(server.url);
      owner.setCookie('candor_session', ownerToken);
      const page = await owner.get('/console');
      expect(page.status).toBe(200);
      const text = pageText(page.html);
      expect(text).toContain(`Last backup ${utc(run.finishedAt as Date)}`);
      expect(text).toContain(`${(run.file ?? '').split('/').at(-1)}`);
      expect(text).toContain(`Last verified restore ${utc(run.restoreCheckedAt as Date)}, restored in ${run.restoreMs} ms`);
      expect(text).not.toContain('not configured');
      expect(page.html).not.toContain('id="backups-attention"');
    }
  });

  it('on a node without the setting beside them, shows the backups the others take rather than "not configured"', async () => {
    // What the dashboard says comes from the recorded runs, not only from this node's configuration.
    const plain = await startServer({ env: { ...PG_TEST_SECRETS, CANDOR_DATABASE_URL: pg.appUrl } });
    servers.push(plain);
    const owner = new ConsoleClient(plain.url);
    owner.setCookie('candor_session', ownerToken);
    const page = await owner.get('/console');
    expect(page.status).toBe(200);
    const text = pageText(page.html);
    expect(text).toContain(`Last backup ${utc(run.finishedAt as Date)}`);
    expect(text).toMatch(/Schedule daily at \d\d:\d\d UTC, newest \d+ kept/);
    expect(text).not.toContain('not configured');
  }, 90_000);

  it('names at start a backup role that cannot be reached or lacks a right, and refuses one that reaches another database', async () => {
    const setting = 'CANDOR_BACKUP_DATABASE_URL';
    expect(await backupRoleProblem(pg.ownerUrl, setting)).toBeNull();
    expect(await backupRoleProblem(pg.appUrl, setting)).toMatch(
      new RegExp(
        `^CANDOR_BACKUP_DATABASE_URL connects as "${pg.appRole}", which lacks BYPASSRLS and CREATEDB: .*ALTER ROLE … BYPASSRLS CREATEDB`,
      ),
    );
    const unreachable = await backupRoleProblem('postgres://candor_owner:hunter2@127.0.0.1:1/candor', setting);
    expect(unreachable).toMatch(/^CANDOR_BACKUP_DATABASE_URL cannot reach PostgreSQL at candor_owner@127\.0\.0\.1:1\/candor: /);
    expect(unreachable).not.toContain('hunter2');
    expect(await otherDatabaseProblem(pg.ownerUrl, pg.appUrl)).toBeNull();
    expect(await otherDatabaseProblem(target.ownerUrl, pg.appUrl)).toBe(
      `CANDOR_BACKUP_DATABASE_URL reaches database "${target.database}", not the one CANDOR_DATABASE_URL names ("${pg.database}"): ` +
        'it must name the same database, as the role that may back it up',
    );
  });

  it('restores with `candor restore` into a fresh database, which holds the data and a chain that verifies', async () => {
    const restore = await candor(['restore', run.file ?? ''], { ...PG_TEST_SECRETS, CANDOR_DATABASE_URL: target.ownerUrl });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(restore.stdout).toMatch(/audit log verified/i);
    const restored = appDatabase(target);
    try {
      const subscribers = await readRows(restored, (q) =>
        q.db.select({ id: q.t.subscribers.id }).from(q.t.subscribers).where(eq(q.t.subscribers.trustCenterId, q.trustCenter)),
      );
      expect(subscribers).toHaveLength(12);
      const recipients = await readRows(restored, (q) =>
        q.db
          .select({ addressHash: q.t.recipients.addressHash })
          .from(q.t.recipients)
          .where(eq(q.t.recipients.trustCenterId, q.trustCenter)),
      );
      const original = await readRows(database, (q) =>
        q.db
          .select({ addressHash: q.t.recipients.addressHash })
          .from(q.t.recipients)
          .where(eq(q.t.recipients.trustCenterId, q.trustCenter)),
      );
      expect(recipients.map((r) => r.addressHash).sort()).toEqual(original.map((r) => r.addressHash).sort());
      expect(await verifyAuditChain(restored)).toMatchObject({ ok: true });
    } finally {
      await restored.close();
    }
  }, 60_000);

  it('records a backup the role may not take, and one whose restore check fails, as failed runs naming why, and tells staff', async () => {
    const deps: BackupDeps = {
      database,
      backupUrl: pg.appUrl,
      appUrl: pg.appUrl,
      dataDir: tempDir('candor-pg-schedule-'),
      policy: { enabled: true, time: '02:30', keep: 14, directory: 'backups' },
      keys: KEYS.keys,
      secret: KEYS.secret,
      auditKeys: auditKeyring(KEYS.secret),
      staff: { keys: KEYS, staffSlack: null, publicUrl: new URL('https://trust.example/') },
      now: () => new Date(),
      log: () => undefined,
    };
    // the application role: row-level security holds it, so pg_dump could not read every row
    const refused = await runScheduledBackup(deps, new Date('2020-01-01T02:30:00Z'));
    expect(refused).toMatchObject({ outcome: 'failed', restoreOutcome: null });
    expect(refused?.error).toMatch(new RegExp(`^CANDOR_BACKUP_DATABASE_URL connects as "${pg.appRole}", which row-level security holds`));
    // the owner, but the file is damaged between writing and checking
    const damaged = await runScheduledBackup(
      {
        ...deps,
        backupUrl: pg.ownerUrl,
        afterWrite: (file) => {
          const fd = openSync(file, 'r+');
          const middle = Math.floor(statSync(file).size / 2);
          writeSync(fd, Buffer.from([(readFileSync(file)[middle] ?? 0) ^ 0x40]), 0, 1, middle);
          closeSync(fd);
        },
      },
      new Date('2020-01-02T02:30:00Z'),
    );
    expect(damaged).toMatchObject({ outcome: 'ok', restoreOutcome: 'failed' });
    expect(damaged?.restoreError).toMatch(
      /^candor-daily-\d{8}T\d{6}Z\.backup is damaged or was altered: its content does not authenticate/,
    );
    expect(damaged?.restoreMs).toEqual(expect.any(Number));
    expect((await backupNotices(database)).map((n) => n.title).sort()).toEqual(['Backup failed', 'Backup restore check failed']);
    // the newest verified backup is still the servers' one
    expect((await lastVerifiedRun(database))?.id).toBe(run.id);
  }, 60_000);
});

describe.skipIf(!TEST_POSTGRES_URL)('a server on PostgreSQL without CANDOR_BACKUP_DATABASE_URL', () => {
  let pg: TestPostgres;
  let database: Database;
  let server: RunningServer;
  let owner: ConsoleClient;

  beforeAll(async () => {
    pg = await createTestPostgres();
    database = appDatabase(pg);
    const staff = await signedInStaffOn(database, 'owner');
    // Backups were first planned 27 hours ago and none has been taken since.
    const planned = new Date(Date.now() - 27 * 3_600_000);
    await planBackupAt(database, nextSlot(planned, '02:30'), planned);
    server = await startServer({ env: { ...PG_TEST_SECRETS, CANDOR_DATABASE_URL: pg.appUrl } });
    owner = new ConsoleClient(server.url);
    owner.setCookie('candor_session', staff.token);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await database?.close();
    await pg?.drop();
  });

  it('says at start, in one line, that scheduled backups are not configured and how to enable them', () => {
    const lines = candorLines(server.output()).filter((l) => l.includes('daily backups'));
    expect(lines).toEqual([
      '[candor] daily backups: scheduled backups are not configured: CANDOR_BACKUP_DATABASE_URL is unset, so this server takes no daily backup on PostgreSQL; ' +
        'set it to the owner role given BYPASSRLS and CREATEDB (README, Running on PostgreSQL)',
    ]);
  });

  it('says so on the dashboard, takes no backup, and tells staff once that backups are overdue', async () => {
    await until(async () => (await backupNotices(database)).length > 0, 'the overdue notice', 60_000);
    const page = await owner.get('/console');
    expect(page.status).toBe(200);
    const text = pageText(page.html);
    expect(text).toContain('Scheduled backups are not configured: CANDOR_BACKUP_DATABASE_URL is unset');
    expect(text).toContain('Last backup none yet');
    // overdue: the dashboard asks for attention
    const panel = /<div class="panel" id="backups-attention">([\s\S]*?)<\/div>/.exec(page.html)?.[1] ?? '';
    expect(pageText(panel)).toMatch(/Overdue: no good backup for 27 hours/);
    expect(pageText(panel)).toContain('Scheduled backups are not configured');
    expect(await allRuns(database)).toEqual([]);
    const notices = await backupNotices(database);
    expect(notices.map((n) => n.title)).toEqual(['Backups overdue']);
    expect(JSON.stringify(notices[0]?.content)).toContain('CANDOR_BACKUP_DATABASE_URL is unset');
  }, 90_000);
});
