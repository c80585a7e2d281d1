/**
 * Scheduled maintenance windows on SQLite and PostgreSQL alike: the window an incident of kind
 * maintenance was announced for (columns of `incidents`) as its scheduler steps see it, and the
 * steps planned for it (rows of `jobs` keyed `maintenance:<id>:<step>`) as the console shows them.
 * What a step does is src/core/incidents/maintenance.ts's. Convention: src/stores/rate-limits.ts.
 *
 * A step reads the maintenance with `lockMaintenance` first in its transaction: on PostgreSQL a
 * row lock (`FOR UPDATE`), so two steps of one maintenance (a start and a completion that came due
 * together, or one step run on two nodes after its lease ran out) run one after the other and each
 * sees what the other committed; SQLite runs one transaction at a time.
 */
import { and, asc, eq, like } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import { incidents as pgIncidents } from '../../db/schema-pg.ts';
import type { IncidentStatus, MaintenanceWindow } from '../core/incidents/types.ts';

export interface MaintenanceState {
  kind: string;
  status: IncidentStatus;
  /** null when the incident has no window */
  window: MaintenanceWindow | null;
  createdBy: number | null;
}

/** The incident's status, window and author, its row locked until this transaction ends (PostgreSQL); undefined when there is none. */
export async function lockMaintenance(tx: Tx, incidentId: number): Promise<MaintenanceState | undefined> {
  let row: { kind: string; status: IncidentStatus; startsAt: Date | null; endsAt: Date | null; createdBy: number | null } | undefined;
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it, `BEGIN IMMEDIATE`).
    const i = pgIncidents;
    [row] = await tx.db
      .select({ kind: i.kind, status: i.status, startsAt: i.windowStartsAt, endsAt: i.windowEndsAt, createdBy: i.createdBy })
      .from(i)
      .where(and(eq(i.trustCenterId, tx.trustCenter), eq(i.id, incidentId)))
      .limit(1)
      .for('update');
  } else {
    const q = query(tx);
    const i = q.t.incidents;
    [row] = await q.db
      .select({ kind: i.kind, status: i.status, startsAt: i.windowStartsAt, endsAt: i.windowEndsAt, createdBy: i.createdBy })
      .from(i)
      .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, incidentId)))
      .limit(1);
  }
  if (!row) return undefined;
  const window = row.startsAt && row.endsAt ? { startsAt: row.startsAt, endsAt: row.endsAt } : null;
  return { kind: row.kind, status: row.status, window, createdBy: row.createdBy };
}

export interface PlannedStep {
  key: string;
  runAt: Date;
  status: 'pending' | 'running' | 'done' | 'cancelled' | 'failed';
  finishedAt: Date | null;
}

/** The jobs whose key starts with `prefix` (a maintenance's steps), by time. */
export async function jobsByKeyPrefix(r: Reader | Tx, prefix: string): Promise<PlannedStep[]> {
  const q = reading(r);
  const j = q.t.jobs;
  // The prefix is ours (`maintenance:<id>:`): no LIKE wildcard in it to escape.
  return q.db
    .select({ key: j.key, runAt: j.runAt, status: j.status, finishedAt: j.finishedAt })
    .from(j)
    .where(and(eq(j.trustCenterId, q.trustCenter), like(j.key, `${prefix}%`)))
    .orderBy(asc(j.runAt), asc(j.id));
}
