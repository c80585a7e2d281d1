import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { trustCenterId } from './trust-centers.ts';

/**
 * Each scheduled backup (src/core/backup/schedule.ts): one row per daily
 * slot, claimed by inserting it, so two processes on one database never
 * both take the same backup. The restore check that follows fills the
 * `restore*` columns.
 */
export const backupRuns = sqliteTable(
  'backup_runs',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** the scheduled time this run is for (the configured UTC time on one day); unique: the claim */
    slot: integer('slot', { mode: 'timestamp_ms' }).notNull().unique(),
    /** which process took it: host name and process id */
    takenBy: text('taken_by').notNull(),
    startedAt: integer('started_at', { mode: 'timestamp_ms' }).notNull(),
    finishedAt: integer('finished_at', { mode: 'timestamp_ms' }),
    /** the backup file, an absolute path */
    file: text('file'),
    bytes: integer('bytes'),
    outcome: text('outcome', { enum: ['running', 'ok', 'failed'] }).notNull(),
    error: text('error'),
    /** rows per table in the snapshot, which the restore check compares with what it restored */
    counts: text('counts', { mode: 'json' }).$type<Record<string, number>>(),
    restoreCheckedAt: integer('restore_checked_at', { mode: 'timestamp_ms' }),
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
export const backupAlerts = sqliteTable('backup_alerts', {
  key: text('key').primaryKey(),
  kind: text('kind', { enum: ['failed', 'overdue'] }).notNull(),
  at: integer('at', { mode: 'timestamp_ms' }).notNull(),
  notificationId: integer('notification_id'),
  trustCenterId: trustCenterId(),
});
