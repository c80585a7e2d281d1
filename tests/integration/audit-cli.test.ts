/**
 * `npm run candor -- audit verify` on a real data dir, against what someone
 * with write access to the database file (but not CANDOR_SECRET) can do:
 * the attacks are plain SQL on the file.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { entryHash, GENESIS_HASH, recordAudit } from '../../src/core/audit/log.ts';
import { legacyDatabase } from '../helpers/legacy-audit.ts';
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

/** The data dir's database, writing with the key the CLI derives from the secret it generated there. */
function withDatabase<T>(dir: string, use: (db: Db) => T): T {
  const { secret } = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { secret: string };
  const db = bindAuditKeys(openDatabase(join(dir, 'candor.db')), auditKeyring(secret));
  try {
    return use(db);
  } finally {
    db.$client.close();
  }
}

let base = '';
beforeAll(() => {
  base = dataDir();
  const first = candor(base, ['audit', 'verify']);
  expect(first.stdout.trim()).toBe('audit log verified: 0 entries, chain intact');
  expect(first.code).toBe(0);
  withDatabase(base, (db) => {
    const owner = { type: 'staff', id: 1, label: 'owner@example.com' } as const;
    recordAudit(
      db,
      { actor: owner, action: 'auth.sign_in.succeeded', ip: '127.0.0.1', target: 'staff:1' },
      new Date('2025-03-01T09:00:00Z'),
    );
    recordAudit(
      db,
      { actor: owner, action: 'staff.invited', target: 'staff:2', summary: { role: 'editor' } },
      new Date('2025-03-01T09:05:00Z'),
    );
    recordAudit(
      db,
      { actor: owner, action: 'staff.role_changed', target: 'staff:2', summary: { before: 'editor', after: 'admin' } },
      new Date('2025-03-01T09:10:00Z'),
    );
    recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, new Date('2025-03-01T09:15:00Z'));
  });
});

/** A copy of the data dir whose log holds four entries, for one test to do its worst on. */
function withEntries(): string {
  const dir = dataDir();
  cpSync(base, dir, { recursive: true });
  return dir;
}

interface Row {
  id: number;
  at: number;
  actor_type: string;
  actor_id: number | null;
  actor_label: string | null;
  ip: string | null;
  user_agent: string | null;
  action: string;
  target: string | null;
  summary: string;
  prev_hash: string;
  hash: string;
}

/** Runs `change` on the data dir's database file, as anyone who can write it could. */
function onFile<T>(dir: string, change: (sqlite: Database.Database) => T): T {
  const sqlite = new Database(join(dir, 'candor.db'));
  try {
    sqlite.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_delete_only_purged');
    return change(sqlite);
  } finally {
    sqlite.close();
  }
}

const rows = (sqlite: Database.Database): Row[] => sqlite.prepare('SELECT * FROM audit_log ORDER BY id').all() as Row[];

/**
 * What the old chain allowed: edit an entry, then recompute every hash from it on with the public
 * algorithm (SHA-256 over the previous hash and the content), marking the entries as plain if the
 * schema has a column saying how they are sealed.
 */
function editAndRecomputePlain(sqlite: Database.Database, id: number, target: string): void {
  const keyed = (sqlite.prepare('SELECT name FROM pragma_table_info(?)').all('audit_log') as { name: string }[]).some(
    (c) => c.name === 'key_id',
  );
  const update = sqlite.prepare(`UPDATE audit_log SET target = ?, prev_hash = ?, hash = ?${keyed ? ', key_id = NULL' : ''} WHERE id = ?`);
  let prev = rows(sqlite).find((r) => r.id === id - 1)?.hash ?? GENESIS_HASH;
  for (const row of rows(sqlite).filter((r) => r.id >= id)) {
    const edited = row.id === id ? target : row.target;
    const hash = entryHash(prev, {
      id: row.id,
      at: row.at,
      actorType: row.actor_type,
      actorId: row.actor_id,
      actorLabel: row.actor_label,
      ip: row.ip,
      userAgent: row.user_agent,
      action: row.action,
      target: edited,
      summary: JSON.parse(row.summary),
    });
    update.run(edited, prev, hash, row.id);
    prev = hash;
  }
}

// Each test runs the CLI once or twice: a few seconds each on a quiet machine, much more on a busy one.
const CLI_TIMEOUT = { timeout: 180_000 };

