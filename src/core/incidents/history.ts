import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import {
  declaredStates,
  incidentStateRows,
  incidentStatuses,
  insertStates,
  installationBegan,
  lastIncidentStates,
  listedComponentIds,
  lockListing,
  type StateRow,
  type StateSource,
} from '../../stores/component-states.ts';
import type { Component } from '../content/schema.ts';
import { type ComponentStatus, type IncidentStatus, worstStatus } from './types.ts';

export type { StateSource };

/** The state an incident puts a service in while it stands at `status`: none before maintenance begins or after the end. */
function inEffect(status: IncidentStatus, declared: ComponentStatus): ComponentStatus {
  return status === 'resolved' || status === 'scheduled' ? 'operational' : declared;
}

/**
 * Call in the transaction that published an update, after the incident and
 * its services were written: one row for each service whose state in
 * effect changed. Returns how many rows were written. Safe against a
 * concurrent publisher of the same incident because that transaction has
 * updated the incident's row first: on PostgreSQL the second waits for the
 * row lock and reads the history after the first committed; SQLite
 * serialises transactions.
 */
export async function recordIncidentStates(
  tx: Tx,
  incidentId: number,
  updateId: number | null,
  source: StateSource,
  now: Date,
): Promise<number> {
  const incident = await declaredStates(tx, incidentId);
  if (!incident) return 0;
  const last = await lastIncidentStates(tx, incidentId);
  const rows: StateRow[] = [];
  for (const row of incident.declared) {
    const state = inEffect(incident.status, row.status);
    if (state === (last.get(row.componentId) ?? 'operational')) continue;
    rows.push({ componentId: row.componentId, status: state, since: now, incidentId, updateId, source });
  }
  await insertStates(tx, rows);
  return rows.length;
}

/**
 * At start: services of content/components.yaml that have no history yet
 * begin theirs, operational. On the first start with this table (a new
 * installation, or an upgrade) that is when the installation began (its
 * first published content, or its first incident); a service added to
 * components.yaml later begins now. Days before show "no data".
 */
export async function recordListedComponents(database: Database, components: readonly Component[], now: Date): Promise<string[]> {
  // One lister at a time (an advisory lock on PostgreSQL), so nodes starting together list a service once.
  return database.transaction(async (tx) => {
    await lockListing(tx);
    const listed = await listedComponentIds(tx);
    const missing = components.filter((c) => !listed.has(c.id));
    if (missing.length === 0) return [];
    const since = listed.size === 0 ? new Date(Math.min(now.getTime(), (await installationBegan(tx))?.getTime() ?? now.getTime())) : now;
    await insertStates(
      tx,
      missing.map((c) => ({ componentId: c.id, status: 'operational', since, incidentId: null, updateId: null, source: 'listed' })),
    );
    return missing.map((c) => c.id);
  });
}

/** The worst state the incident has put any service in so far (from its history); 'operational' when none. */
export async function worstDeclared(r: Reader | Tx, incidentId: number): Promise<ComponentStatus> {
  return worstStatus(await incidentStatuses(r, incidentId));
}

export interface StateStretch {
  status: ComponentStatus;
  from: Date;
  /** null while it lasts */
  to: Date | null;
}

/** What the incident did to each service, in order: the states it declared and how long each lasted. */
export async function incidentStateHistory(r: Reader | Tx, incidentId: number): Promise<Map<string, StateStretch[]>> {
  const rows = await incidentStateRows(r, incidentId);
  const result = new Map<string, StateStretch[]>();
  rows.forEach((row, i) => {
    const next = rows[i + 1];
    if (row.status === 'operational') return;
    const list = result.get(row.componentId) ?? [];
    list.push({ status: row.status, from: row.since, to: next && next.componentId === row.componentId ? next.since : null });
    result.set(row.componentId, list);
  });
  return result;
}
