/**
 * The restore check: proves a backup can be restored, without touching the
 * live database. It does what `candor restore` does up to the swap, into a
 * scratch folder inside the data dir (the decrypted copy holds personal
 * data, so never a shared temp folder): decrypt and authenticate every
 * chunk with the installation's keys, `PRAGMA integrity_check`, a schema
 * this version knows, the row counts of the snapshot (when they were
 * recorded), migrate to this version's schema, reopen it as the server
 * would, and verify the audit chain with the running audit keys. The
 * scratch folder is removed whatever happens.
 *
 * Any failure is a BackupError whose message says why; the time reported
 * is from the first byte read to the verified chain.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkIntegrity, openDatabase } from '../../../db/client.ts';
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

export async function checkBackup(options: CheckOptions): Promise<CheckResult> {
  const started = performance.now();
  const { source, name } = backupSource(options.file);
  const scratch = mkdtempSync(join(options.dataDir, '.candor-restore-check-'));
  const staged = join(scratch, 'candor.db');
  try {
    const header = await decryptInto(source, name, options.keys, staged, { signal: options.signal });
    options.signal?.throwIfAborted();
    const before = checkStaged(staged, name);
    // Before migrating: the snapshot was counted with the schema it was made with.
    const counts = countRows(staged);
    const mismatch = options.expectedCounts ? countMismatch(name, options.expectedCounts, counts) : null;
    if (mismatch) throw new BackupError(mismatch);
    const after = migrateStaged(staged);
    const db = openDatabase(staged);
    try {
      checkIntegrity(db);
      const audit = verifyAuditChain(db, options.auditKeys);
      if (!audit.ok) throw new BackupError(`${name} restores an audit log that does not verify: ${describeFailure(audit)}`);
      return {
        header,
        ms: Math.round(performance.now() - started),
        migratedFrom: before.latest,
        migratedTo: after.latest,
        auditEntries: audit.checked,
        counts,
        countsCompared: Boolean(options.expectedCounts),
      };
    } finally {
      db.$client.close();
    }
  } catch (err) {
    if (options.signal?.aborted) throw new BackupError('interrupted; the restore check did not finish');
    if (err instanceof BackupError || !(err instanceof Error)) throw err;
    // A migration that fails on this copy, a full disk: said in one line like every other refusal.
    throw new BackupError(`${name} could not be restored: ${err.message}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
