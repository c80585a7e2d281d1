/**
 * `candor restore`: puts a backup in place of the database, with the
 * server stopped.
 *
 * Nothing in the data dir changes until the backup has been decrypted and
 * authenticated completely, passed `PRAGMA integrity_check` and been
 * migrated to this version's schema, all in a private file beside the
 * database. Only then is the current database moved aside (kept, never
 * deleted) and the restored one renamed into its place. The restore is
 * recorded in the audit chain, which is then verified, both with the key
 * derived from the configured CANDOR_SECRET (src/core/audit/key.ts); with
 * no secret, or another one than the backup was made with, nothing is
 * written to the chain (the entry would be sealed with a key it has not
 * seen) and the verification says which key it lacks.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { checkIntegrity, knownMigrations, type MigrationState, migrationState, openDatabase } from '../../../db/client.ts';
import { auditKeyring, bindAuditKeys } from '../audit/key.ts';
import { type AuditVerification, recordAudit, verifyAuditChain } from '../audit/log.ts';
import { BackupError, type BackupHeader, backupKey, readEncrypted, readHeader, secretId } from './format.ts';

export const DATABASE_FILE = 'candor.db';

export interface RestoreOptions {
  file: string;
  dataDir: string;
  /** the keyring: the current key first, then previous ones */
  keys: readonly Buffer[];
  /** the secret blind indexes and signed links will be checked with; undefined when none is configured yet */
  secret: string | undefined;
  /** CANDOR_PREVIOUS_SECRETS: older secrets audit entries may be sealed with */
  previousSecrets?: readonly string[];
  now: () => Date;
  signal?: AbortSignal;
}

export interface RestoreResult {
  header: BackupHeader;
  database: string;
  /** where the database that was replaced now is, if there was one */
  previous: string | null;
  migratedFrom: string | null;
  migratedTo: string | null;
  /** null when no secret is configured: the audit chain cannot be verified (nor the restore recorded in it) */
  audit: AuditVerification | null;
  /** whether `backup.restored` was written to the audit log */
  recorded: boolean;
  /** false when the configured secret (or none yet) is not the one the backup was made with */
  secretMatches: boolean | null;
}

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const source = resolve(options.file);
  const name = basename(source);
  if (!existsSync(source)) throw new BackupError(`${source}: no such file`);
  if (!statSync(source).isFile()) throw new BackupError(`${source} is not a file`);
  const database = join(options.dataDir, DATABASE_FILE);
  const staged = join(options.dataDir, `.candor-restore-${randomUUID()}.db`);
  try {
    const input = await open(source, 'r');
    let header: BackupHeader;
    try {
      const read = await readHeader(input, name);
      header = read.header;
      const key = backupKey(options.keys, header, name);
      // Checked before the long part to fail fast, and again just before the swap.
      assertNotInUse(database);
      writeFileSync(staged, '', { mode: 0o600, flag: 'wx' });
      const output = await open(staged, 'r+');
      try {
        await readEncrypted(input, output, key, read, name, options.signal);
        await output.sync();
      } finally {
        await output.close();
      }
    } finally {
      await input.close();
    }
    options.signal?.throwIfAborted();
    const before = checkStaged(staged, name);
    const after = migrate(staged);
    assertNotInUse(database);
    const previous = moveAside(database, options.now());
    renameSync(staged, database);
    const db = openDatabase(database);
    try {
      checkIntegrity(db);
      const secretMatches = header.secretId === null ? null : options.secret !== undefined && header.secretId === secretId(options.secret);
      if (options.secret === undefined) {
        return {
          header,
          database,
          previous,
          migratedFrom: before.latest,
          migratedTo: after.latest,
          audit: null,
          recorded: false,
          secretMatches,
        };
      }
      bindAuditKeys(db, auditKeyring(options.secret, options.previousSecrets));
      const recorded = secretMatches !== false;
      if (recorded) {
        recordAudit(
          db,
          {
            actor: { type: 'system' },
            userAgent: 'candor cli',
            action: 'backup.restored',
            target: `backup:${name}`,
            summary: {
              file: source,
              madeAt: header.createdAt,
              encryptedWith: header.keyId,
              previousDatabase: previous === null ? null : basename(previous),
              migratedFrom: before.latest,
              migratedTo: after.latest,
            },
          },
          options.now(),
        );
      }
      return {
        header,
        database,
        previous,
        migratedFrom: before.latest,
        migratedTo: after.latest,
        audit: verifyAuditChain(db),
        recorded,
        secretMatches,
      };
    } finally {
      db.$client.close();
    }
  } catch (err) {
    if (options.signal?.aborted) throw new BackupError('interrupted; the database was not changed');
    throw err;
  } finally {
    for (const leftover of [staged, `${staged}-journal`, `${staged}-wal`, `${staged}-shm`]) rmSync(leftover, { force: true });
  }
}

