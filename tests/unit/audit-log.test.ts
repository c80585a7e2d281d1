import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { asc, eq, gte } from 'drizzle-orm';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditActions } from '../../src/core/audit/actions.ts';
import { type AuditKey, auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import {
  type AuditInput,
  entryHash,
  entryMac,
  exportAudit,
  GENESIS_HASH,
  listAudit,
  purgeAudit,
  recordAudit,
  sealAuditChain,
  verifyAuditChain,
  writeAudit,
} from '../../src/core/audit/log.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { legacyDatabase } from '../helpers/legacy-audit.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/server.ts';

const SECRET = 'audit-log-unit-test-secret-of-enough-length';
const KEYRING = auditKeyring(SECRET);
const DAY = 86_400_000;
const T0 = new Date('2025-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY);

const alice = { type: 'staff', id: 1, label: 'alice@example.com' } as const;
const bob = { type: 'staff', id: 2, label: 'bob@example.com' } as const;

const signIn = (overrides: Partial<AuditInput> = {}): AuditInput => ({
  actor: alice,
  ip: '203.0.113.7',
  userAgent: 'Mozilla/5.0',
  action: 'auth.sign_in.succeeded',
  target: 'staff:1',
  ...overrides,
});

/** Writes n entries one day apart, starting at T0. */
function seed(db: Db, n: number): void {
  for (let i = 0; i < n; i++) recordAudit(db, signIn({ summary: { attempt: i + 1 } }), at(i));
}

/** Runs SQL with a trigger out of the way, as someone with file access could. */
function behindTriggers(db: Db, trigger: string, statement: string, ...params: unknown[]): void {
  db.$client.exec(`DROP TRIGGER ${trigger}`);
  db.$client.prepare(statement).run(...params);
}

const rowOf = async (db: Db | Database, id: number) =>
  (await listAudit('$client' in db ? databaseOf(db) : db, { beforeId: id + 1, limit: 1 }))[0];

/** Records one entry in a transaction of its own, on either engine. */
const record = (database: Database, input: AuditInput, now: Date) => database.transaction((tx) => writeAudit(tx, input, now));

/** Writes n entries one day apart, starting at T0, on either engine. */
async function seedOn(database: Database, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await record(database, signIn({ summary: { attempt: i + 1 } }), at(i));
}

/** The entries from `fromId` on, oldest first, as stored. */
const entriesFrom = (database: Database, fromId: number) =>
  readRows(database, (q) => q.db.select().from(q.t.auditLog).where(gte(q.t.auditLog.id, fromId)).orderBy(asc(q.t.auditLog.id)));

let db: Db;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
beforeEach(() => {
  db = bindAuditKeys(openDatabase(':memory:'), KEYRING);
});

/** What verification returns for an intact log of these entries, sealed with the test key from the first. */
const intact = (checked: number) => ({ ok: true, checked });

// The synchronous API on a SQLite connection (db/client.ts): SQLite only.
describe('recording through a SQLite connection', () => {
  it('cannot write through a handle that has no audit key', async () => {
    const unkeyed = openDatabase(':memory:');
    expect(() => recordAudit(unkeyed, signIn(), at(0))).toThrow(/has no audit key/);
    expect(unkeyed.$client.prepare('SELECT count(*) AS n FROM audit_log').get()).toEqual({ n: 0 });
  });
});

interface RawRow {
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
  key_id: string | null;
}

const contentOf = (row: RawRow) => ({
  id: row.id,
  at: row.at,
  actorType: row.actor_type,
  actorId: row.actor_id,
  actorLabel: row.actor_label,
  ip: row.ip,
  userAgent: row.user_agent,
  action: row.action,
  target: row.target,
  summary: JSON.parse(row.summary) as unknown,
});

const rawRows = (db: Db, fromId = 0): RawRow[] =>
  db.$client.prepare('SELECT * FROM audit_log WHERE id >= ? ORDER BY id').all(fromId) as RawRow[];

/**
 * What someone with write access to the file can do: rewrite entries from `fromId` on (after
 * `edit`), each linked to the one before and sealed by `seal` (plain SHA-256, or a MAC under a
 * key of their own), behind the triggers' back.
 */
function rechain(
  db: Db,
  fromId: number,
  seal: (prev: string, row: RawRow) => { hash: string; keyId: string | null },
  edit: (row: RawRow) => RawRow = (row) => row,
): void {
  db.$client.exec('DROP TRIGGER IF EXISTS audit_log_no_update');
  const before = db.$client.prepare('SELECT hash FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT 1').get(fromId) as
    | { hash: string }
    | undefined;
  let prev = before?.hash ?? GENESIS_HASH;
  const update = db.$client.prepare(
    'UPDATE audit_log SET target = ?, summary = ?, action = ?, prev_hash = ?, hash = ?, key_id = ? WHERE id = ?',
  );
  for (const original of rawRows(db, fromId)) {
    const row = { ...edit(original), prev_hash: prev };
    const sealed = seal(prev, row);
    update.run(row.target, row.summary, row.action, prev, sealed.hash, sealed.keyId, row.id);
    prev = sealed.hash;
  }
}

const plainSha256 = (prev: string, row: RawRow) => ({ hash: entryHash(prev, contentOf(row)), keyId: null });
/** The MAC as Candor computes it, but under a key of the writer's choosing, and claiming the key id they choose. */
const underKey =
  (key: AuditKey, keyId = key.id) =>
  (prev: string, row: RawRow) => ({
    hash: entryMac({ ...key, id: keyId }, prev, contentOf(row)),
    keyId,
  });
const retarget = (row: RawRow) => (row.id === 3 ? { ...row, target: 'staff:2' } : row);

/**
 * A log as a version before the keyed chain left it (plain SHA-256, no key id), opened by this
 * version: the opening applies the upgrade migration, which notes the plain entries, and so this
 * handle (and only this one) may seal them.
 */
function legacyDb(n: number): Db {
  const dir = tempDir('candor-audit-legacy-');
  dirs.push(dir);
  legacyDatabase(dir, n, { at: (id) => at(id - 1).getTime(), target: (id) => `legacy:${id}` });
  return bindAuditKeys(openDatabase(join(dir, 'candor.db')), KEYRING);
}

const broken = (id: number, action: string, problem: string, reason: string | RegExp) => ({
  ok: false,
  firstBrokenId: id,
  entry: { id, at: expect.any(Date), action },
  problem,
  reason: typeof reason === 'string' ? reason : expect.stringMatching(reason),
});

// From here to the engine-neutral cases at the end: SQLite only. These cases drop the triggers, rewrite rows
// and rewind sqlite_sequence as someone with the database file can, or open a log of the SQLite era (the
// plain SHA-256 chain and its keyed-chain upgrade); the application role on PostgreSQL can do none of it.
describe('verification catches tampering behind the triggers', () => {
  beforeEach(() => seed(db, 5));

  it('names an altered entry: its id, time, action and why', async () => {
    behindTriggers(db, 'audit_log_no_update', "UPDATE audit_log SET target = 'staff:2' WHERE id = 3");
    expect(await verifyAuditChain(databaseOf(db))).toEqual({
      ok: false,
      checked: 2,
      firstBrokenId: 3,
      entry: { id: 3, at: at(2), action: 'auth.sign_in.succeeded' },
      problem: 'altered',
      reason: 'its MAC does not match its content: it was changed, or its MAC computed, without the key',
    });
  });

  it('names an entry whose summary was altered', async () => {
    behindTriggers(db, 'audit_log_no_update', 'UPDATE audit_log SET summary = ? WHERE id = 4', '{"attempt":40}');
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(broken(4, 'auth.sign_in.succeeded', 'altered', /MAC does not match/));
  });

  it('names a deleted middle entry', async () => {
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id = 3');
    expect(await verifyAuditChain(databaseOf(db))).toEqual({
      ok: false,
      checked: 2,
      firstBrokenId: 3,
      entry: null,
      problem: 'missing',
      reason: 'entry #3 is missing (removed outside a recorded purge)',
    });
  });

  it('names entries cut from the end, even after new entries follow', async () => {
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id >= 4');
    expect(await verifyAuditChain(databaseOf(db))).toEqual({
      ok: false,
      checked: 3,
      firstBrokenId: 4,
      entry: null,
      problem: 'missing',
      reason: 'entries #4 to #5 are missing (the newest entries were removed)',
    });
    expect(recordAudit(db, signIn(), at(9)).id).toBe(6);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 4 });
  });

  it('names the first entries when the oldest were removed without a purge', async () => {
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id <= 2');
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ok: false,
      checked: 0,
      firstBrokenId: 1,
      reason: expect.stringMatching(/#1 to #2 are missing/),
    });
  });

  it('still breaks at the next link when the altered entry gets a forged hash', async () => {
    const original = await rowOf(db, 3);
    if (!original) throw new Error('entry 3 missing');
    const forged = entryHash(original.prevHash, { ...original, at: original.at.getTime(), target: 'staff:2' });
    behindTriggers(db, 'audit_log_no_update', "UPDATE audit_log SET target = 'staff:2', hash = ? WHERE id = 3", forged);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(broken(3, 'auth.sign_in.succeeded', 'altered', /MAC does not match/));
  });
});

