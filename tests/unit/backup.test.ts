/**
 * The backup file format and the backup/restore flows, in process: every
 * way a file can be cut, reordered or edited is refused; the snapshot holds
 * no deleted row even when the live file still does; an older backup is
 * migrated on restore and a newer one refused; temporary files never stay.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { type Db, knownMigrations, migrationState, openDatabase } from '../../db/client.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { recordAudit } from '../../src/core/audit/log.ts';
import { createBackup } from '../../src/core/backup/backup.ts';
import {
  assertEngine,
  BackupError,
  backupKey,
  newHeader,
  readEncrypted,
  readHeader,
  writeEncrypted,
  writeEncryptedStream,
} from '../../src/core/backup/format.ts';
import { restoreBackup } from '../../src/core/backup/restore.ts';
import { KEYED_CHAIN_MIGRATION, legacyDatabase } from '../helpers/legacy-audit.ts';
import { tempDir } from '../helpers/server.ts';

const KEY = Buffer.alloc(32, 3);
const OTHER = Buffer.alloc(32, 4);
const SECRET = 'backup-unit-test-secret-of-enough-length';
const CHUNK = 64 * 1024;
const now = () => new Date('2025-05-01T12:00:00Z');
const dirs: string[] = [];
const dir = () => {
  const d = tempDir('candor-backup-unit-');
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const migration = { applied: 1, latest: '0000_init', latestAt: 1 };

async function encrypt(plain: Buffer, key = KEY): Promise<Buffer> {
  const d = dir();
  writeFileSync(join(d, 'in'), plain);
  const input = await open(join(d, 'in'), 'r');
  const output = await open(join(d, 'out'), 'w');
  try {
    await writeEncrypted(input, output, key, newHeader(key, SECRET, now(), migration));
  } finally {
    await Promise.all([input.close(), output.close()]);
  }
  return readFileSync(join(d, 'out'));
}

async function decrypt(file: Buffer, keys: Buffer[] = [KEY]): Promise<Buffer> {
  const d = dir();
  writeFileSync(join(d, 'in'), file);
  const input = await open(join(d, 'in'), 'r');
  const output = await open(join(d, 'out'), 'w');
  try {
    const read = await readHeader(input, 'file.backup');
    await readEncrypted(input, output, backupKey(keys, read.header, 'file.backup'), read, 'file.backup');
  } finally {
    await Promise.all([input.close(), output.close()]);
  }
  return readFileSync(join(d, 'out'));
}

const headerLength = (file: Buffer) => file.indexOf(0x0a, file.indexOf(0x0a) + 1) + 1;

describe('backup file format', () => {
  it.each([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK])('round-trips %i bytes', async (size) => {
    const plain = Buffer.alloc(size);
    for (let i = 0; i < size; i++) plain[i] = (i * 31 + 7) % 251;
    const file = await encrypt(plain);
    // The plaintext's first 16 or more bytes found in the file would mean they were not encrypted; a
    // shorter run turns up in random ciphertext by chance (one byte: about one file in five).
    if (size >= 16) expect(file.includes(plain.subarray(0, Math.min(size, 64)))).toBe(false);
    expect((await decrypt(file)).equals(plain)).toBe(true);
  });

  it.each([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5])(
    'a stream of %i bytes, in uneven pieces, is sealed exactly as the same bytes from a file',
    async (size) => {
      const plain = Buffer.alloc(size);
      for (let i = 0; i < size; i++) plain[i] = (i * 17 + 3) % 253;
      const header = newHeader(KEY, SECRET, now(), migration, 'postgres');
      const d = dir();
      writeFileSync(join(d, 'in'), plain);
      const input = await open(join(d, 'in'), 'r');
      const fromFile = await open(join(d, 'file'), 'w');
      const fromStream = await open(join(d, 'stream'), 'w');
      async function* pieces(): AsyncGenerator<Buffer> {
        // pieces of 1, 1000 and 70,000 bytes, so chunk boundaries fall inside, between and across them
        const sizes = [1, 1000, 70_000];
        for (let at = 0, i = 0; at < size; i++) {
          const next = Math.min(size, at + (sizes[i % 3] ?? 1));
          yield plain.subarray(at, next);
          at = next;
        }
      }
      try {
        const a = await writeEncrypted(input, fromFile, KEY, header);
        const b = await writeEncryptedStream(pieces(), fromStream, KEY, header);
        expect(b).toBe(a);
      } finally {
        await Promise.all([input.close(), fromFile.close(), fromStream.close()]);
      }
      const streamed = readFileSync(join(d, 'stream'));
      expect(streamed.equals(readFileSync(join(d, 'file')))).toBe(true);
      expect((await decrypt(streamed)).equals(plain)).toBe(true);
    },
  );

  it('names the engine only for PostgreSQL, and each engine refuses the other’s backup', async () => {
    const sqlite = newHeader(KEY, SECRET, now(), migration);
    const postgres = newHeader(KEY, SECRET, now(), migration, 'postgres');
    expect('engine' in sqlite).toBe(false);
    expect(() => assertEngine(sqlite, 'sqlite', 'a.backup')).not.toThrow();
    expect(() => assertEngine(postgres, 'postgres', 'a.backup')).not.toThrow();
    expect(() => assertEngine(postgres, 'sqlite', 'a.backup')).toThrow(
      /a\.backup is a PostgreSQL backup, but this installation runs on SQLite/,
    );
    expect(() => assertEngine(sqlite, 'postgres', 'a.backup')).toThrow(
      /a\.backup is a SQLite backup, but CANDOR_DATABASE_URL names a PostgreSQL server/,
    );
  });

  it('refuses another key, naming the one it needs', async () => {
    const file = await encrypt(Buffer.from('data'));
    await expect(decrypt(file, [OTHER])).rejects.toThrow(
      /was made with encryption key [0-9a-f]{8}, but the configured keys are [0-9a-f]{8} \(current\)/,
    );
    // a previous key still opens it
    expect((await decrypt(file, [OTHER, KEY])).toString()).toBe('data');
  });

  it('refuses every alteration: a flipped bit, swapped or dropped chunks, a cut, extra bytes, an edited header', async () => {
    const plain = Buffer.alloc(3 * CHUNK + 100, 1);
    const file = await encrypt(plain);
    const start = headerLength(file);
    const sealed = CHUNK + 16;
    const chunk = (i: number) => file.subarray(start + i * sealed, start + (i + 1) * sealed);
    const head = file.subarray(0, start);

    const flipped = Buffer.from(file);
    flipped[start + sealed + 10] = (flipped[start + sealed + 10] ?? 0) ^ 0x80;
    await expect(decrypt(flipped)).rejects.toThrow(/is damaged or was altered: its content does not authenticate \(chunk 1,/);
    await expect(decrypt(Buffer.concat([head, chunk(1), chunk(0), file.subarray(start + 2 * sealed)]))).rejects.toThrow(/chunk 0/);
    await expect(decrypt(Buffer.concat([head, chunk(0), chunk(2), file.subarray(start + 3 * sealed)]))).rejects.toThrow(/chunk 1/);
    // cut exactly after a whole chunk: the last chunk is missing
    await expect(decrypt(file.subarray(0, start + 3 * sealed))).rejects.toThrow(/is truncated: it ends before its last chunk/);
    await expect(decrypt(file.subarray(0, file.length - 1))).rejects.toThrow(/is truncated or was altered/);
    await expect(decrypt(Buffer.concat([file, Buffer.from('more')]))).rejects.toThrow(/does not authenticate/);
    const edited = Buffer.from(file.toString('latin1').replace('"applied":1', '"applied":2'), 'latin1');
    await expect(decrypt(edited)).rejects.toThrow(/chunk 0/);
    await expect(decrypt(file.subarray(0, 10))).rejects.toThrow(/is truncated: its header is incomplete/);
    await expect(decrypt(Buffer.alloc(0))).rejects.toThrow(/file.backup is empty/);
    await expect(decrypt(Buffer.from('SQLite format 3\0'))).rejects.toThrow(/is not a Candor backup/);
    await expect(decrypt(Buffer.from('CANDOR-BACKUP 9\n{}\n'))).rejects.toThrow(/in format 9, which this version cannot read/);
    await expect(decrypt(Buffer.from('CANDOR-BACKUP 1\n{"createdAt":1}\n'))).rejects.toThrow(/has a damaged header/);
  });
});

/** A data dir whose database holds a few rows, one of them deleted without secure_delete (as before it was turned on). */
function liveDatabase(): { dataDir: string; db: Db } {
  const dataDir = dir();
  const db = bindAuditKeys(openDatabase(join(dataDir, 'candor.db')), auditKeyring(SECRET));
  const sqlite = db.$client;
  sqlite.pragma('secure_delete = OFF');
  const insert = sqlite.prepare(`INSERT INTO subscribers (organisation, created_at) VALUES (?, 0)`);
  for (let i = 0; i < 300; i++) insert.run(`Keeper organisation ${i}`);
  insert.run('Forgotten Organisation Ltd');
  for (let i = 0; i < 300; i++) insert.run(`Other organisation ${i}`);
  sqlite.prepare(`DELETE FROM subscribers WHERE organisation = 'Forgotten Organisation Ltd'`).run();
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
  recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, now());
  return { dataDir, db };
}

