/**
 * What the public sees of incidents: the status of each service, open
 * incidents, history, feeds and status.json. Only public incidents: a
 * breach without a public notice stays with its audience.
 * The incidents and the services' history are read in one snapshot of
 * `database` (src/stores/incidents.ts, history.ts, availability.ts).
 */
import type { Database } from '../../../db/engine/types.ts';
import { groupIdOf } from '../content/groups.ts';
import type { Component, Site } from '../content/schema.ts';
import type { FeedEntry } from '../feeds/sources.ts';
import { type ComponentAvailability, dailyAvailability } from './availability.ts';
import { maintenanceCalendar } from './calendar.ts';
import { worstDeclared } from './history.ts';
import {
  incidentUrl,
  incidentView,
  readCurrentComponentStatus,
  readIncident,
  readIncidents,
  readLatestUpdate,
  readPublicIncidentsBetween,
} from './incidents.ts';
import { renderMarkdown } from './markdown.ts';
import {
  type ComponentStatus,
  componentStatusLabels,
  componentStatusRank,
  type IncidentView,
  incidentKindLabels,
  type UpdateView,
  updateLabel,
  worstStatus,
} from './types.ts';

const DAY = 86_400_000;
/** The days of history /status shows; narrow screens show the last RECENT_DAYS of them. */
export const HISTORY_DAYS = 90;
export const RECENT_DAYS = 30;

export interface StatusSnapshot {
  generatedAt: Date;
  overall: 'operational' | 'degraded' | 'outage' | 'maintenance';
  /** the worst state any service is in now */
  worst: ComponentStatus;
  components: { id: string; name: string; group: string | null; status: ComponentStatus; label: string }[];
  /** open incidents, newest first, each with its latest update */
  open: (IncidentView & { latest: UpdateView | null })[];
  /** scheduled maintenance not yet begun, soonest first */
  upcoming: IncidentView[];
  /** public incidents of the past HISTORY_DAYS days, open ones included, newest first, with the worst state each declared */
  history: (IncidentView & { impact: ComponentStatus })[];
  /** per service, the HISTORY_DAYS days and their uptime, from the recorded history */
  availability: ComponentAvailability[];
}

export async function statusSnapshot(database: Database, components: readonly Component[], now: Date): Promise<StatusSnapshot> {
  const windowStart = new Date(Math.floor(now.getTime() / DAY) * DAY - (HISTORY_DAYS - 1) * DAY);
  const { current, unresolved, open, history, availability } = await database.read(async (r) => {
    const current = await readCurrentComponentStatus(r, components);
    const unresolved = await readIncidents(r, components, { open: true, publicOnly: true });
    const open: StatusSnapshot['open'] = [];
    for (const i of unresolved) if (i.status !== 'scheduled') open.push({ ...i, latest: await readLatestUpdate(r, i.id) });
    const history: StatusSnapshot['history'] = [];
    for (const i of await readPublicIncidentsBetween(r, components, windowStart, now))
      history.push({ ...i, impact: await worstDeclared(r, i.id) });
    const availability = await dailyAvailability(r, components, now, HISTORY_DAYS, RECENT_DAYS);
    return { current, unresolved, open, history, availability };
  });
  const upcoming = unresolved
    .filter((i) => i.status === 'scheduled')
    .sort((a, b) => (a.window?.startsAt.getTime() ?? 0) - (b.window?.startsAt.getTime() ?? 0));
  const statuses = current.map((c) => c.status);
  const overall = statuses.some((s) => s === 'major_outage' || s === 'partial_outage')
    ? 'outage'
    : statuses.includes('degraded')
      ? 'degraded'
      : statuses.includes('under_maintenance')
        ? 'maintenance'
        : 'operational';
  return {
    generatedAt: now,
    overall,
    worst: worstStatus(statuses),
    components: current.map(({ component, status }) => ({
      id: component.id,
      name: component.name,
      group: component.group ?? null,
      status,
      label: componentStatusLabels[status],
    })),
    open,
    upcoming,
    history,
    availability,
  };
}

/** A group of services on /status: its members' states rolled up into the worst of them. */
export interface StatusGroup {
  /** the group's id (src/core/content/groups.ts); null for the services that belong to no group */
  id: string | null;
  name: string;
  /** the worst state of its members */
  status: ComponentStatus;
  label: string;
  components: StatusSnapshot['components'];
}

/** The groups of /status in the order of content/components.yaml, each in its members' worst state; services without a group under "Services". */
export function statusGroups(snapshot: Pick<StatusSnapshot, 'components'>): StatusGroup[] {
  const groups = new Map<string | null, StatusGroup>();
  for (const c of snapshot.components) {
    const id = c.group === null ? null : groupIdOf(c.group);
    const group = groups.get(id) ?? { id, name: c.group ?? 'Services', status: 'operational', label: '', components: [] };
    group.components.push(c);
    groups.set(id, group);
  }
  return [...groups.values()].map((g) => {
    const status = worstStatus(g.components.map((c) => c.status));
    return { ...g, status, label: componentStatusLabels[status] };
  });
}

/** "A", "A and B", "A, B and C"; more than three: "5 services". */
function names(list: readonly string[]): string {
  if (list.length > 3) return `${list.length} services`;
  return list.length <= 1 ? (list[0] ?? '') : `${list.slice(0, -1).join(', ')} and ${list.at(-1)}`;
}