/**
 * Refuses while anything (the server, a worker) has the database open.
 * Leaving WAL mode needs every other connection closed, so SQLite itself
 * answers; on success the file is also left whole, its WAL folded in.
 */
function assertNotInUse(database: string): void {
  if (!existsSync(database)) return;
  let sqlite: Database.Database | undefined;
  try {
    sqlite = new Database(database, { timeout: 0 });
    sqlite.pragma('journal_mode = DELETE');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new BackupError(`${database} is in use: stop the server (and any \`candor worker\`) before restoring`);
    }
    // A damaged file cannot be checked this way, and no server can be running on it: it is moved aside like any other.
  } finally {
    sqlite?.close();
  }
}

/** The decrypted file is a healthy Candor database this version can run. */
function checkStaged(staged: string, name: string): MigrationState {
  const head = Buffer.alloc(16);
  const fd = openSync(staged, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (!head.equals(Buffer.from('SQLite format 3\0', 'latin1'))) throw new BackupError(`${name} does not hold a SQLite database`);
  const sqlite = new Database(staged, { readonly: true });
  try {
    const rows = sqlite.pragma('integrity_check') as { integrity_check: string }[];
    const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (problems.length) throw new BackupError(`${name} holds a damaged database (integrity check: ${problems.slice(0, 3).join('; ')})`);
    const state = migrationState(sqlite);
    if (state.applied === 0) throw new BackupError(`${name} does not hold a Candor database (no migrations recorded)`);
    const newest = knownMigrations().at(-1);
    if (newest && state.latestAt !== null && state.latestAt > newest.when) {
      throw new BackupError(
        `${name} was made by a newer version of Candor (its schema has migrations this version does not know, after ${newest.tag}); upgrade Candor first`,
      );
    }
    return state;
  } finally {
    sqlite.close();
  }
}

/** Brings an older backup to this version's schema, and leaves it as one self-contained file. */
function migrate(staged: string): MigrationState {
  const db = openDatabase(staged);
  try {
    const state = migrationState(db.$client);
    db.$client.pragma('journal_mode = DELETE');
    return state;
  } finally {
    db.$client.close();
  }
}

/**
 * Keeps the current database as `candor.db.before-restore-<UTC time>`, with
 * its WAL and shared-memory files if any: a WAL left beside the restored
 * file would be replayed into it.
 */
function moveAside(database: string, now: Date): string | null {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  let aside = `${database}.before-restore-${stamp}`;
  for (let n = 2; existsSync(aside); n++) aside = `${database}.before-restore-${stamp}-${n}`;
  const moved = existsSync(database);
  if (moved) renameSync(database, aside);
  for (const suffix of ['-wal', '-shm', '-journal']) {
    if (!existsSync(`${database}${suffix}`)) continue;
    if (moved) renameSync(`${database}${suffix}`, `${aside}${suffix}`);
    else rmSync(`${database}${suffix}`);
  }
  return moved ? aside : null;
}
