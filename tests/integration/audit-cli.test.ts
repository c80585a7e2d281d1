/**
 * `npm run candor -- audit verify` on a real data dir, against what someone with write access to
 * the database (but not CANDOR_SECRET) can do: the attacks are plain writes past the audit log's
 * triggers. On each engine: SQLite always, the CLI on the data dir's file, the attacker writing the
 * file; PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, the CLI on CANDOR_DATABASE_URL as the
 * application role with the secrets in its environment, the attacker a superuser who disables the
 * triggers. The log is seeded through the product's code and attacked and read through the builder;
 * only the triggers and the id sequence are touched in each engine's own words.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { and, asc, eq, gte } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import { openSqliteDatabase } from '../../db/engine/sqlite.ts';
import type { Database, Tx } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { type AuditInput, entryHash, GENESIS_HASH, recordAudit, writeAudit } from '../../src/core/audit/log.ts';
import { PG_TEST_SECRETS, readRows, writeRows } from '../helpers/engine-server.ts';
import { legacyDatabase } from '../helpers/legacy-audit.ts';
import { createTestPostgres, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { ROOT, tempDir } from '../helpers/server.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = tempDir('candor-audit-cli-');
  dirs.push(d);
  return d;
}

function candor(dir: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, CANDOR_DATA_DIR: dir, CANDOR_PUBLIC_URL: 'http://127.0.0.1:4321', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, lines: result.stdout.trim().split('\n') };
}

/** The data dir's database, writing with the key the CLI derives from the secret it generated there (SQLite). */
function withDatabase<T>(dir: string, use: (db: Db) => T): T {
  const { secret } = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { secret: string };
  const db = bindAuditKeys(openDatabase(join(dir, 'candor.db')), auditKeyring(secret));
  try {
    return use(db);
  } finally {
    db.$client.close();
  }
}

function inTransaction<T>(database: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.transaction((tx) => fn(tx)) : database.transaction((tx) => fn(tx));
}

const owner = { type: 'staff', id: 1, label: 'owner@example.com' } as const;
/** The four entries every case starts from. */
const ENTRIES: [AuditInput, Date][] = [
  [{ actor: owner, action: 'auth.sign_in.succeeded', ip: '127.0.0.1', target: 'staff:1' }, new Date('2025-03-01T09:00:00Z')],
  [{ actor: owner, action: 'staff.invited', target: 'staff:2', summary: { role: 'editor' } }, new Date('2025-03-01T09:05:00Z')],
  [
    { actor: owner, action: 'staff.role_changed', target: 'staff:2', summary: { before: 'editor', after: 'admin' } },
    new Date('2025-03-01T09:10:00Z'),
  ],
  [{ actor: { type: 'system' }, action: 'audit.viewed' }, new Date('2025-03-01T09:15:00Z')],
];

async function seed(database: Database): Promise<void> {
  for (const [input, at] of ENTRIES) await inTransaction(database, (tx) => writeAudit(tx, input, at));
}

/** One case's data: the CLI's data dir and environment, and the database behind them. */
interface AuditWorld {
  dir: string;
  /** besides CANDOR_DATA_DIR: nothing on SQLite; CANDOR_DATABASE_URL and the secrets on PostgreSQL */
  env: Record<string, string>;
  secret: string;
  /** the data as the server sees it, sealing with the CLI's key */
  database: Database;
  /** a handle on the data past the audit log's triggers, as anyone who can write the database has */
  attacker(): Promise<Database>;
  /** sets the audit log's id sequence back, so that the next entry would be `last` + 1 */
  rewindIds(last: number): Promise<void>;
  close(): Promise<void>;
}

interface AuditEngine {
  name: 'sqlite' | 'postgres';
  /** checks the CLI on an empty log, and makes what `world()` starts from */
  prepare(): Promise<void>;
  /** a fresh world whose log holds the four entries */
  world(): Promise<AuditWorld>;
}

const DROP_TRIGGERS = 'DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_delete_only_purged';

