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
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { checkIntegrity, openDatabase } from '../../../db/client.ts';
import { databaseOf } from '../../../db/engine/sqlite.ts';
import { auditKeyring, bindAuditKeys } from '../audit/key.ts';
import { type AuditVerification, recordAudit, verifyAuditChain } from '../audit/log.ts';
import { backupEvent } from './events.ts';
import { BackupError, type BackupHeader, secretId } from './format.ts';
import { backupSource, checkStaged, decryptInto, migrateStaged } from './staging.ts';

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
  const { source, name } = backupSource(options.file);
  const database = join(options.dataDir, DATABASE_FILE);
  const staged = join(options.dataDir, `.candor-restore-${randomUUID()}.db`);
  try {
    // Checked before the long part to fail fast, and again just before the swap.
    const header = await decryptInto(source, name, options.keys, staged, {
      signal: options.signal,
      beforeDecrypt: () => assertNotInUse(database),
    });
    options.signal?.throwIfAborted();
    const before = checkStaged(staged, name);
    // An older backup's plain audit entries are sealed by the migration's own handle, with the secret it was made with (log.ts).
    const sameSecret = options.secret !== undefined && (header.secretId === null || header.secretId === secretId(options.secret));
    const after = migrateStaged(
      staged,
      sameSecret && options.secret !== undefined ? auditKeyring(options.secret, options.previousSecrets) : undefined,
      options.now(),
    );
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
        const summary = {
          madeAt: header.createdAt,
          encryptedWith: header.keyId,
          previousDatabase: previous === null ? null : basename(previous),
          migratedFrom: before.latest,
          migratedTo: after.latest,
        };
        recordAudit(db, backupEvent('backup.restored', source, summary), options.now());
      }
      return {
        header,
        database,
        previous,
        migratedFrom: before.latest,
        migratedTo: after.latest,
        audit: await verifyAuditChain(databaseOf(db)),
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
