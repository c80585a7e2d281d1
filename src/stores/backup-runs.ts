/**
 * The record of scheduled backups (`backup_runs`), the alerts sent about them (`backup_alerts`), and
 * what the backup schedule reads of its jobs (`jobs` of kind `backups.run`), on SQLite and PostgreSQL
 * alike. What a run means (overdue, failed, abandoned) is src/core/backup/runs.ts's.
 * Convention: src/stores/rate-limits.ts.
 *
 * Concurrency: a run is claimed by inserting its row, whose slot is unique (`ON CONFLICT DO NOTHING`:
 * of two nodes claiming one day, one gets the row, the other nothing, and no error aborts its
 * transaction); an alert likewise by its unique key. Every other write is a single conditional UPDATE
 * or DELETE. `lockBackups` additionally makes claims (and the closing of abandoned runs that follows
 * one) happen one node after the other on PostgreSQL.
 */
import { and, asc, desc, eq, inArray, isNotNull, isNull, lt, min, ne, or, sql } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { backupRuns } from '../../db/schema.ts';

export type BackupRunRow = typeof backupRuns.$inferSelect;

/** First half of the advisory lock key: "BKUP"; the second half is the trust center. */
const BACKUP_LOCK = 0x424b5550;

/** Waits for other nodes' backup claims in this trust center until this transaction ends (PostgreSQL; SQLite serialises already). */
export async function lockBackups(tx: Tx): Promise<void> {
  if (tx.engine === 'sqlite') return;
  // Raw SQL: the builder has no advisory-lock functions.
  await tx.db.execute(sql`SELECT pg_advisory_xact_lock(${BACKUP_LOCK}, ${tx.trustCenter})`);
}

/** Inserts the running row for `slot`; undefined when the slot is taken already. */
export async function insertRun(tx: Tx, slot: Date, takenBy: string, now: Date): Promise<BackupRunRow | undefined> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.backupRuns)
    .values({ slot, takenBy, startedAt: now, outcome: 'running', trustCenterId: q.trustCenter })
    .onConflictDoNothing()
    .returning();
  return rows[0];
}

/** Deletes run `id` while it is still running; how many (0 or 1). */
export async function deleteRunningRun(tx: Tx, id: number): Promise<number> {
  const q = query(tx);
  const r = q.t.backupRuns;
  return affected(await q.db.delete(r).where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id), eq(r.outcome, 'running'))));
}

/** Marks failed every run but `current` still running since before `startedBefore`; how many. */
export async function failRunsStartedBefore(tx: Tx, current: number, startedBefore: Date, now: Date, error: string): Promise<number> {
  const q = query(tx);
  const r = q.t.backupRuns;
  return affected(
    await q.db
      .update(r)
      .set({ outcome: 'failed', finishedAt: now, error })
      .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.outcome, 'running'), ne(r.id, current), lt(r.startedAt, startedBefore))),
  );
}

type RunUpdate = Partial<
  Pick<
    BackupRunRow,
    'outcome' | 'finishedAt' | 'file' | 'bytes' | 'counts' | 'error' | 'restoreCheckedAt' | 'restoreMs' | 'restoreOutcome' | 'restoreError'
  >
>;

/** Sets what a run's backup or restore check came to. */
export async function updateRun(tx: Tx, id: number, set: RunUpdate): Promise<void> {
  const q = query(tx);
  const r = q.t.backupRuns;
  await q.db
    .update(r)
    .set(set)
    .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id)));
}

export async function runById(r: Reader | Tx, id: number): Promise<BackupRunRow | undefined> {
  const q = reading(r);
  const t = q.t.backupRuns;
  const rows = await q.db
    .select()
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id)))
    .limit(1);
  return rows[0];
}

/** The newest run that wrote `file`. */
export async function newestRunOfFile(r: Reader | Tx, file: string): Promise<BackupRunRow | undefined> {
  const q = reading(r);
  const t = q.t.backupRuns;
  const rows = await q.db
    .select()
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.file, file)))
    .orderBy(desc(t.id))
    .limit(1);
  return rows[0];
}

/** The newest runs, newest first. */
export async function newestRuns(r: Reader | Tx, limit: number): Promise<BackupRunRow[]> {
  const q = reading(r);
  const t = q.t.backupRuns;
  return q.db.select().from(t).where(eq(t.trustCenterId, q.trustCenter)).orderBy(desc(t.id)).limit(limit);
}

/**
 * The newest run that is `written` (its backup written), `verified` (its restore check passed) or
 * `good` (written, and not failed its restore check).
 */
export async function newestRunThat(r: Reader | Tx, which: 'written' | 'verified' | 'good'): Promise<BackupRunRow | undefined> {
  const q = reading(r);
  const t = q.t.backupRuns;
  const condition =
    which === 'verified'
      ? eq(t.restoreOutcome, 'ok')
      : which === 'written'
        ? eq(t.outcome, 'ok')
        : and(eq(t.outcome, 'ok'), or(isNull(t.restoreOutcome), ne(t.restoreOutcome, 'failed')));
  const rows = await q.db
    .select()
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), condition))
    .orderBy(desc(t.id))
    .limit(1);
  return rows[0];
}

/** The backup jobs of `kind` pending or running, soonest first. */
export async function liveBackupJobs(r: Reader | Tx, kind: string): Promise<{ key: string; runAt: Date; status: 'pending' | 'running' }[]> {
  const q = reading(r);
  const j = q.t.jobs;
  const rows = await q.db
    .select({ key: j.key, runAt: j.runAt, status: j.status })
    .from(j)
    .where(and(eq(j.trustCenterId, q.trustCenter), eq(j.kind, kind), inArray(j.status, ['pending', 'running'])))
    .orderBy(asc(j.runAt));
  return rows.flatMap((row) => (row.status === 'pending' || row.status === 'running' ? [{ ...row, status: row.status }] : []));
}

/** When the first job of `kind` was made: when backups were first planned. */
export async function firstJobCreated(r: Reader | Tx, kind: string): Promise<Date | null> {
  const q = reading(r);
  const j = q.t.jobs;
  const rows = await q.db
    .select({ at: min(j.createdAt) })
    .from(j)
    .where(and(eq(j.trustCenterId, q.trustCenter), eq(j.kind, kind), isNotNull(j.createdAt)));
  return rows[0]?.at ?? null;
}

/** Records the alert `key`; false when it was recorded already (the unique key: staff were told). */
export async function insertAlert(tx: Tx, key: string, kind: 'failed' | 'overdue', now: Date): Promise<boolean> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.backupAlerts)
    .values({ key, kind, at: now, trustCenterId: q.trustCenter })
    .onConflictDoNothing()
    .returning({ key: q.t.backupAlerts.key });
  return rows.length === 1;
}

export async function setAlertNotification(tx: Tx, key: string, notificationId: number): Promise<void> {
  const q = query(tx);
  const a = q.t.backupAlerts;
  await q.db
    .update(a)
    .set({ notificationId })
    .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.key, key)));
}