/**
 * The banner of /status in the words of the state column: the worst state
 * now and the services in it ("Major outage: Public API"), then the other
 * states that are not operational.
 */
export function statusHeadline(snapshot: Pick<StatusSnapshot, 'worst' | 'components'>): { headline: string; others: string[] } {
  if (snapshot.worst === 'operational') return { headline: 'All services are operational', others: [] };
  const line = (state: ComponentStatus) =>
    `${componentStatusLabels[state]}: ${names(snapshot.components.filter((c) => c.status === state).map((c) => c.name))}`;
  const others = [...new Set(snapshot.components.map((c) => c.status))]
    .filter((s) => s !== 'operational' && s !== snapshot.worst)
    .sort((a, b) => componentStatusRank[b] - componentStatusRank[a]);
  return { headline: line(snapshot.worst), others: others.map(line) };
}

/** A public incident with its updates, or null when it does not exist or is not public. */
export async function publicIncident(database: Database, components: readonly Component[], id: number) {
  const record = await incidentView(database, components, id);
  return record?.public ? record : null;
}

export async function incidentFeedEntries(
  database: Database,
  components: readonly Component[],
  publicUrl: URL,
  limit = 50,
): Promise<FeedEntry[]> {
  const records = await database.read(async (r) => {
    const found = [];
    for (const incident of await readIncidents(r, components, { publicOnly: true, limit }))
      found.push({ incident, record: await readIncident(r, components, incident.id) });
    return found;
  });
  return records.map(({ incident, record }) => {
    const updates = record?.updates ?? [];
    const latest = updates[0];
    const url = incidentUrl(publicUrl, incident.id);
    const rendered = updates
      .map(
        (u) =>
          `<h3>${updateLabel(incident, u.status)} · ${u.publishedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC</h3>${renderMarkdown(u.body).html}`,
      )
      .join('\n');
    return {
      id: url,
      title: `${incident.title} (${updateLabel(incident, incident.status)})`,
      url,
      summary: latest ? renderMarkdown(latest.body).text.slice(0, 500) : incident.title,
      contentHtml: rendered,
      published: incident.startedAt,
      updated: latest?.publishedAt ?? incident.startedAt,
      categories: [incidentKindLabels[incident.kind], incident.severity, ...incident.components.map((c) => c.name)],
    };
  });
}

/** /api/v1/status.json: the same data as /status, for machines. */
export function statusDocument(snapshot: StatusSnapshot, publicUrl: URL) {
  const availability = new Map(snapshot.availability.map((a) => [a.id, a]));
  const history = (id: string) => {
    const a = availability.get(id);
    if (!a) return null;
    return {
      /** where the service's recorded history begins; days before have no data */
      since: a.since?.toISOString() ?? null,
      /** over the days listed, weighted as Statuspage does (major outage 100 %, partial outage 30 %) */
      uptimePercent: a.uptimePercent,
      days: a.days.map((d) => ({
        date: d.date,
        state: d.state,
        uptimePercent: d.uptimePercent,
        intervals: d.intervals.map((i) => ({
          status: i.status,
          from: i.from.toISOString(),
          to: i.to?.toISOString() ?? null,
          seconds: Math.round(i.ms / 1000),
          incidentId: i.incident?.id ?? null,
        })),
      })),
    };
  };
  const incident = (i: IncidentView) => ({
    id: i.id,
    url: incidentUrl(publicUrl, i.id),
    kind: i.kind,
    severity: i.severity,
    title: i.title,
    status: i.status,
    startedAt: i.startedAt.toISOString(),
    resolvedAt: i.resolvedAt?.toISOString() ?? null,
    nextUpdateBy: i.nextUpdateBy?.toISOString() ?? null,
    window: i.window ? { startsAt: i.window.startsAt.toISOString(), endsAt: i.window.endsAt.toISOString() } : null,
    components: i.components.map((c) => ({ id: c.id, status: c.status })),
  });
  return {
    version: '1.1',
    generatedAt: snapshot.generatedAt.toISOString(),
    overall: snapshot.overall,
    worst: snapshot.worst,
    components: snapshot.components.map((c) => ({ id: c.id, name: c.name, group: c.group, status: c.status, history: history(c.id) })),
    openIncidents: snapshot.open.map((i) => ({
      ...incident(i),
      latestUpdate: i.latest ? { status: i.latest.status, body: i.latest.body, publishedAt: i.latest.publishedAt.toISOString() } : null,
    })),
    upcomingMaintenance: snapshot.upcoming.map(incident),
    recentIncidents: snapshot.history.map(incident),
  };
}

/** The .ics of a public maintenance window, or null when there is none. */
export async function maintenanceCalendarFor(
  database: Database,
  content: { site: Site; components: readonly Component[] },
  publicUrl: URL,
  id: number,
  now: Date,
): Promise<string | null> {
  const record = await publicIncident(database, content.components, id);
  if (record?.incident.kind !== 'maintenance') return null;
  const announcement = record.updates.at(-1);
  return maintenanceCalendar({
    incident: record.incident,
    organisation: content.site.organisation.name,
    url: incidentUrl(publicUrl, id),
    host: publicUrl.hostname,
    now,
    description: announcement ? renderMarkdown(announcement.body).text : record.incident.title,
  });
}
