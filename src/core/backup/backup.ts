/**
 * `candor backup`: an encrypted copy of the live database, taken while the
 * server and workers keep writing.
 *
 * The snapshot is `VACUUM INTO`, one read transaction (so it is consistent
 * however much is written meanwhile, and writers are never blocked in WAL
 * mode) that rebuilds the file from live rows only. The SQLite online-backup
 * API would copy pages verbatim, free space included, so a subscriber erased
 * yesterday could still be read out of today's backup; VACUUM INTO leaves
 * nothing of them. The snapshot is written beside the database (never to a
 * shared temp folder), encrypted into the target, and removed whatever
 * happens.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, linkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { type Db, migrationState } from '../../../db/client.ts';
import { vacuumInto } from '../../../db/engine/sqlite-files.ts';
import { recordAudit } from '../audit/log.ts';
import { backupCreated } from './events.ts';
import { BackupError, type BackupHeader, newHeader, writeEncrypted } from './format.ts';
import { countRows } from './staging.ts';

export interface BackupOptions {
  /** a connection to the live database */
  db: Db;
  /** the data dir, where the plaintext snapshot briefly lives */
  dataDir: string;
  /** the installation's current encryption key */
  key: Buffer;
  secret: string | undefined;
  file: string;
  now: () => Date;
  signal?: AbortSignal;
  /** who took it, for the audit entry; default `candor cli` */
  userAgent?: string;
}

export interface BackupResult {
  file: string;
  bytes: number;
  header: BackupHeader;
  /** rows per table in the snapshot, for the restore check to compare (staging.ts countRows) */
  counts: Record<string, number>;
}

export async function createBackup(options: BackupOptions): Promise<BackupResult> {
  const target = resolve(options.file);
  checkTarget(target);
  const snapshot = join(options.dataDir, `.candor-backup-${randomUUID()}.db`);
  const partial = join(dirname(target), `.${basename(target)}.partial-${randomUUID()}`);
  let published = false;
  try {
    // Created empty first so the plaintext copy is never readable by others, not even briefly.
    writeFileSync(snapshot, '', { mode: 0o600, flag: 'wx' });
    vacuumInto(options.db, snapshot);
    options.signal?.throwIfAborted();
    const createdAt = options.now();
    const header = newHeader(options.key, options.secret, createdAt, snapshotMigrations(snapshot));
    const counts = countRows(snapshot);
    const input = await open(snapshot, 'r');
    let bytes: number;
    try {
      const output = await open(partial, 'wx', 0o600);
      try {
        bytes = await writeEncrypted(input, output, options.key, header, options.signal);
        await output.sync();
      } finally {
        await output.close();
      }
    } finally {
      await input.close();
    }
    publish(partial, target);
    published = true;
    recordAudit(options.db, backupCreated({ file: target, bytes, header }, options.userAgent), createdAt);
    return { file: target, bytes, header, counts };
  } catch (err) {
    if (options.signal?.aborted && !published) throw new BackupError('interrupted; no backup was written');
    throw err;
  } finally {
    for (const leftover of [snapshot, `${snapshot}-journal`, `${snapshot}-wal`, `${snapshot}-shm`, partial])
      rmSync(leftover, { force: true });
  }
}

export function checkTarget(target: string): void {
  const folder = dirname(target);
  if (!existsSync(folder) || !statSync(folder).isDirectory())
    throw new BackupError(`cannot write ${target}: the folder ${folder} does not exist`);
  // Never over an existing file: the previous backup may be the only good one (and the target could be the live database).
  if (existsSync(target)) throw new BackupError(`${target} already exists; backups are never overwritten, choose a new name`);
}

function snapshotMigrations(snapshot: string): BackupHeader['migration'] {
  const sqlite = new Database(snapshot, { readonly: true });
  try {
    return migrationState(sqlite);
  } finally {
    sqlite.close();
  }
}

/** Moves the finished file into place without replacing one that appeared meanwhile. */
export function publish(partial: string, target: string): void {
  try {
    linkSync(partial, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new BackupError(`${target} already exists; backups are never overwritten, choose a new name`);
    // Some file systems (SMB, some FUSE mounts) have no hard links; the target was checked absent just before.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV') renameSync(partial, target);
    else throw err;
  }
}
