/**
 * The steps `candor restore` and the restore check share: decrypting a
 * backup into a private file, checking that file is a healthy Candor
 * database this version can run, counting its rows, and migrating it to
 * this version's schema. Nothing here touches the live database.
 */
import { closeSync, existsSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { knownMigrations, type MigrationState, migrationState, openDatabase } from '../../../db/client.ts';
import { countTableRows } from '../../../db/engine/sqlite-files.ts';
import { type AuditKeyring, bindAuditKeys } from '../audit/key.ts';
import { sealChainUpgrade } from '../audit/log.ts';
import { assertEngine, BackupError, type BackupHeader, backupKey, readEncrypted, readHeader } from './format.ts';

/** The file to read, as the messages name it; refuses a missing file or a folder. */
export function backupSource(file: string): { source: string; name: string } {
  const source = resolve(file);
  if (!existsSync(source)) throw new BackupError(`${source}: no such file`);
  if (!statSync(source).isFile()) throw new BackupError(`${source} is not a file`);
  return { source, name: basename(source) };
}

/**
 * Authenticates and decrypts the backup into `staged`, a new file created
 * with mode 0600. `beforeDecrypt` runs once the header and the key are
 * known, before the long part.
 */
export async function decryptInto(
  source: string,
  name: string,
  keys: readonly Buffer[],
  staged: string,
  options: { signal?: AbortSignal; beforeDecrypt?: (header: BackupHeader) => void } = {},
): Promise<BackupHeader> {
  const input = await open(source, 'r');
  try {
    const read = await readHeader(input, name);
    assertEngine(read.header, 'sqlite', name);
    const key = backupKey(keys, read.header, name);
    options.beforeDecrypt?.(read.header);
    writeFileSync(staged, '', { mode: 0o600, flag: 'wx' });
    const output = await open(staged, 'r+');
    try {
      await readEncrypted(input, output, key, read, name, options.signal);
      await output.sync();
    } finally {
      await output.close();
    }
    return read.header;
  } finally {
    await input.close();
  }
}

/** The decrypted file is a healthy Candor database this version can run. */
export function checkStaged(staged: string, name: string): MigrationState {
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
export function migrateStaged(staged: string, auditKeys?: AuditKeyring, now: Date = new Date()): MigrationState {
  const db = openDatabase(staged);
  try {
    // Migrating an older backup may key its audit chain: only this handle may seal the older entries (log.ts).
    if (auditKeys) sealChainUpgrade(bindAuditKeys(db, auditKeys), now);
    const state = migrationState(db.$client);
    db.$client.pragma('journal_mode = DELETE');
    return state;
  } finally {
    db.$client.close();
  }
}

/**
 * The tables whose rows a backup's snapshot is counted by, and its restore
 * checked against: who may act, what was published, who is told, what was
 * sent, and the audit trail.
 */
export const COUNTED = [
  'audit_log',
  'staff',
  'incidents',
  'incident_updates',
  'subscribers',
  'recipients',
  'notifications',
  'deliveries',
] as const;

/** Rows per counted table (those the database has), from a file opened read-only. */
export function countRows(file: string): Record<string, number> {
  return countTableRows(file, COUNTED);
}

/** The first table whose count differs from the snapshot's, as a sentence; null when they all agree. */
export function countMismatch(name: string, expected: Record<string, number>, actual: Record<string, number>): string | null {
  for (const [table, rows] of Object.entries(expected)) {
    const got = actual[table];
    if (got !== rows) {
      return `${name} restores ${got === undefined ? 'no table' : `${got} rows`} of ${table}, but the snapshot it was made from had ${rows}`;
    }
  }
  return null;
}
