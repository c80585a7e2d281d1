/**
 * The history of service states (`component_states`) on SQLite and PostgreSQL alike: the rows an
 * incident's updates and the service listing write, the reads the 90-day bars, an incident's own
 * history and the status version take from them. What a row means (a state in effect, the worst at
 * a moment, uptime) is src/core/incidents/history.ts's and availability.ts's. Convention:
 * src/stores/rate-limits.ts.
 *
 * Rows are only ever inserted. Two writers of one incident's history are serialised by the caller's
 * transaction, which has updated that incident's row first (the row lock on PostgreSQL, `BEGIN
 * IMMEDIATE` on SQLite); the listing of services takes `lockListing` (an advisory lock) first.
 */
import { and, asc, eq, inArray, isNotNull, isNull, lt, max, min, ne, or, sql } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ComponentStatus, IncidentStatus } from '../core/incidents/types.ts';

export type StateSource = 'update' | 'maintenance' | 'automation' | 'listed' | 'backfill';

export interface StateRow {
  componentId: string;
  status: ComponentStatus;
  since: Date;
  incidentId: number | null;
  updateId: number | null;
  source: StateSource;
}

/** An incident's status and the state it declares for each service it names, by service; undefined when there is no such incident. */
export async function declaredStates(
  r: Reader | Tx,
  incidentId: number,
): Promise<{ status: IncidentStatus; declared: { componentId: string; status: ComponentStatus }[] } | undefined> {
  const q = reading(r);
  const { incidents, incidentComponents } = q.t;
  const [incident] = await q.db
    .select({ status: incidents.status })
    .from(incidents)
    .where(and(eq(incidents.trustCenterId, q.trustCenter), eq(incidents.id, incidentId)))
    .limit(1);
  if (!incident) return undefined;
  const declared = await q.db
    .select({ componentId: incidentComponents.componentId, status: incidentComponents.status })
    .from(incidentComponents)
    .where(and(eq(incidentComponents.trustCenterId, q.trustCenter), eq(incidentComponents.incidentId, incidentId)))
    .orderBy(asc(incidentComponents.componentId));
  return { status: incident.status, declared };
}

/** The last state the incident recorded for each service it has recorded one for. */
export async function lastIncidentStates(r: Reader | Tx, incidentId: number): Promise<Map<string, ComponentStatus>> {
  const q = reading(r);
  const s = q.t.componentStates;
  const rows = await q.db
    .select({ componentId: s.componentId, status: s.status })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.incidentId, incidentId)))
    .orderBy(asc(s.since), asc(s.id));
  // In time order, so the last one written for a service wins.
  return new Map(rows.map((row) => [row.componentId, row.status]));
}

export async function insertStates(tx: Tx, rows: readonly StateRow[]): Promise<void> {
  if (rows.length === 0) return;
  const q = query(tx);
  await q.db.insert(q.t.componentStates).values(rows.map((row) => ({ ...row, trustCenterId: q.trustCenter })));
}

/** First half of the advisory lock key: "component listing" (the second half is the trust center). */
const LISTING_LOCK = 0x434c5354;

/**
 * Makes the listing of services one writer at a time: nodes starting together on PostgreSQL would
 * each find a service unlisted and list it twice. SQLite's `BEGIN IMMEDIATE` already excludes them.
 */
export async function lockListing(tx: Tx): Promise<void> {
  if (tx.engine === 'sqlite') return;
  // Raw SQL: the builder has no advisory-lock functions.
  await tx.db.execute(sql`SELECT pg_advisory_xact_lock(${LISTING_LOCK}, ${tx.trustCenter})`);
}

/** The services whose history has begun (a 'listed' row). */
export async function listedComponentIds(r: Reader | Tx): Promise<Set<string>> {
  const q = reading(r);
  const s = q.t.componentStates;
  const rows = await q.db
    .selectDistinct({ componentId: s.componentId })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.source, 'listed')));
  return new Set(rows.map((row) => row.componentId));
}

/** When the installation began: its first published content or its first incident in effect, whichever is earlier; null for neither. */
export async function installationBegan(r: Reader | Tx): Promise<Date | null> {
  const q = reading(r);
  const { contentSnapshots, incidents } = q.t;
  const [content] = await q.db
    .select({ at: min(contentSnapshots.publishedAt) })
    .from(contentSnapshots)
    .where(eq(contentSnapshots.trustCenterId, q.trustCenter));
  const [incident] = await q.db
    .select({ at: min(incidents.startedAt) })
    .from(incidents)
    .where(and(eq(incidents.trustCenterId, q.trustCenter), ne(incidents.status, 'scheduled')));
  const times = [content?.at, incident?.at].filter((d): d is Date => d instanceof Date).map((d) => d.getTime());
  return times.length ? new Date(Math.min(...times)) : null;
}