describe('the keyed chain against someone who can write the file but does not hold CANDOR_SECRET', () => {
  beforeEach(() => seed(db, 5));
  const attacker = auditKeyring('an attacker who guessed wrong, long enough').current;

  it('edit and recompute the rest as plain SHA-256: refused where the plain entries begin', async () => {
    rechain(db, 3, plainSha256, retarget);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(
      broken(3, 'auth.sign_in.succeeded', 'altered', /^a plain SHA-256 entry after keyed ones/),
    );
  });

  it('edit and recompute the whole log as plain SHA-256: nothing seals it, so it is not vouched for', async () => {
    rechain(db, 1, plainSha256, retarget);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ...broken(1, 'auth.sign_in.succeeded', 'unsealed', /^5 plain SHA-256 entries .* no keyed audit.chain_keyed entry seals them/),
      checked: 5,
    });
  });

  it('edit and recompute with a wrong key, keeping the key id: the MAC does not match', async () => {
    rechain(db, 3, underKey(attacker, KEYRING.current.id), retarget);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(
      broken(3, 'auth.sign_in.succeeded', 'altered', /MAC does not match its content/),
    );
  });

  it('edit and recompute with a wrong key, claiming its id: a change of key no rotation entry records', async () => {
    rechain(db, 3, underKey(attacker), retarget);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(
      broken(3, 'auth.sign_in.succeeded', 'altered', /but not the audit.key_rotated entry that must record such a change/),
    );
  });

  it('edit and recompute with a wrong key behind a forged rotation entry: cannot be vouched for', async () => {
    rechain(db, 3, underKey(attacker), (row) =>
      row.id === 3 ? { ...row, action: 'audit.key_rotated', summary: JSON.stringify({ previousFingerprint: KEYRING.current.id }) } : row,
    );
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(
      broken(3, 'audit.key_rotated', 'unknown-key', /sealed with audit key [0-9a-f]{16}/),
    );
  });

  it('downgrade the untouched tail to plain SHA-256: refused', async () => {
    rechain(db, 4, plainSha256);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ...broken(4, 'auth.sign_in.succeeded', 'altered', /^a plain SHA-256 entry after keyed ones/),
      checked: 3,
    });
  });

  it('reorder two entries: refused at the first one moved', async () => {
    db.$client.exec('DROP TRIGGER audit_log_no_update');
    db.$client.exec(
      'UPDATE audit_log SET id = -2 WHERE id = 2; UPDATE audit_log SET id = 2 WHERE id = 3; UPDATE audit_log SET id = 3 WHERE id = -2',
    );
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ok: false,
      firstBrokenId: 2,
      problem: 'altered',
      reason: expect.stringMatching(/chain link broken/),
    });
  });

  it('reorder and recompute as plain: refused', async () => {
    rechain(db, 2, plainSha256, (row) => ({ ...row, target: row.id === 2 ? 'staff:3' : row.id === 3 ? 'staff:2' : row.target }));
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 2, problem: 'altered' });
  });

  it('truncate: the id sequence betrays it; with the sequence rewound too, only an anchor kept elsewhere does', async () => {
    const ok = await verifyAuditChain(databaseOf(db));
    if (!ok.ok || !ok.head) throw new Error('expected an intact log');
    const anchor = { id: ok.head.id, mac: ok.head.mac.slice(0, 16) };
    expect(await verifyAuditChain(databaseOf(db), KEYRING, { anchor })).toMatchObject({ ok: true, checked: 5 });

    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id >= 4');
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 4, problem: 'missing' });

    db.$client.prepare("UPDATE sqlite_sequence SET seq = 3 WHERE name = 'audit_log'").run();
    // The file alone now looks like an older, intact log: this is the limit the README states.
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true, checked: 3 });
    expect(await verifyAuditChain(databaseOf(db), KEYRING, { anchor })).toEqual({
      ok: false,
      checked: 3,
      firstBrokenId: 5,
      entry: null,
      problem: 'anchor',
      reason: 'entry #5, recorded elsewhere, is no longer in the log: the newest entries were cut off',
    });
  });

  it('an anchor whose entry was rewritten (and the chain after it recomputed by someone with the key) is named', async () => {
    rechain(db, 5, underKey(KEYRING.current), (row) => ({ ...row, target: 'staff:9' }));
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
    expect(await verifyAuditChain(databaseOf(db), KEYRING, { anchor: { id: 5, mac: '0123456789abcdef' } })).toMatchObject(
      broken(5, 'auth.sign_in.succeeded', 'anchor', /^its MAC begins [0-9a-f]{16}, not 0123456789abcdef as recorded/),
    );
  });

  it('forge a purge record to drop the oldest entries: no audit.purged entry records it', async () => {
    const second = await rowOf(db, 2);
    db.$client.exec('DROP TRIGGER audit_log_delete_only_purged');
    db.$client
      .prepare('INSERT INTO audit_purges (at, up_to_id, last_hash, removed) VALUES (?, 2, ?, 2)')
      .run(at(9).getTime(), second?.hash);
    db.$client.prepare('DELETE FROM audit_log WHERE id <= 2').run();
    expect(await verifyAuditChain(databaseOf(db))).toEqual({
      ok: false,
      checked: 3,
      firstBrokenId: 2,
      entry: null,
      problem: 'missing',
      reason:
        "entries up to #2 were removed, but no audit.purged entry in the log records that purge: they were removed behind the triggers' back",
    });
  });

  it('never stores the key, nor the secret it comes from, in the database', async () => {
    const dump =
      JSON.stringify(db.$client.prepare('SELECT * FROM audit_log').all()) +
      JSON.stringify(db.$client.prepare('SELECT * FROM sqlite_master').all());
    expect(dump).toContain(KEYRING.current.id);
    expect(dump).not.toContain(KEYRING.current.key.toString('hex'));
    expect(dump).not.toContain(KEYRING.current.key.toString('base64'));
    expect(dump).not.toContain(SECRET);
  });
});