function sqliteEngine(): AuditEngine {
  let base = '';
  return {
    name: 'sqlite',
    async prepare() {
      base = dataDir();
      const first = candor(base, ['audit', 'verify']);
      expect(first.stdout.trim()).toBe('audit log verified: 0 entries, chain intact');
      expect(first.code).toBe(0);
      const { secret } = JSON.parse(readFileSync(join(base, 'secrets.json'), 'utf8')) as { secret: string };
      const database = bindAuditKeys(openSqliteDatabase(join(base, 'candor.db')), auditKeyring(secret));
      await seed(database);
      await database.close();
    },
    async world() {
      const dir = dataDir();
      cpSync(base, dir, { recursive: true });
      const { secret } = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { secret: string };
      const database = bindAuditKeys(openSqliteDatabase(join(dir, 'candor.db')), auditKeyring(secret));
      return {
        dir,
        env: {},
        secret,
        database,
        async attacker() {
          database.connection.$client.exec(DROP_TRIGGERS);
          return database;
        },
        async rewindIds(last) {
          database.connection.$client.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'audit_log'").run(last);
        },
        close: () => database.close(),
      };
    },
  };
}

function postgresEngine(): AuditEngine {
  const secret = PG_TEST_SECRETS.CANDOR_SECRET;
  return {
    name: 'postgres',
    async prepare() {
      const pg = await createTestPostgres();
      try {
        const first = candor(dataDir(), ['audit', 'verify'], { ...PG_TEST_SECRETS, CANDOR_DATABASE_URL: pg.appUrl });
        expect(first.stdout.trim()).toBe('audit log verified: 0 entries, chain intact');
        expect(first.code).toBe(0);
      } finally {
        await pg.drop();
      }
    },
    async world() {
      const pg = await createTestPostgres();
      const database = bindAuditKeys(openPostgresDatabase({ url: pg.appUrl }), auditKeyring(secret));
      await seed(database);
      let attacker: Database | undefined;
      return {
        dir: dataDir(),
        env: { ...PG_TEST_SECRETS, CANDOR_DATABASE_URL: pg.appUrl },
        secret,
        database,
        async attacker() {
          await pg.superuser.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
          attacker ??= openPostgresDatabase({ url: pg.superUrl });
          return attacker;
        },
        async rewindIds(last) {
          await pg.superuser.query(`SELECT setval(pg_get_serial_sequence('audit_log', 'id'), $1)`, [last]);
        },
        async close() {
          await attacker?.close();
          await database.close();
          await pg.drop();
        },
      };
    },
  };
}

const auditEngines = (): AuditEngine[] => (TEST_POSTGRES_URL ? [sqliteEngine(), postgresEngine()] : [sqliteEngine()]);

/** The log as stored, in id order. */
function rows(database: Database) {
  return readRows(database, (q) => {
    const a = q.t.auditLog;
    return q.db.select().from(a).where(eq(a.trustCenterId, q.trustCenter)).orderBy(asc(a.id));
  });
}

/**
 * What the old chain allowed: edit an entry, then recompute every hash from it on with the public
 * algorithm (SHA-256 over the previous hash and the content), marking the entries as plain.
 */
async function editAndRecomputePlain(database: Database, id: number, target: string): Promise<void> {
  const all = await rows(database);
  let prev = all.find((r) => r.id === id - 1)?.hash ?? GENESIS_HASH;
  const changes: { id: number; target: string | null; prevHash: string; hash: string }[] = [];
  for (const row of all.filter((r) => r.id >= id)) {
    const edited = row.id === id ? target : row.target;
    const hash = entryHash(prev, {
      id: row.id,
      at: row.at.getTime(),
      actorType: row.actorType,
      actorId: row.actorId,
      actorLabel: row.actorLabel,
      ip: row.ip,
      userAgent: row.userAgent,
      action: row.action,
      target: edited,
      summary: row.summary,
    });
    changes.push({ id: row.id, target: edited, prevHash: prev, hash });
    prev = hash;
  }
  await writeRows(database, async (q) => {
    const a = q.t.auditLog;
    for (const c of changes)
      await q.db
        .update(a)
        .set({ target: c.target, prevHash: c.prevHash, hash: c.hash, keyId: null })
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, c.id)));
  });
}

// Each test runs the CLI once or twice: a few seconds each on a quiet machine, much more on a busy one.
const CLI_TIMEOUT = { timeout: 180_000 };

