/**
 * What the public sees of incidents: the status of each service, open
 * incidents, history, feeds and status.json. Only public incidents: a
 * breach without a public notice stays with its audience.
 */
import type { Db } from '../../../db/client.ts';
import type { Component, Site } from '../content/schema.ts';
import type { FeedEntry } from '../feeds/sources.ts';
import { maintenanceCalendar } from './calendar.ts';
import { currentComponentStatus, incidentUrl, incidentView, listIncidents } from './incidents.ts';
import { renderMarkdown } from './markdown.ts';
import { componentStatusLabels, type IncidentView, incidentKindLabels, updateLabel } from './types.ts';

const DAY = 86_400_000;

export interface StatusSnapshot {
  generatedAt: Date;
  overall: 'operational' | 'degraded' | 'outage' | 'maintenance';
  components: { id: string; name: string; group: string | null; status: string; label: string }[];
  open: IncidentView[];
  /** scheduled maintenance not yet begun, soonest first */
  upcoming: IncidentView[];
  history: IncidentView[];
}

export function statusSnapshot(db: Db, components: readonly Component[], now: Date): StatusSnapshot {
  const current = currentComponentStatus(db, components);
  const unresolved = listIncidents(db, components, { open: true, publicOnly: true });
  const open = unresolved.filter((i) => i.status !== 'scheduled');
  const upcoming = unresolved
    .filter((i) => i.status === 'scheduled')
    .sort((a, b) => (a.window?.startsAt.getTime() ?? 0) - (b.window?.startsAt.getTime() ?? 0));
  const history = listIncidents(db, components, { publicOnly: true, since: new Date(now.getTime() - 90 * DAY), limit: 200 }).filter(
    (i) => i.status === 'resolved',
  );
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
  };
}

/** A public incident with its updates, or null when it does not exist or is not public. */
export function publicIncident(db: Db, components: readonly Component[], id: number) {
  const record = incidentView(db, components, id);
  return record?.public ? record : null;
}

export function incidentFeedEntries(db: Db, components: readonly Component[], publicUrl: URL, limit = 50): FeedEntry[] {
  return listIncidents(db, components, { publicOnly: true, limit }).map((incident) => {
    const record = incidentView(db, components, incident.id);
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
    version: '1.0',
    generatedAt: snapshot.generatedAt.toISOString(),
    overall: snapshot.overall,
    components: snapshot.components.map((c) => ({ id: c.id, name: c.name, group: c.group, status: c.status })),
    openIncidents: snapshot.open.map(incident),
    upcomingMaintenance: snapshot.upcoming.map(incident),
    recentIncidents: snapshot.history.map(incident),
  };
}

/** The .ics of a public maintenance window, or null when there is none. */
export function maintenanceCalendarFor(
  db: Db,
  content: { site: Site; components: readonly Component[] },
  publicUrl: URL,
  id: number,
  now: Date,
): string | null {
  const record = publicIncident(db, content.components, id);
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
