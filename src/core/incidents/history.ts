/**
 * Writing the history of service states (table component_states): every
 * change of the state a source declares for a service, with its time. An
 * incident declares a state for each service it affects from the moment it
 * is in effect (maintenance from its start, not its announcement) until it
 * is resolved; each published update records the services whose state in
 * effect it changed, in the update's own transaction. Where each service's
 * data begins is recorded when it first appears on the status page.
 * src/core/incidents/availability.ts reads the history.
 */
import type { Db } from '../../../db/client.ts';
import type { Component } from '../content/schema.ts';
import { type ComponentStatus, type IncidentStatus, worstStatus } from './types.ts';

export type StateSource = 'update' | 'maintenance' | 'automation' | 'listed' | 'backfill';

/** The state an incident puts a service in while it stands at `status`: none before maintenance begins or after the end. */
function inEffect(status: IncidentStatus, declared: ComponentStatus): ComponentStatus {
  return status === 'resolved' || status === 'scheduled' ? 'operational' : declared;
}

/**
 * Call in the transaction that published an update, after the incident and
 * its services were written: one row for each service whose state in
 * effect changed. Returns how many rows were written.
 */
export function recordIncidentStates(db: Db, incidentId: number, updateId: number | null, source: StateSource, now: Date): number {
  const sqlite = db.$client;
  const incident = sqlite.prepare('SELECT status FROM incidents WHERE id = ?').get(incidentId) as { status: IncidentStatus } | undefined;
  if (!incident) return 0;
  const declared = sqlite
    .prepare('SELECT component_id, status FROM incident_components WHERE incident_id = ? ORDER BY component_id')
    .all(incidentId) as { component_id: string; status: ComponentStatus }[];
  const last = sqlite.prepare(
    'SELECT status FROM component_states WHERE incident_id = ? AND component_id = ? ORDER BY since DESC, id DESC LIMIT 1',
  );
  const insert = sqlite.prepare(
    'INSERT INTO component_states (component_id, status, since, incident_id, update_id, source) VALUES (?, ?, ?, ?, ?, ?)',
  );
  let written = 0;
  for (const row of declared) {
    const state = inEffect(incident.status, row.status);
    const previous = (last.get(incidentId, row.component_id) as { status: ComponentStatus } | undefined)?.status ?? 'operational';
    if (state === previous) continue;
    insert.run(row.component_id, state, now.getTime(), incidentId, updateId, source);
    written++;
  }
  return written;
}

/**
 * At start: services of content/components.yaml that have no history yet
 * begin theirs, operational. On the first start with this table (a new
 * installation, or an upgrade) that is when the installation began (its
 * first published content, or its first incident); a service added to
 * components.yaml later begins now. Days before show "no data".
 */
export function recordListedComponents(db: Db, components: readonly Component[], now: Date): string[] {
  const sqlite = db.$client;
  return sqlite
    .transaction(() => {
      const listed = new Set(
        (
          sqlite.prepare(`SELECT DISTINCT component_id FROM component_states WHERE source = 'listed'`).all() as { component_id: string }[]
        ).map((r) => r.component_id),
      );
      const missing = components.filter((c) => !listed.has(c.id));
      if (missing.length === 0) return [];
      let since = now.getTime();
      if (listed.size === 0) {
        const { began } = sqlite
          .prepare(
            `SELECT min(coalesce((SELECT min(published_at) FROM content_snapshots), @now),
                        coalesce((SELECT min(started_at) FROM incidents WHERE status != 'scheduled'), @now), @now) AS began`,
          )
          .get({ now: now.getTime() }) as { began: number };
        since = began;
      }
      const insert = sqlite.prepare(
        `INSERT INTO component_states (component_id, status, since, incident_id, update_id, source) VALUES (?, 'operational', ?, NULL, NULL, 'listed')`,
      );
      for (const c of missing) insert.run(c.id, since);
      return missing.map((c) => c.id);
    })
    .immediate();
}

/** The worst state the incident has put any service in so far (from its history); 'operational' when none. */
export function worstDeclared(db: Db, incidentId: number): ComponentStatus {
  const rows = db.$client.prepare('SELECT DISTINCT status FROM component_states WHERE incident_id = ?').all(incidentId) as {
    status: ComponentStatus;
  }[];
  return worstStatus(rows.map((r) => r.status));
}

export interface StateStretch {
  status: ComponentStatus;
  from: Date;
  /** null while it lasts */
  to: Date | null;
}

/** What the incident did to each service, in order: the states it declared and how long each lasted. */
export function incidentStateHistory(db: Db, incidentId: number): Map<string, StateStretch[]> {
  const rows = db.$client
    .prepare('SELECT component_id, status, since FROM component_states WHERE incident_id = ? ORDER BY component_id, since, id')
    .all(incidentId) as { component_id: string; status: ComponentStatus; since: number }[];
  const result = new Map<string, StateStretch[]>();
  rows.forEach((row, i) => {
    const next = rows[i + 1];
    if (row.status === 'operational') return;
    const list = result.get(row.component_id) ?? [];
    list.push({
      status: row.status,
      from: new Date(row.since),
      to: next && next.component_id === row.component_id ? new Date(next.since) : null,
    });
    result.set(row.component_id, list);
  });
  return result;
}