/** Every state the incident has put any service in (distinct). */
export async function incidentStatuses(r: Reader | Tx, incidentId: number): Promise<ComponentStatus[]> {
  const q = reading(r);
  const s = q.t.componentStates;
  const rows = await q.db
    .selectDistinct({ status: s.status })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.incidentId, incidentId)));
  return rows.map((row) => row.status);
}

/** The incident's rows, by service and time. */
export async function incidentStateRows(
  r: Reader | Tx,
  incidentId: number,
): Promise<{ componentId: string; status: ComponentStatus; since: Date }[]> {
  const q = reading(r);
  const s = q.t.componentStates;
  return q.db
    .select({ componentId: s.componentId, status: s.status, since: s.since })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.incidentId, incidentId)))
    .orderBy(asc(s.componentId), asc(s.since), asc(s.id));
}

export interface PublicStateRow {
  componentId: string;
  status: ComponentStatus;
  since: Date;
  incidentId: number | null;
  source: StateSource;
  /** the incident's title; null for other sources */
  title: string | null;
}

/** Every row the public may see (of public incidents, or of no incident) from before `before`, by service and time. */
export async function publicStateRows(r: Reader | Tx, before: Date): Promise<PublicStateRow[]> {
  const q = reading(r);
  const { componentStates: s, incidents: i } = q.t;
  return q.db
    .select({ componentId: s.componentId, status: s.status, since: s.since, incidentId: s.incidentId, source: s.source, title: i.title })
    .from(s)
    .leftJoin(i, and(eq(i.id, s.incidentId), eq(i.trustCenterId, q.trustCenter)))
    .where(and(eq(s.trustCenterId, q.trustCenter), or(isNull(s.incidentId), eq(i.public, true)), lt(s.since, before)))
    .orderBy(asc(s.componentId), asc(s.since), asc(s.id));
}

/** Per service, the first and the latest state row the public sees (of public incidents, or of no incident). */
export async function publicStateSpans(r: Reader | Tx): Promise<{ componentId: string; first: Date; last: Date }[]> {
  const q = reading(r);
  const { componentStates: s, incidents: i } = q.t;
  const rows = await q.db
    .select({ componentId: s.componentId, first: min(s.since), last: max(s.since) })
    .from(s)
    .leftJoin(i, and(eq(i.id, s.incidentId), eq(i.trustCenterId, q.trustCenter)))
    .where(and(eq(s.trustCenterId, q.trustCenter), or(isNull(s.incidentId), eq(i.public, true))))
    .groupBy(s.componentId);
  return rows.flatMap((row) => (row.first && row.last ? [{ componentId: row.componentId, first: row.first, last: row.last }] : []));
}

/** The states these incidents' updates recorded, by incident, then time: which update set which service to what. */
export async function updateStateRows(
  r: Reader | Tx,
  incidentIds: readonly number[],
): Promise<{ incidentId: number; updateId: number; componentId: string; status: ComponentStatus }[]> {
  if (incidentIds.length === 0) return [];
  const q = reading(r);
  const s = q.t.componentStates;
  const rows = await q.db
    .select({ incidentId: s.incidentId, updateId: s.updateId, componentId: s.componentId, status: s.status })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), inArray(s.incidentId, [...incidentIds]), isNotNull(s.updateId)))
    .orderBy(asc(s.incidentId), asc(s.since), asc(s.id));
  return rows.flatMap((row) =>
    row.incidentId === null || row.updateId === null ? [] : [{ ...row, incidentId: row.incidentId, updateId: row.updateId }],
  );
}

/** What the status version is made of (src/core/incidents/status-version.ts). */
export interface VersionParts {
  /** the newest update of a public incident */
  update: number;
  /** public incidents */
  incidents: number;
  /** postmortems of public incidents */
  postmortems: number;
  /** the latest promised next update of an open public incident, milliseconds; 0 for none */
  promised: number;
  /** the newest state row the public sees */
  state: number;
  /** the newest revision of a public incident */
  revision: number;
  /** whether a public incident is under way */
  open: boolean;
}

/**
 * The status version's parts in one statement: it is asked on nearly every public request during a
 * surge (once per turn of the event loop), and one round trip costs a fraction of seven builder
 * queries. Raw SQL because the builder cannot select scalar subqueries without a FROM; each engine
 * spells booleans and time its own way, so each has its text. Public incidents only: work on a
 * breach without a public notice must not show as a fresh render. The newest row first by id, so
 * each lookup stops at the first public one.
 */
