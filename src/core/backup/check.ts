/**
 * The restore check: proves a backup can be restored, without touching the
 * live database. It does what `candor restore` does, into a scratch copy
 * (on SQLite a folder inside the data dir, never a shared temp folder, as
 * the decrypted copy holds personal data; on PostgreSQL a scratch database,
 * src/core/backup/postgres.ts): decrypt and authenticate every chunk with
 * the installation's keys, restore, check the schema is one this version
 * knows, compare the row counts with the snapshot's (when they were
 * recorded), migrate to this version's schema, and verify the audit chain
 * with the running audit keys.
 * The scratch copy is removed whatever happens.
 *
 * The steps that differ per engine are a CheckSteps object; the order, the
 * comparison, the timing and the wording of failures are here, once.
 *
 * Any failure is a BackupError whose message says why; the time reported
 * is from the first byte read to the verified audit chain.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkIntegrity, type Db, type MigrationState, openDatabase } from '../../../db/client.ts';
import { databaseOf } from '../../../db/engine/sqlite.ts';
import type { AuditKeyring } from '../audit/key.ts';
import { describeFailure, verifyAuditChain } from '../audit/log.ts';
import { BackupError, type BackupHeader } from './format.ts';
import { backupSource, checkStaged, countMismatch, countRows, decryptInto, migrateStaged } from './staging.ts';

export interface CheckOptions {
  file: string;
  /** where the scratch folder is made: the data dir */
  dataDir: string;
  /** the encryption keyring: the current key first, then previous ones */
  keys: readonly Buffer[];
  /** the audit keys the running installation verifies its chain with */
  auditKeys: AuditKeyring;
  /** rows per table in the snapshot the backup was made from, when recorded */
  expectedCounts?: Record<string, number> | null;
  signal?: AbortSignal;
}

/** The audit chain verified with the audit keys: how many entries. */
export type AuditCheck = { entries: number };

export interface CheckResult {
  header: BackupHeader;
  /** milliseconds from opening the file to the verified audit chain */
  ms: number;
  migratedFrom: string | null;
  migratedTo: string | null;
  /** audit entries verified */
  auditEntries: number;
  counts: Record<string, number>;
  /** whether the counts were compared with the snapshot's */
  countsCompared: boolean;
}

/** What one engine does for the check, in the order it is done. */
export interface CheckSteps {
  /** decrypts and restores the backup into the scratch copy; `recordedCounts` are the counts the backup itself carries, if any */
  stage(): Promise<{ header: BackupHeader; before: MigrationState; recordedCounts: Record<string, number> | null }>;
  /** rows per counted table in the restored copy, before it is migrated */
  counts(): Promise<Record<string, number>>;
  /** brings the copy to this version's schema and checks it opens as the server would */
  migrate(): Promise<MigrationState>;
  audit(): Promise<AuditCheck>;
  /** removes the scratch copy; called whatever happened */
  dispose(): Promise<void>;
}

/** Runs the steps, compares, times, and words any failure as one line naming the file. */
export async function runCheck(
  name: string,
  steps: CheckSteps,
  options: { expectedCounts?: Record<string, number> | null; signal?: AbortSignal },
): Promise<CheckResult> {
  const started = performance.now();
  let result: CheckResult;
  try {
    const { header, before, recordedCounts } = await steps.stage();
    options.signal?.throwIfAborted();
    // Before migrating: the snapshot was counted with the schema it was made with.
    const counts = await steps.counts();
    const expected = options.expectedCounts ?? recordedCounts;
    const mismatch = expected ? countMismatch(name, expected, counts) : null;
    if (mismatch) throw new BackupError(mismatch);
    const after = await steps.migrate();
    const audit = await steps.audit();
    result = {
      header,
      ms: Math.round(performance.now() - started),
      migratedFrom: before.latest,
      migratedTo: after.latest,
      auditEntries: audit.entries,
      counts,
      countsCompared: Boolean(expected),
    };
  } catch (err) {
    await steps.dispose().catch(() => undefined);
    if (options.signal?.aborted) throw new BackupError('interrupted; the restore check did not finish');
    if (err instanceof BackupError || !(err instanceof Error)) throw err;
    // A migration that fails on this copy, a full disk: said in one line like every other refusal.
    throw new BackupError(`${name} could not be restored: ${err.message}`);
  }
  await steps.dispose();
  return result;
}

export async function checkBackup(options: CheckOptions): Promise<CheckResult> {
  const { source, name } = backupSource(options.file);
  return runCheck(name, sqliteSteps(source, name, options), options);
}

/** SQLite: a private file in a scratch folder of the data dir, checked, migrated and opened as the server would. */
function sqliteSteps(source: string, name: string, options: CheckOptions): CheckSteps {
  let scratch: string | undefined;
  let db: Db | undefined;
  const staged = () => join(scratch ?? '', 'candor.db');
  return {
    async stage() {
      scratch = mkdtempSync(join(options.dataDir, '.candor-restore-check-'));
      const header = await decryptInto(source, name, options.keys, staged(), { signal: options.signal });
      options.signal?.throwIfAborted();
      return { header, before: checkStaged(staged(), name), recordedCounts: null };
    },
    async counts() {
      return countRows(staged());
    },
    async migrate() {
      const after = migrateStaged(staged(), options.auditKeys);
      db = openDatabase(staged());
      checkIntegrity(db);
      return after;
    },
    async audit() {
      if (!db) throw new BackupError(`${name}: the restored copy is not open`);
      const audit = await verifyAuditChain(databaseOf(db), options.auditKeys);
      if (!audit.ok) throw new BackupError(`${name} restores an audit log that does not verify: ${describeFailure(audit)}`);
      return { entries: audit.checked };
    },
    async dispose() {
      db?.$client.close();
      db = undefined;
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    },
  };
}