describe('entries of the plain SHA-256 chain of earlier versions', () => {
  beforeEach(() => {
    db = legacyDb(3);
  });

  it('are checked with the hash earlier versions wrote: SHA-256 over the previous hash and the sorted-key JSON', async () => {
    const content = { id: 7, at: 1_700_000_000_000, actorType: 'staff', actorId: 3, actorLabel: 'a@x.example', ip: null, userAgent: 'UA' };
    const written = `${GENESIS_HASH}\n{"action":"staff.invited","actorId":3,"actorLabel":"a@x.example","actorType":"staff","at":1700000000000,"id":7,"ip":null,"summary":{"a":1,"b":[2]},"target":"staff:4","userAgent":"UA"}`;
    expect(entryHash(GENESIS_HASH, { ...content, action: 'staff.invited', target: 'staff:4', summary: { b: [2], a: 1 } })).toBe(
      createHash('sha256').update(written).digest('hex'),
    );
  });

  it('are not vouched for until a keyed entry seals them', async () => {
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ...broken(1, 'audit.viewed', 'unsealed', /^3 plain SHA-256 entries from before the chain was keyed/),
      checked: 3,
    });
  });

  it('are sealed by an audit.chain_keyed entry before the first keyed one, and verify with it', async () => {
    const entry = recordAudit(db, signIn(), at(5));
    const rows = rawRows(db);
    expect(rows.map((r) => [r.id, r.action, r.key_id])).toEqual([
      [1, 'audit.viewed', null],
      [2, 'audit.viewed', null],
      [3, 'audit.viewed', null],
      [4, 'audit.chain_keyed', KEYRING.current.id],
      [5, 'auth.sign_in.succeeded', KEYRING.current.id],
    ]);
    expect(JSON.parse(rows[3]?.summary ?? '')).toEqual({ lastPlainId: 3 });
    expect(rows[3]?.prev_hash).toBe(rows[2]?.hash);
    expect(entry.prevHash).toBe(rows[3]?.hash);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ok: true,
      checked: 5,
      keys: [{ keyId: KEYRING.current.id, fromId: 4 }],
      plain: { count: 3, sealedBy: 4 },
    });
  });

  it('once sealed, cannot be edited with the whole log recomputed as plain: nothing seals it any more', async () => {
    recordAudit(db, signIn(), at(5));
    rechain(db, 2, plainSha256, (row) => (row.id === 2 ? { ...row, target: 'legacy:forged' } : row));
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 1, problem: 'unsealed' });
  });

  it('a planted upgrade note seals nothing: a keyed log rewritten as plain stays unsealed, in this process or any other', async () => {
    // A log this version wrote (no upgrade when it was opened), rewritten as plain SHA-256 without an
    // entry, renumbered, the id sequence set to match and the migration's note planted behind it.
    const fresh = bindAuditKeys(openDatabase(':memory:'), KEYRING);
    recordAudit(fresh, signIn(), at(0));
    recordAudit(fresh, signIn({ actor: bob, action: 'staff.role_changed', target: 'staff:2', summary: { to: 'owner' } }), at(1));
    recordAudit(fresh, signIn({ action: 'staff.disabled', target: 'staff:3' }), at(2));
    fresh.$client.exec('DROP TRIGGER audit_log_delete_only_purged; DROP TRIGGER audit_log_no_update');
    fresh.$client.exec(`DELETE FROM audit_log WHERE action = 'staff.role_changed'`);
    fresh.$client.exec('UPDATE audit_log SET id = 2 WHERE id = 3');
    rechain(fresh, 1, plainSha256);
    fresh.$client.exec(`UPDATE sqlite_sequence SET seq = 2 WHERE name = 'audit_log'`);
    fresh.$client.exec('INSERT INTO audit_chain_upgrade (last_plain_id) VALUES (2)');
    recordAudit(fresh, signIn(), at(3));
    expect(sealAuditChain(fresh, at(4))).toBeNull();
    expect(rawRows(fresh).map((r) => r.action)).not.toContain('audit.chain_keyed');
    // the keyed entry after the plain ones has no seal before it: named, never "verified"
    expect(await verifyAuditChain(databaseOf(fresh))).toMatchObject(
      broken(3, 'auth.sign_in.succeeded', 'altered', /not the audit\.chain_keyed entry/),
    );

    // The handle that did apply the upgrade sealed once; the same rewrite after that is not sealed either.
    recordAudit(db, signIn(), at(5));
    db.$client.exec('DROP TRIGGER audit_log_delete_only_purged');
    db.$client.exec('DELETE FROM audit_log WHERE id > 3');
    rechain(db, 1, plainSha256, (row) => (row.id === 2 ? { ...row, target: 'legacy:forged' } : row));
    db.$client.exec(`UPDATE sqlite_sequence SET seq = 3 WHERE name = 'audit_log'`);
    db.$client.exec('INSERT INTO audit_chain_upgrade (last_plain_id) VALUES (3)');
    recordAudit(db, signIn(), at(6));
    expect(rawRows(db).filter((r) => r.action === 'audit.chain_keyed')).toEqual([]);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, problem: 'altered' });
  });

  it('once sealed, cannot be edited and recomputed up to the seal either', async () => {
    recordAudit(db, signIn(), at(5));
    db.$client.exec('DROP TRIGGER audit_log_no_update');
    const update = db.$client.prepare('UPDATE audit_log SET target = ?, prev_hash = ?, hash = ? WHERE id = ?');
    let prev = (await rowOf(db, 1))?.hash ?? '';
    for (const row of rawRows(db, 2).filter((r) => r.key_id === null)) {
      const edited = { ...row, target: row.id === 2 ? 'legacy:forged' : row.target };
      const hash = entryHash(prev, contentOf(edited));
      update.run(edited.target, prev, hash, row.id);
      prev = hash;
    }
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(broken(4, 'audit.chain_keyed', 'altered', /chain link broken/));
  });

  it('delete the seal: the gap is named; delete it and renumber: a keyed entry without its seal', async () => {
    recordAudit(db, signIn(), at(5));
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id = 4');
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 4, problem: 'missing' });
    db.$client.exec('DROP TRIGGER audit_log_no_update');
    db.$client.prepare('UPDATE audit_log SET id = 4, prev_hash = ? WHERE id = 5').run((await rowOf(db, 3))?.hash);
    db.$client.prepare("UPDATE sqlite_sequence SET seq = 4 WHERE name = 'audit_log'").run();
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(
      broken(4, 'auth.sign_in.succeeded', 'altered', /right after plain SHA-256 ones, but not the audit.chain_keyed entry/),
    );
  });

  it('delete the seal and everything after it, rewinding the sequence: the plain entries are unsealed again, and stay so', async () => {
    recordAudit(db, signIn(), at(5));
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id >= 4');
    db.$client.prepare("UPDATE sqlite_sequence SET seq = 3 WHERE name = 'audit_log'").run();
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 1, problem: 'unsealed' });
    // Candor seals plain entries once, as the upgrade found them: not again at the next start or write.
    expect(sealAuditChain(db, at(6))).toBeNull();
    recordAudit(db, signIn(), at(6));
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject(
      broken(4, 'auth.sign_in.succeeded', 'altered', /right after plain SHA-256 ones, but not the audit.chain_keyed entry/),
    );
  });

  it('edit a keyed log, recompute it all as plain and drop the seal: it is never sealed again', async () => {
    recordAudit(db, signIn(), at(5));
    recordAudit(db, signIn({ target: 'staff:7' }), at(6));
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id = 4');
    db.$client.exec('DROP TRIGGER audit_log_no_update');
    db.$client.exec('UPDATE audit_log SET id = id - 1 WHERE id > 4');
    db.$client.prepare("UPDATE sqlite_sequence SET seq = 5 WHERE name = 'audit_log'").run();
    rechain(db, 1, plainSha256, (row) => (row.id === 5 ? { ...row, target: 'staff:8' } : row));
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 1, problem: 'unsealed' });
    expect(sealAuditChain(db, at(7))).toBeNull();
    recordAudit(db, signIn(), at(7));
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: false, firstBrokenId: 6, problem: 'altered' });
  });
});

