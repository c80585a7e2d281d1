import { bigint, index, integer, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/**
 * db/schema/backups.ts on PostgreSQL (kept in step by tests/integration/engine-parity.test.ts).
 *
 * Each scheduled backup (src/core/backup/schedule.ts): one row per daily
 * slot, claimed by inserting it, so two processes on one database never
 * both take the same backup. The restore check that follows fills the
 * `restore*` columns.
 */
export const backupRuns = pgTable(
  'backup_runs',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    /** the scheduled time this run is for (the configured UTC time on one day); unique: the claim */
    slot: timestamptz('slot').notNull().unique(),
    /** which process took it: host name and process id */
    takenBy: text('taken_by').notNull(),
    startedAt: timestamptz('started_at').notNull(),
    finishedAt: timestamptz('finished_at'),
    /** the backup file, an absolute path */
    file: text('file'),
    bytes: bigint('bytes', { mode: 'number' }),
    outcome: text('outcome', { enum: ['running', 'ok', 'failed'] }).notNull(),
    error: text('error'),
    /** rows per table in the snapshot, which the restore check compares with what it restored */
    counts: jsonb('counts').$type<Record<string, number>>(),
    restoreCheckedAt: timestamptz('restore_checked_at'),
    /** how long decrypting, checking, migrating and verifying the restored copy took */
    restoreMs: integer('restore_ms'),
    restoreOutcome: text('restore_outcome', { enum: ['ok', 'failed'] }),
    restoreError: text('restore_error'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('backup_runs_started').on(t.startedAt)],
);

/**
 * Staff were told about a backup problem: one row per episode, the key
 * naming it (`failed:<run id>`, `overdue:<id of the last good run>`), so a
 * notice goes out once however often, and from however many processes, the
 * problem is looked at.
 */
export const backupAlerts = pgTable('backup_alerts', {
  key: text('key').primaryKey(),
  kind: text('kind', { enum: ['failed', 'overdue'] }).notNull(),
  at: timestamptz('at').notNull(),
  notificationId: integer('notification_id'),
  trustCenterId: trustCenterId(),
});