describe.each(auditEngines())('npm run candor -- audit verify on $name', CLI_TIMEOUT, (engine) => {
  beforeAll(() => engine.prepare(), 180_000);
  const worlds: AuditWorld[] = [];
  afterEach(async () => {
    for (const w of worlds.splice(0)) await w.close();
  });

  /** A world whose log holds four entries, for one test to do its worst on. */
  async function withEntries(): Promise<AuditWorld> {
    const w = await engine.world();
    worlds.push(w);
    return w;
  }

  const run = (w: AuditWorld, args: string[], env: Record<string, string> = {}) => candor(w.dir, args, { ...w.env, ...env });
  const newestMac = async (w: AuditWorld) => (await rows(w.database)).at(-1)?.hash.slice(0, 16);

  it('reports an intact chain, the key that seals it, and an anchor to keep elsewhere', async () => {
    const w = await withEntries();
    const { code, lines, stderr } = run(w, ['audit', 'verify']);
    expect(stderr).toBe('');
    expect(lines[0]).toBe('audit log verified: 4 entries, chain intact');
    expect(lines[1]).toMatch(/^sealed with HMAC-SHA256 under audit key [0-9a-f]{16} \(from CANDOR_SECRET\) from entry #1$/);
    const mac = await newestMac(w);
    expect(lines.slice(2)).toEqual([
      `newest entry: #4 (2025-03-01 09:15:00 UTC, audit.viewed), anchor 4:${mac}`,
      `to notice entries cut from the end later, keep the anchor outside this server and run: audit verify --anchor 4:${mac}`,
    ]);
    expect(code).toBe(0);
  });

  it('names the entry altered behind the triggers’ back: id, time, action and why; exit 1', async () => {
    const w = await withEntries();
    await writeRows(await w.attacker(), async (q) => {
      const a = q.t.auditLog;
      await q.db
        .update(a)
        .set({ summary: { before: 'editor', after: 'viewer' } })
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, 3)));
    });
    const { code, stdout } = run(w, ['audit', 'verify']);
    expect(stdout.trim()).toBe(
      'audit log BROKEN at entry 3 (2025-03-01 09:10:00 UTC, staff.role_changed): its MAC does not match its content: it was changed, or its MAC computed, without the key (2 entries checked before it)',
    );
    expect(code).toBe(1);
  });

  it('catches an edit whose chain was recomputed with the public algorithm, as the plain hash chain allowed', async () => {
    const w = await withEntries();
    await editAndRecomputePlain(await w.attacker(), 3, 'staff:1');
    const { code, stdout } = run(w, ['audit', 'verify']);
    expect(stdout.trim()).toBe(
      'audit log BROKEN at entry 3 (2025-03-01 09:10:00 UTC, staff.role_changed): a plain SHA-256 entry after keyed ones: once the chain is keyed every entry is, so the chain was rewritten from here on by someone without the key (2 entries checked before it)',
    );
    expect(code).toBe(1);
  });

  it('catches the whole log recomputed with the public algorithm: nothing seals it', async () => {
    const w = await withEntries();
    await editAndRecomputePlain(await w.attacker(), 1, 'staff:9');
    const { code, stdout } = run(w, ['audit', 'verify']);
    expect(stdout).toMatch(
      /^audit log NOT SEALED at entry 1 \(2025-03-01 09:00:00 UTC, auth\.sign_in\.succeeded\): 4 plain SHA-256 entries from before the chain was keyed/,
    );
    expect(code).toBe(1);
  });

  it('with another CANDOR_SECRET says the key is not the one, not that the log was tampered with; old secrets verify', async () => {
    const w = await withEntries();
    const other = 'a-different-secret-set-by-mistake-0123456789';
    const wrong = run(w, ['audit', 'verify'], { CANDOR_SECRET: other });
    expect(wrong.stdout.trim()).toMatch(
      /^audit log NOT VERIFIABLE at entry 1 \(2025-03-01 09:00:00 UTC, auth\.sign_in\.succeeded\): sealed with audit key [0-9a-f]{16}, but CANDOR_SECRET gives [0-9a-f]{16}: this is not the secret it was written with, so it cannot be checked \(not a sign of tampering by itself\)\. Set CANDOR_SECRET to that secret, or list it in CANDOR_PREVIOUS_SECRETS; if the secret never changed, the entry was rewritten \(0 entries checked before it\)$/,
    );
    expect(wrong.code).toBe(1);
    // verifying wrote nothing under the wrong key
    expect(await rows(w.database)).toHaveLength(4);
    const previous = run(w, ['audit', 'verify'], {
      CANDOR_SECRET: other,
      CANDOR_PREVIOUS_SECRETS: `unused-older-secret-0123456789abcdef, ${w.secret}`,
    });
    expect(previous.lines.slice(0, 2)).toEqual([
      'audit log verified: 4 entries, chain intact',
      expect.stringMatching(/under audit key [0-9a-f]{16} \(from CANDOR_PREVIOUS_SECRETS\) from entry #1$/),
    ]);
    expect(previous.code).toBe(0);
  });

  it('entries cut from the end with the id sequence rewound: the database alone cannot tell, a kept anchor does', async () => {
    const w = await withEntries();
    const anchor = `4:${await newestMac(w)}`;
    await writeRows(await w.attacker(), async (q) => {
      const a = q.t.auditLog;
      await q.db.delete(a).where(and(eq(a.trustCenterId, q.trustCenter), gte(a.id, 3)));
    });
    await w.rewindIds(2);
    const anchored = run(w, ['audit', 'verify', '--anchor', anchor]);
    expect(anchored.stdout.trim()).toBe(
      'audit log BROKEN at entry #4, recorded elsewhere, is no longer in the log: the newest entries were cut off (2 entries checked before it)',
    );
    expect(anchored.code).toBe(1);
  });

  it('refuses a malformed anchor and stray arguments', async () => {
    const w = await withEntries();
    const bad = run(w, ['audit', 'verify', '--anchor', '4:xyz']);
    expect(bad.stderr.trim()).toBe(
      'candor: --anchor must be ENTRY:MAC as an earlier audit verify printed it (e.g. 4:5d41402abc4b2a76), got "4:xyz"',
    );
    expect(bad.code).toBe(2);
    const stray = run(w, ['audit', 'verify', 'now']);
    expect(stray.stderr).toMatch(/takes no arguments/);
    expect(stray.code).toBe(2);
  });
});