// SQLite only, as above: tampering behind the triggers, and the purge of a SQLite-era plain prefix.
describe('retention purge: tampering and a plain prefix (SQLite)', () => {
  beforeEach(() => seed(db, 10)); // entries 1..10 on days 0..9

  it('notices a tampered first entry after a purge', async () => {
    await purgeAudit(databaseOf(db), 6, at(10));
    behindTriggers(db, 'audit_log_no_update', 'UPDATE audit_log SET prev_hash = ? WHERE id = 5', GENESIS_HASH);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ...broken(
        5,
        'auth.sign_in.succeeded',
        'altered',
        'chain link broken: its previous hash does not match the hash of the last purged entry (#4)',
      ),
      checked: 0,
    });
  });

  it('purges a sealed plain prefix and keeps verifying what remains', async () => {
    const keyed = legacyDb(4); // #1..#4 on days 0..3
    recordAudit(keyed, signIn(), at(6)); // seals the plain entries (#5), then #6
    // cutoff day 3: #1..#3 go, #4 stays plain, sealed by #5; #7 records the purge
    expect(await purgeAudit(databaseOf(keyed), 4, at(7))).toMatchObject({ upToId: 3, entry: { id: 7 } });
    expect(await verifyAuditChain(databaseOf(keyed))).toMatchObject({ ok: true, checked: 4, plain: { count: 1, sealedBy: 5 } });
    // cutoff day 7: the last plain entry and its seal go too
    expect(await purgeAudit(databaseOf(keyed), 1, at(8))).toMatchObject({ upToId: 6 });
    expect(await verifyAuditChain(databaseOf(keyed))).toMatchObject({ ok: true, checked: 2, plain: null });
  });
});