describe('npm run candor -- audit verify', CLI_TIMEOUT, () => {
  it('reports an intact chain, the key that seals it, and an anchor to keep elsewhere', () => {
    const dir = withEntries();
    const { code, lines, stderr } = candor(dir, ['audit', 'verify']);
    expect(stderr).toBe('');
    expect(lines[0]).toBe('audit log verified: 4 entries, chain intact');
    expect(lines[1]).toMatch(/^sealed with HMAC-SHA256 under audit key [0-9a-f]{16} \(from CANDOR_SECRET\) from entry #1$/);
    const mac = onFile(dir, (sqlite) => rows(sqlite).at(-1)?.hash.slice(0, 16));
    expect(lines.slice(2)).toEqual([
      `newest entry: #4 (2025-03-01 09:15:00 UTC, audit.viewed), anchor 4:${mac}`,
      `to notice entries cut from the end later, keep the anchor outside this server and run: audit verify --anchor 4:${mac}`,
    ]);
    expect(code).toBe(0);
  });

  it('names the entry altered behind the triggers’ back: id, time, action and why; exit 1', () => {
    const dir = withEntries();
    onFile(dir, (sqlite) => sqlite.prepare(`UPDATE audit_log SET summary = '{"before":"editor","after":"viewer"}' WHERE id = 3`).run());
    const { code, stdout } = candor(dir, ['audit', 'verify']);
    expect(stdout.trim()).toBe(
      'audit log BROKEN at entry 3 (2025-03-01 09:10:00 UTC, staff.role_changed): its MAC does not match its content: it was changed, or its MAC computed, without the key (2 entries checked before it)',
    );
    expect(code).toBe(1);
  });

  it('catches an edit whose chain was recomputed with the public algorithm, as the plain hash chain allowed', () => {
    const dir = withEntries();
    onFile(dir, (sqlite) => editAndRecomputePlain(sqlite, 3, 'staff:1'));
    const { code, stdout } = candor(dir, ['audit', 'verify']);
    expect(stdout.trim()).toBe(
      'audit log BROKEN at entry 3 (2025-03-01 09:10:00 UTC, staff.role_changed): a plain SHA-256 entry after keyed ones: once the chain is keyed every entry is, so the chain was rewritten from here on by someone without the key (2 entries checked before it)',
    );
    expect(code).toBe(1);
  });

  it('catches the whole log recomputed with the public algorithm: nothing seals it', () => {
    const dir = withEntries();
    onFile(dir, (sqlite) => editAndRecomputePlain(sqlite, 1, 'staff:9'));
    const { code, stdout } = candor(dir, ['audit', 'verify']);
    expect(stdout).toMatch(
      /^audit log NOT SEALED at entry 1 \(2025-03-01 09:00:00 UTC, auth\.sign_in\.succeeded\): 4 plain SHA-256 entries from before the chain was keyed/,
    );
    expect(code).toBe(1);
  });

  it('with another CANDOR_SECRET says the key is not the one, not that the log was tampered with; old secrets verify', () => {
    const dir = withEntries();
    const { secret } = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { secret: string };
    const other = 'a-different-secret-set-by-mistake-0123456789';
    const wrong = candor(dir, ['audit', 'verify'], { CANDOR_SECRET: other });
    expect(wrong.stdout.trim()).toMatch(
      /^audit log NOT VERIFIABLE at entry 1 \(2025-03-01 09:00:00 UTC, auth\.sign_in\.succeeded\): sealed with audit key [0-9a-f]{16}, but CANDOR_SECRET gives [0-9a-f]{16}: this is not the secret it was written with, so it cannot be checked \(not a sign of tampering by itself\)\. Set CANDOR_SECRET to that secret, or list it in CANDOR_PREVIOUS_SECRETS; if the secret never changed, the entry was rewritten \(0 entries checked before it\)$/,
    );
    expect(wrong.code).toBe(1);
    // verifying wrote nothing under the wrong key
    expect(onFile(dir, (sqlite) => rows(sqlite).length)).toBe(4);
    const previous = candor(dir, ['audit', 'verify'], {
      CANDOR_SECRET: other,
      CANDOR_PREVIOUS_SECRETS: `unused-older-secret-0123456789abcdef, ${secret}`,
    });
    expect(previous.lines.slice(0, 2)).toEqual([
      'audit log verified: 4 entries, chain intact',
      expect.stringMatching(/under audit key [0-9a-f]{16} \(from CANDOR_PREVIOUS_SECRETS\) from entry #1$/),
    ]);
    expect(previous.code).toBe(0);
  });

  it('entries cut from the end with the id sequence rewound: the file alone cannot tell, a kept anchor does', () => {
    const dir = withEntries();
    const anchor = `4:${onFile(dir, (sqlite) => rows(sqlite).at(-1)?.hash.slice(0, 16))}`;
    onFile(dir, (sqlite) => {
      sqlite.prepare('DELETE FROM audit_log WHERE id >= 3').run();
      sqlite.prepare("UPDATE sqlite_sequence SET seq = 2 WHERE name = 'audit_log'").run();
    });
    const anchored = candor(dir, ['audit', 'verify', '--anchor', anchor]);
    expect(anchored.stdout.trim()).toBe(
      'audit log BROKEN at entry #4, recorded elsewhere, is no longer in the log: the newest entries were cut off (2 entries checked before it)',
    );
    expect(anchored.code).toBe(1);
  });

  it('refuses a malformed anchor and stray arguments', () => {
    const dir = withEntries();
    const bad = candor(dir, ['audit', 'verify', '--anchor', '4:xyz']);
    expect(bad.stderr.trim()).toBe(
      'candor: --anchor must be ENTRY:MAC as an earlier audit verify printed it (e.g. 4:5d41402abc4b2a76), got "4:xyz"',
    );
    expect(bad.code).toBe(2);
    const stray = candor(dir, ['audit', 'verify', 'now']);
    expect(stray.stderr).toMatch(/takes no arguments/);
    expect(stray.code).toBe(2);
  });
});

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