export async function versionParts(r: Reader | Tx): Promise<VersionParts> {
  const tc = r.trustCenter;
  if (r.engine === 'sqlite') {
    // better-sqlite3 answers synchronously; `all` is the read handle's raw-SQL call.
    const rows = r.db.all<Record<keyof VersionParts, number>>(sql`
      SELECT coalesce((SELECT u.id FROM incident_updates u JOIN incidents i ON i.id = u.incident_id
                        WHERE u.trust_center_id = ${tc} AND i.public = 1 ORDER BY u.id DESC LIMIT 1), 0) AS "update",
             (SELECT count(*) FROM incidents WHERE trust_center_id = ${tc} AND public = 1) AS incidents,
             (SELECT count(*) FROM postmortems p JOIN incidents i ON i.id = p.incident_id
               WHERE p.trust_center_id = ${tc} AND i.public = 1) AS postmortems,
             (SELECT coalesce(max(next_update_by), 0) FROM incidents
               WHERE trust_center_id = ${tc} AND status != 'resolved' AND public = 1) AS promised,
             coalesce((SELECT s.id FROM component_states s LEFT JOIN incidents i ON i.id = s.incident_id
                        WHERE s.trust_center_id = ${tc} AND (s.incident_id IS NULL OR i.public = 1) ORDER BY s.id DESC LIMIT 1), 0) AS state,
             coalesce((SELECT v.id FROM incident_revisions v JOIN incidents i ON i.id = v.incident_id
                        WHERE v.trust_center_id = ${tc} AND i.public = 1 ORDER BY v.id DESC LIMIT 1), 0) AS revision,
             EXISTS (SELECT 1 FROM incidents WHERE trust_center_id = ${tc} AND public = 1
                       AND status IN ('investigating', 'identified', 'monitoring', 'in_progress')) AS open`);
    return normalise(rows);
  }
  const result = await r.db.execute<Record<keyof VersionParts, string | number | boolean>>(sql`
    SELECT coalesce((SELECT u.id FROM incident_updates u JOIN incidents i ON i.id = u.incident_id
                      WHERE u.trust_center_id = ${tc} AND i.public ORDER BY u.id DESC LIMIT 1), 0) AS "update",
           (SELECT count(*) FROM incidents WHERE trust_center_id = ${tc} AND public) AS incidents,
           (SELECT count(*) FROM postmortems p JOIN incidents i ON i.id = p.incident_id
             WHERE p.trust_center_id = ${tc} AND i.public) AS postmortems,
           (SELECT coalesce(floor(extract(epoch FROM max(next_update_by)) * 1000), 0) FROM incidents
             WHERE trust_center_id = ${tc} AND status != 'resolved' AND public) AS promised,
           coalesce((SELECT s.id FROM component_states s LEFT JOIN incidents i ON i.id = s.incident_id
                      WHERE s.trust_center_id = ${tc} AND (s.incident_id IS NULL OR i.public) ORDER BY s.id DESC LIMIT 1), 0) AS state,
           coalesce((SELECT v.id FROM incident_revisions v JOIN incidents i ON i.id = v.incident_id
                      WHERE v.trust_center_id = ${tc} AND i.public ORDER BY v.id DESC LIMIT 1), 0) AS revision,
           EXISTS (SELECT 1 FROM incidents WHERE trust_center_id = ${tc} AND public
                     AND status IN ('investigating', 'identified', 'monitoring', 'in_progress')) AS open`);
  return normalise(result.rows);
}

/** count() and numeric come back as strings from node-postgres, booleans as 0/1 from SQLite. */
function normalise(rows: readonly Record<keyof VersionParts, string | number | boolean>[]): VersionParts {
  const row = rows[0];
  if (!row) throw new Error('the status version query returned no row');
  const n = (value: string | number | boolean) => Number(value);
  return {
    update: n(row.update),
    incidents: n(row.incidents),
    postmortems: n(row.postmortems),
    promised: n(row.promised),
    state: n(row.state),
    revision: n(row.revision),
    open: row.open === true || Number(row.open) === 1,
  };
}

/** For tests and callers that want the rows as written: every row of a service, in time order. */
export async function componentStateRows(r: Reader | Tx, componentId: string): Promise<StateRow[]> {
  const q = reading(r);
  const s = q.t.componentStates;
  return q.db
    .select({
      componentId: s.componentId,
      status: s.status,
      since: s.since,
      incidentId: s.incidentId,
      updateId: s.updateId,
      source: s.source,
    })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.componentId, componentId)))
    .orderBy(asc(s.since), asc(s.id));
}

/**
 * The latest state automation (alerts, the staff API) set on each of these services: rows of source
 * 'automation' without an incident. A service automation never touched has no entry.
 */
export async function latestAutomationStates(r: Reader | Tx, componentIds: readonly string[]): Promise<Map<string, ComponentStatus>> {
  const result = new Map<string, ComponentStatus>();
  if (componentIds.length === 0) return result;
  const q = reading(r);
  const s = q.t.componentStates;
  // The newest row of each service by id (automation rows are written in time order): one row per
  // service comes back, not every row a flapping alert ever wrote.
  const newest = q.db
    .select({ id: max(s.id) })
    .from(s)
    .where(
      and(eq(s.trustCenterId, q.trustCenter), eq(s.source, 'automation'), isNull(s.incidentId), inArray(s.componentId, [...componentIds])),
    )
    .groupBy(s.componentId);
  const rows = await q.db
    .select({ componentId: s.componentId, status: s.status })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), inArray(s.id, newest)));
  for (const row of rows) result.set(row.componentId, row.status);
  return result;
}