// The plain hash chain is an SQLite-era format: only SQLite data dirs have logs that predate keying.
describe('upgrading a log of the plain hash chain', CLI_TIMEOUT, () => {
  it('is sealed by the first command that opens it after the upgrade (and by no later one), then verifies', () => {
    const dir = dataDir();
    legacyDatabase(dir, 2);
    // the command that applies the upgrade seals the older entries at once: only it may (a planted note seals nothing)
    const first = candor(dir, ['audit', 'verify']);
    expect(first.lines.slice(0, 3)).toEqual([
      'audit log verified: 3 entries, chain intact',
      expect.stringMatching(/^sealed with HMAC-SHA256 under audit key [0-9a-f]{16} \(from CANDOR_SECRET\) from entry #3$/),
      '2 older plain SHA-256 entries before it, sealed by entry #3',
    ]);
    expect(first.code).toBe(0);
    withDatabase(dir, (db) => recordAudit(db, { actor: { type: 'system' }, action: 'staff.created', target: 'staff:1' }, new Date()));
    const after = candor(dir, ['audit', 'verify']);
    expect(after.lines.slice(0, 3)).toEqual([
      'audit log verified: 4 entries, chain intact',
      expect.stringMatching(/^sealed with HMAC-SHA256 under audit key [0-9a-f]{16} \(from CANDOR_SECRET\) from entry #3$/),
      '2 older plain SHA-256 entries before it, sealed by entry #3',
    ]);
    expect(after.code).toBe(0);
    const db = openDatabase(join(dir, 'candor.db'));
    expect(db.$client.prepare('SELECT id, action, summary FROM audit_log WHERE id >= 3').all()).toEqual([
      { id: 3, action: 'audit.chain_keyed', summary: '{"lastPlainId":2}' },
      { id: 4, action: 'staff.created', summary: '{}' },
    ]);
    db.$client.close();
  });
});