describe('createBackup', () => {
  it('snapshots live rows only: a deleted row still in the file’s free space is not in the backup', async () => {
    const { dataDir, db } = liveDatabase();
    expect(readFileSync(join(dataDir, 'candor.db')).includes('Forgotten Organisation Ltd')).toBe(true);
    const target = join(dir(), 'x.backup');
    const result = await createBackup({ db, dataDir, key: KEY, secret: SECRET, file: target, now });
    expect(result.header.migration).toEqual(migrationState(db.$client));
    db.$client.close();
    const plain = await decrypt(readFileSync(target));
    expect(plain.includes('Forgotten Organisation Ltd')).toBe(false);
    expect(plain.includes('Keeper organisation 299')).toBe(true);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.candor-'))).toEqual([]);
  });

  it('refuses to overwrite a file or to write into a missing folder, and leaves nothing behind when interrupted', async () => {
    const { dataDir, db } = liveDatabase();
    const out = dir();
    writeFileSync(join(out, 'taken.backup'), 'an older backup');
    const base = { db, dataDir, key: KEY, secret: SECRET, now };
    await expect(createBackup({ ...base, file: join(out, 'taken.backup') })).rejects.toThrow(
      /already exists; backups are never overwritten/,
    );
    await expect(createBackup({ ...base, file: join(out, 'missing', 'x.backup') })).rejects.toThrow(/the folder .*missing does not exist/);
    const controller = new AbortController();
    controller.abort();
    await expect(createBackup({ ...base, file: join(out, 'x.backup'), signal: controller.signal })).rejects.toThrow(
      new BackupError('interrupted; no backup was written'),
    );
    expect(readdirSync(out)).toEqual(['taken.backup']);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.candor-'))).toEqual([]);
    db.$client.close();
  });
});

