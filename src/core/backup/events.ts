/**
 * The audit entries about a backup file (`backup.created`, `backup.restored`): one shape on both
 * engines and for every caller (`candor backup` and `restore`, the daily schedule).
 */
import { basename } from 'node:path';
import type { AuditInput } from '../audit/log.ts';
import type { BackupHeader } from './format.ts';

/** An event about `file`, by the system, named by the file's name; the summary starts with the full path. */
export function backupEvent(
  action: 'backup.created' | 'backup.restored',
  file: string,
  summary: Record<string, unknown>,
  userAgent = 'candor cli',
): AuditInput {
  return { actor: { type: 'system' }, userAgent, action, target: `backup:${basename(file)}`, summary: { file, ...summary } };
}

/** `backup.created` for a backup just written. */
export function backupCreated(written: { file: string; bytes: number; header: BackupHeader }, userAgent?: string): AuditInput {
  const { file, bytes, header } = written;
  return backupEvent(
    'backup.created',
    file,
    { bytes, encryptedWith: header.keyId, migration: header.migration.latest, madeAt: header.createdAt },
    userAgent,
  );
}