/**
 * What does not depend on the engine, on each (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is
 * set, as the application role under row-level security): a fresh database per test, sealing with KEYRING,
 * written through writeAudit and inspected through listAudit and the builder.
 */
describe.each(enginesUnderTest())('on $name', (engine) => {
  let opened: OpenedEngine | undefined;
  let db: Database;
  beforeEach(async () => {
    opened = await engine.open();
    db = bindAuditKeys(opened.database, KEYRING);
  });
  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });

  describe('recording', () => {
    it('grows a chain that verifies', async () => {
      expect(await verifyAuditChain(db)).toEqual({ ok: true, checked: 0, head: null, keys: [], plain: null });
      const first = await record(db, signIn({ summary: { before: { role: 'viewer' }, after: { role: 'admin' } } }), at(0));
      const second = await record(db, { actor: { type: 'system' }, action: 'audit.viewed' }, at(1));
      const third = await record(db, { actor: { type: 'anonymous' }, action: 'auth.sign_in.failed', ip: '198.51.100.1' }, at(2));
      expect(first).toMatchObject({ id: 1, prevHash: GENESIS_HASH, actorType: 'staff', actorId: 1, actorLabel: 'alice@example.com' });
      expect(second).toMatchObject({ id: 2, prevHash: first.hash, actorType: 'system', actorId: null, summary: {} });
      expect(third).toMatchObject({ id: 3, prevHash: second.hash, actorType: 'anonymous', ip: '198.51.100.1' });
      expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(first.keyId).toBe(KEYRING.current.id);
      expect(await verifyAuditChain(db)).toEqual({
        ok: true,
        checked: 3,
        head: { id: 3, at: at(2), action: 'auth.sign_in.failed', mac: third.hash },
        keys: [{ keyId: KEYRING.current.id, fromId: 1 }],
        plain: null,
      });
      // What was returned is what was stored.
      expect(await rowOf(db, 1)).toEqual(first);
    });

    it('seals the same content the same way whatever the key order, with an HMAC under the derived key', async () => {
      const a = await record(db, signIn({ summary: { x: 1, nested: { b: 2, a: 1 } } }), at(0));
      const content = { ...a, at: a.at.getTime(), summary: { nested: { a: 1, b: 2 }, x: 1 } };
      expect(entryMac(KEYRING.current, GENESIS_HASH, content)).toBe(a.hash);
      // Not the plain hash anyone could compute, nor the MAC under another secret.
      expect(entryHash(GENESIS_HASH, content)).not.toBe(a.hash);
      expect(entryMac(auditKeyring(`${SECRET}-other`).current, GENESIS_HASH, content)).not.toBe(a.hash);
    });

    it('keeps text that SQLite would rewrite or PostgreSQL refuse verifiable, and truncates the user agent', async () => {
      const entry = await record(db, signIn({ userAgent: `${'a'.repeat(511)}😀tail`, target: 'broken \ud800 surrogate' }), at(0));
      expect(entry.userAgent).toBe('a'.repeat(511));
      expect(entry.target).toBe('broken \ufffd surrogate');
      // A lone surrogate in the summary (PostgreSQL's jsonb refuses its escape) is stored, and sealed, as U+FFFD.
      await record(db, signIn({ userAgent: 'u'.repeat(2000), summary: { note: 'lone \udc00', 'odd \ud800 name': true } }), at(1));
      expect((await rowOf(db, 2))?.userAgent).toHaveLength(512);
      expect((await rowOf(db, 2))?.summary).toEqual({ note: 'lone \ufffd', 'odd \ufffd name': true });
      expect(await verifyAuditChain(db)).toMatchObject(intact(2));
    });

    it.each([
      [{ password: 'hunter2' }, 'summary.password'],
      [{ after: { apiKey: 'k' } }, 'summary.after.apiKey'],
      [{ changes: [{ field: 'name' }, { TOTP_Secret: 'x' }] }, 'summary.changes[1].TOTP_Secret'],
      [{ sessionToken: 't' }, 'summary.sessionToken'],
      [{ recoveryCodes: [] }, 'summary.recoveryCodes'],
      [{ passwordHash: 'h' }, 'summary.passwordHash'],
    ])('refuses a summary holding a secret: %o', async (summary, path) => {
      await expect(record(db, signIn({ summary }), at(0))).rejects.toThrow(`the key ${path} looks like one`);
      expect(await listAudit(db)).toEqual([]);
    });

    it('refuses an action it does not know', async () => {
      const input = { ...signIn(), action: 'auth.made_up' } as unknown as AuditInput;
      await expect(record(db, input, at(0))).rejects.toThrow(/unknown audit action/);
    });

    it('lists every action once', async () => {
      expect(new Set(auditActions).size).toBe(auditActions.length);
      expect(auditActions).toContain('audit.purged');
    });
  });

  describe('append-only at the database level', () => {
    beforeEach(() => seedOn(db, 3));

    it('refuses UPDATE', async () => {
      await expect(
        writeRows(db, (q) => q.db.update(q.t.auditLog).set({ target: 'staff:9' }).where(eq(q.t.auditLog.id, 2))),
      ).rejects.toThrow('audit_log is append-only: entries cannot be changed');
    });

    it('refuses DELETE of entries no purge covers', async () => {
      await expect(writeRows(db, (q) => q.db.delete(q.t.auditLog).where(eq(q.t.auditLog.id, 1)))).rejects.toThrow(
        'audit_log is append-only: only entries covered by a recorded purge can be removed',
      );
    });

    it('refuses changes to the purge records', async () => {
      await purgeAudit(db, 1, at(2));
      await expect(writeRows(db, (q) => q.db.delete(q.t.auditPurges))).rejects.toThrow('audit_purges is append-only');
      await expect(writeRows(db, (q) => q.db.update(q.t.auditPurges).set({ upToId: 0 }))).rejects.toThrow('audit_purges is append-only');
    });
  });

  describe('a change of CANDOR_SECRET', () => {
    const next = auditKeyring('the next secret of the installation, long', [SECRET]);

    it('is recorded by an audit.key_rotated entry; old entries verify with the old secret listed as previous', async () => {
      await seedOn(db, 3);
      bindAuditKeys(db, next);
      const entry = await record(db, signIn(), at(4));
      expect((await entriesFrom(db, 4)).map((r) => [r.id, r.action, r.keyId, r.summary])).toEqual([
        [4, 'audit.key_rotated', next.current.id, { previousFingerprint: KEYRING.current.id }],
        [5, 'auth.sign_in.succeeded', next.current.id, {}],
      ]);
      expect(entry.id).toBe(5);
      expect(await verifyAuditChain(db, next)).toMatchObject({
        ok: true,
        checked: 5,
        keys: [
          { keyId: KEYRING.current.id, fromId: 1 },
          { keyId: next.current.id, fromId: 4 },
        ],
      });
    });

    it('without the old secret: says which key is missing, not that anything was tampered with', async () => {
      await seedOn(db, 3);
      bindAuditKeys(db, next);
      await record(db, signIn(), at(4));
      const result = await verifyAuditChain(db, auditKeyring('the next secret of the installation, long'));
      expect(result).toMatchObject(broken(1, 'auth.sign_in.succeeded', 'unknown-key', /not the secret it was written with/));
      expect(result.ok === false && result.reason).toContain(`sealed with audit key ${KEYRING.current.id}`);
      expect(result.ok === false && result.reason).toContain('CANDOR_PREVIOUS_SECRETS');
      expect(result.ok === false && result.reason).not.toMatch(/altered|tamper(ed)? with|does not match/);
    });

    it('verifying with a wrong secret altogether says so at the first entry', async () => {
      await seedOn(db, 2);
      expect(await verifyAuditChain(db, auditKeyring('a wrong secret typed by the operator!'))).toMatchObject(
        broken(1, 'auth.sign_in.succeeded', 'unknown-key', /^sealed with audit key [0-9a-f]{16}, but CANDOR_SECRET gives [0-9a-f]{16}/),
      );
    });
  });

  describe('retention purge', () => {
    beforeEach(() => seedOn(db, 10)); // entries 1..10 on days 0..9

    it('does nothing when no entry is old enough', async () => {
      expect(await purgeAudit(db, 365, at(9))).toBeNull();
      expect(await readRows(db, (q) => q.db.$count(q.t.auditPurges))).toBe(0);
      expect(await verifyAuditChain(db)).toMatchObject(intact(10));
    });

    it('removes old entries, records the purge, and keeps the chain verifiable', async () => {
      const lastRemoved = await rowOf(db, 4);
      // On day 10 with 6 days' retention the cutoff is day 4: entries of days 0..3 go.
      const result = await purgeAudit(db, 6, at(10));
      expect(result).toMatchObject({ upToId: 4, removed: 4, entry: { id: 11, action: 'audit.purged', actorType: 'system' } });
      expect(result?.entry.summary).toEqual({ upToId: 4, removed: 4, retentionDays: 6, cutoff: at(4).toISOString() });
      expect(
        await readRows(db, (q) =>
          q.db
            .select({ upToId: q.t.auditPurges.upToId, lastHash: q.t.auditPurges.lastHash, removed: q.t.auditPurges.removed })
            .from(q.t.auditPurges),
        ),
      ).toEqual([{ upToId: 4, lastHash: lastRemoved?.hash, removed: 4 }]);
      expect((await listAudit(db)).map((e) => e.id)).toEqual([11, 10, 9, 8, 7, 6, 5]);
      expect(await verifyAuditChain(db)).toMatchObject(intact(7));

      const next = await record(db, signIn(), at(11));
      expect(next.prevHash).toBe(result?.entry.hash);
      expect(await verifyAuditChain(db)).toMatchObject(intact(8));

      // A second purge starts from the first one's end: cutoff day 8 takes entries 5..8.
      expect(await purgeAudit(db, 3, at(11))).toMatchObject({ upToId: 8, removed: 4 });
      expect(await verifyAuditChain(db)).toMatchObject(intact(5));
    });

    it('can remove every entry and still chain from the purge', async () => {
      await purgeAudit(db, 1, at(100));
      expect((await listAudit(db)).map((e) => e.action)).toEqual(['audit.purged']);
      expect(await verifyAuditChain(db)).toMatchObject(intact(1));
    });

    it('refuses a retention that is not a whole number of days', async () => {
      await expect(purgeAudit(db, 0, at(10))).rejects.toThrow(/at least 1/);
      await expect(purgeAudit(db, 1.5, at(10))).rejects.toThrow(/whole number/);
    });
  });

  describe('querying', () => {
    beforeEach(async () => {
      await seedOn(db, 5); // alice, sign-ins, days 0..4
      await record(db, signIn({ actor: bob, action: 'staff.role_changed', target: 'staff:1' }), at(5));
      await record(db, signIn({ actor: bob, action: 'auth.sign_out' }), at(6));
      await record(db, { actor: { type: 'anonymous' }, action: 'auth.sign_in.failed' }, at(7));
    });

    it('returns newest first, 100 by default', async () => {
      expect((await listAudit(db)).map((e) => e.id)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
      expect((await listAudit(db))[0]?.at).toEqual(at(7));
    });

    it('filters by actor and action', async () => {
      expect((await listAudit(db, { actorId: 2 })).map((e) => e.action)).toEqual(['auth.sign_out', 'staff.role_changed']);
      expect((await listAudit(db, { action: 'auth.sign_in.failed' })).map((e) => e.id)).toEqual([8]);
      expect(await listAudit(db, { actorId: 1, action: 'auth.sign_out' })).toEqual([]);
    });

    it('filters by a date range, from inclusive and to exclusive', async () => {
      expect((await listAudit(db, { from: at(2), to: at(5) })).map((e) => e.id)).toEqual([5, 4, 3]);
      expect((await listAudit(db, { from: at(6) })).map((e) => e.id)).toEqual([8, 7]);
    });

    it('pages with beforeId and caps the limit', async () => {
      const page1 = await listAudit(db, { limit: 3 });
      expect(page1.map((e) => e.id)).toEqual([8, 7, 6]);
      const page2 = await listAudit(db, { limit: 3, beforeId: page1.at(-1)?.id });
      expect(page2.map((e) => e.id)).toEqual([5, 4, 3]);
      expect((await listAudit(db, { limit: 3, beforeId: 3 })).map((e) => e.id)).toEqual([2, 1]);
      expect(await listAudit(db, { limit: 0 })).toHaveLength(1);

      await db.transaction(async (tx) => {
        for (let i = 0; i < 1100; i++) await writeAudit(tx, { actor: { type: 'system' }, action: 'audit.viewed' }, at(8));
      });
      expect(await listAudit(db, { limit: 5000 })).toHaveLength(1000);
    });
  });

  describe('export', () => {
    const parseCsv = (csv: string): string[][] => {
      // Minimal RFC 4180 reader, enough to check the writer round-trips.
      const rows: string[][] = [];
      let row: string[] = [];
      let cell = '';
      let quoted = false;
      for (let i = 0; i < csv.length; i++) {
        const c = csv[i];
        if (quoted) {
          if (c === '"' && csv[i + 1] === '"') {
            cell += '"';
            i++;
          } else if (c === '"') quoted = false;
          else cell += c;
        } else if (c === '"') quoted = true;
        else if (c === ',') {
          row.push(cell);
          cell = '';
        } else if (c === '\r' && csv[i + 1] === '\n') {
          row.push(cell);
          rows.push(row);
          row = [];
          cell = '';
          i++;
        } else cell += c;
      }
      return rows;
    };

    beforeEach(async () => {
      await record(db, signIn({ target: 'doc "security", v2\nline two' }), at(0));
      await record(
        db,
        signIn({ actor: { type: 'staff', id: 3, label: '=HYPERLINK("http://evil")' }, userAgent: '+cmd', target: '@SUM(A1)' }),
        at(1),
      );
      await record(db, signIn({ target: '-2+3', ip: '\t198.51.100.9', summary: { note: 'a,b' } }), at(2));
      await record(db, { actor: { type: 'system' }, action: 'audit.viewed', target: '\rcr' }, at(3));
    });

    it('writes RFC 4180 CSV with a header, escaping quotes, commas and newlines', async () => {
      const csv = await exportAudit(db, {}, 'csv');
      expect(csv.startsWith('id,at,actor_type,actor_id,actor_label,ip,user_agent,action,target,summary,prev_hash,hash,key_id\r\n')).toBe(
        true,
      );
      expect(csv).toContain('"doc ""security"", v2\nline two"');
      const rows = parseCsv(csv);
      expect(rows).toHaveLength(5);
      expect(rows.every((r) => r.length === 13)).toBe(true);
      expect(rows[1]?.[12]).toBe(KEYRING.current.id);
      expect(rows[1]?.slice(0, 3)).toEqual(['1', at(0).toISOString(), 'staff']);
      expect(rows[1]?.[8]).toBe('doc "security", v2\nline two');
      expect(rows[3]?.[9]).toBe('{"note":"a,b"}');
    });

    it('neutralises cells a spreadsheet would run as formulas', async () => {
      const rows = parseCsv(await exportAudit(db, {}, 'csv'));
      expect(rows[2]?.[4]).toBe(`'=HYPERLINK("http://evil")`);
      expect(rows[2]?.[6]).toBe("'+cmd");
      expect(rows[2]?.[8]).toBe("'@SUM(A1)");
      expect(rows[3]?.[8]).toBe("'-2+3");
      expect(rows[3]?.[5]).toBe("'\t198.51.100.9");
      expect(rows[4]?.[8]).toBe("'\rcr");
    });

    it('writes JSON that parses, oldest first, with ISO times and hashes', async () => {
      const entries = JSON.parse(await exportAudit(db, {}, 'json'));
      expect(entries).toHaveLength(4);
      expect(entries[0]).toMatchObject({ id: 1, at: at(0).toISOString(), actorType: 'staff', target: 'doc "security", v2\nline two' });
      expect(entries[1].prevHash).toBe(entries[0].hash);
      expect(entries[1].keyId).toBe(KEYRING.current.id);
      expect(entries[2].summary).toEqual({ note: 'a,b' });
    });

    it('applies the filter, and exports an empty log as a header or an empty array', async () => {
      expect(JSON.parse(await exportAudit(db, { action: 'audit.viewed' }, 'json'))).toHaveLength(1);
      expect(JSON.parse(await exportAudit(db, { actorId: 99 }, 'json'))).toEqual([]);
      expect(parseCsv(await exportAudit(db, { from: at(10) }, 'csv'))).toHaveLength(1);
    });

    it('pages through more entries than one page', async () => {
      await db.transaction(async (tx) => {
        for (let i = 0; i < 2500; i++) await writeAudit(tx, { actor: { type: 'system' }, action: 'audit.viewed' }, at(4));
      });
      const entries: { id: number }[] = JSON.parse(await exportAudit(db, {}, 'json'));
      expect(entries).toHaveLength(2504);
      expect(entries.map((e) => e.id)).toEqual(Array.from({ length: 2504 }, (_, i) => i + 1));
    });
  });
});