/** A backup of a database as an older Candor made it (its own code recorded `backup.created`; this one cannot write its log). */
async function olderBackup(dataDir: string): Promise<string> {
  const snapshot = join(dataDir, 'snapshot.db');
  const sqlite = new Database(join(dataDir, 'candor.db'));
  sqlite.prepare('VACUUM INTO ?').run(snapshot);
  sqlite.close();
  const file = join(dir(), 'old.backup');
  writeFileSync(file, await encrypt(readFileSync(snapshot)));
  return file;
}

describe('restoreBackup', () => {
  it('migrates an older backup, keeps the database it replaces, records and verifies the audit log', async () => {
    const source = dir();
    legacyDatabase(source, 1);
    const file = await olderBackup(source);

    const { dataDir, db } = liveDatabase();
    db.$client.close();
    const known = knownMigrations();
    const result = await restoreBackup({ file, dataDir, keys: [OTHER, KEY], secret: SECRET, now });
    expect(result.migratedFrom).toBe(known[KEYED_CHAIN_MIGRATION - 1]?.tag);
    expect(result.migratedTo).toBe(known.at(-1)?.tag);
    expect(result.previous).toMatch(/candor\.db\.before-restore-20250501T120000Z$/);
    expect(result.secretMatches).toBe(true);
    // the older version's plain entry, sealed by the keyed chain before the restore's own entry
    expect(result.recorded).toBe(true);
    expect(result.audit).toMatchObject({ ok: true, checked: 3, plain: { count: 1, sealedBy: 2 } });
    expect(readdirSync(dataDir).sort()).toEqual(['candor.db', 'candor.db.before-restore-20250501T120000Z']);
    const restored = openDatabase(join(dataDir, 'candor.db'));
    expect(restored.$client.prepare('SELECT action, summary, key_id FROM audit_log ORDER BY id').all()).toEqual([
      { action: 'audit.viewed', summary: '{}', key_id: null },
      { action: 'audit.chain_keyed', summary: '{"lastPlainId":1}', key_id: auditKeyring(SECRET).current.id },
      {
        action: 'backup.restored',
        summary: expect.stringContaining('"previousDatabase":"candor.db.before-restore-20250501T120000Z"'),
        key_id: auditKeyring(SECRET).current.id,
      },
    ]);
    restored.$client.close();
    // the second restore in the same second keeps both earlier databases; without a secret the log can be neither
    // verified nor written
    const again = await restoreBackup({ file, dataDir, keys: [KEY], secret: undefined, now });
    expect(again.previous).toMatch(/before-restore-20250501T120000Z-2$/);
    expect(again.secretMatches).toBe(false);
    expect(again).toMatchObject({ audit: null, recorded: false });
    // with another secret than the backup's, nothing is sealed with a key the log has not seen
    const other = await restoreBackup({ file, dataDir, keys: [KEY], secret: `${SECRET}-other`, now });
    expect(other).toMatchObject({ secretMatches: false, recorded: false, audit: { ok: false, problem: 'unsealed' } });
  });

  it('refuses a backup made by a newer version, changing nothing', async () => {
    const { dataDir: source, db } = liveDatabase();
    db.$client
      .prepare('INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?, ?)')
      .run('future', Date.now() + 10 * 365 * 86_400_000);
    const file = join(dir(), 'new.backup');
    await createBackup({ db, dataDir: source, key: KEY, secret: SECRET, file, now });
    db.$client.close();
    const target = dir();
    await expect(restoreBackup({ file, dataDir: target, keys: [KEY], secret: SECRET, now })).rejects.toThrow(
      /new\.backup was made by a newer version of Candor .*; upgrade Candor first/,
    );
    expect(readdirSync(target)).toEqual([]);
  });
});
