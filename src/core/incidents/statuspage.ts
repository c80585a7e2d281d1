/**
 * /api/v2/*.json in the shapes of Atlassian Statuspage's public API, so a tool
 * that reads a Statuspage page (aggregators, dashboards, chat bots) reads
 * Candor unchanged. What the public sees and nothing more: public incidents
 * only (a breach without a public notice is in no list, no count and no
 * service's state), services in the states /status shows (the same
 * `readCurrentComponentStatus`), groups in the worst state of their members.
 *
 * The shapes follow what Statuspage publishes and serves:
 * - each Statuspage page's own API reference (e.g. https://status.chargebee.com/api,
 *   https://confluence.status.atlassian.com/api): endpoints, `page`, `status`
 *   {indicator none|minor|major|critical, description}, components, incidents
 *   with `incident_updates`, scheduled maintenances with `scheduled_for` / `scheduled_until`;
 * - MongoDB's reference of its Statuspage-hosted API (https://www.mongodb.com/docs/api/doc/cloud-status/):
 *   required fields and types, update statuses scheduled / in_progress / verifying / completed;
 * - the `statuspage.io` npm client's types (dist/interfaces/Result.d.ts, 3.1.1): component
 *   fields `group`, `group_id`, `showcase`, `start_date`, `only_show_if_degraded`;
 * - a capture of cloudflarestatus.com/api/v2/summary.json: a group is a component with
 *   `group: true` and `components: [member ids]`, members name it in `group_id`, an update's
 *   `affected_components` are {code, name, old_status, new_status}, maintenance has impact `maintenance`.
 *
 * Candor's words map onto Statuspage's: `degraded` → `degraded_performance`; maintenance's
 * `monitoring` → `verifying` and `resolved` → `completed`; an incident's severity is its impact.
 * Ids are strings: an incident's and an update's number, a service's id from
 * content/components.yaml, a group's `group:<id>` (src/core/content/groups.ts), the page's the
 * public address's host name.
 */
import type { Database, Reader } from '../../../db/engine/types.ts';
import { publicStateSpans, updateStateRows } from '../../stores/component-states.ts';
import { componentGroups, groupOf, groupTopicKey } from '../content/groups.ts';
import type { Component } from '../content/schema.ts';
import { incidentUrl, readCurrentComponentStatus, readIncidents, readUpdatesOf } from './incidents.ts';
import { type ComponentStatus, type IncidentStatus, type IncidentView, type UpdateView, worstStatus } from './types.ts';

/** Statuspage answers the 50 most recent incidents and maintenances. */
export const STATUSPAGE_LIST_LIMIT = 50;

export type StatuspageComponentStatus = 'operational' | 'degraded_performance' | 'partial_outage' | 'major_outage' | 'under_maintenance';
export type StatuspageIndicator = 'none' | 'minor' | 'major' | 'critical';

const componentStatusOf: Record<ComponentStatus, StatuspageComponentStatus> = {
  operational: 'operational',
  degraded: 'degraded_performance',
  partial_outage: 'partial_outage',
  major_outage: 'major_outage',
  under_maintenance: 'under_maintenance',
};

/** The page's indicator and its words, from the worst state a service is in now (Statuspage's own wording). */
const indicatorOf: Record<ComponentStatus, { indicator: StatuspageIndicator; description: string }> = {
  operational: { indicator: 'none', description: 'All Systems Operational' },
  under_maintenance: { indicator: 'none', description: 'Service Under Maintenance' },
  degraded: { indicator: 'minor', description: 'Partially Degraded Service' },
  partial_outage: { indicator: 'major', description: 'Partial System Outage' },
  major_outage: { indicator: 'critical', description: 'Major System Outage' },
};

const maintenanceStatusOf: Record<IncidentStatus, string> = {
  scheduled: 'scheduled',
  in_progress: 'in_progress',
  monitoring: 'verifying',
  resolved: 'completed',
  investigating: 'in_progress',
  identified: 'in_progress',
};

/** An incident and what the public saw of it. */
export interface IncidentFacts {
  incident: IncidentView;
  /** newest first */
  updates: UpdateView[];
  /** the states its updates recorded, in time order */
  states: { updateId: number; componentId: string; status: ComponentStatus }[];
}

/** Everything the documents are made of, read in one snapshot. */
export interface StatuspageFacts {
  generatedAt: Date;
  page: { id: string; name: string; url: string };
  components: readonly Component[];
  /** each service's state now, and when its public history begins and last changed (null: none recorded) */
  states: { id: string; status: ComponentStatus; first: Date | null; last: Date | null }[];
  /** public incidents other than maintenance, newest first, at most STATUSPAGE_LIST_LIMIT */
  incidents: IncidentFacts[];
  /** public maintenance, newest first, at most STATUSPAGE_LIST_LIMIT */
  maintenances: IncidentFacts[];
}

export async function statuspageFacts(
  database: Database,
  content: { organisation: string; components: readonly Component[] },
  publicUrl: URL,
  now: Date,
): Promise<StatuspageFacts> {
  const { components } = content;
  return database.read(async (r) => {
    const current = await readCurrentComponentStatus(r, components);
    const spans = new Map((await publicStateSpans(r)).map((s) => [s.componentId, s]));
    const incidents = await factsOf(r, components, false);
    const maintenances = await factsOf(r, components, true);
    return {
      generatedAt: now,
      page: { id: publicUrl.hostname, name: content.organisation, url: publicUrl.href.replace(/\/$/, '') },
      components,
      states: current.map(({ component, status }) => ({
        id: component.id,
        status,
        first: spans.get(component.id)?.first ?? null,
        last: spans.get(component.id)?.last ?? null,
      })),
      incidents,
      maintenances,
    };
  });
}

/**
 * The public incidents (or maintenances) the documents list: the most recent, and every open one
 * however old (an unresolved incident older than the 50 newest must stay in unresolved.json and the
 * summary), newest first; with their updates and state rows read once for all of them.
 */
async function factsOf(r: Reader, components: readonly Component[], maintenance: boolean): Promise<IncidentFacts[]> {
  const recent = await readIncidents(r, components, { publicOnly: true, maintenance, limit: STATUSPAGE_LIST_LIMIT });
  const open = await readIncidents(r, components, { publicOnly: true, maintenance, open: true });
  const listed = new Set(recent.map((v) => v.id));
  const views = [...recent, ...open.filter((v) => !listed.has(v.id))];
  const ids = views.map((v) => v.id);
  const states = await updateStateRows(r, ids);
  const updates = await readUpdatesOf(r, ids);
  return views.map((incident) => ({
    incident,
    updates: updates.get(incident.id) ?? [],
    states: states.filter((s) => s.incidentId === incident.id),
  }));
}

const iso = (d: Date) => d.toISOString();
const latest = (dates: readonly (Date | null)[]): Date | null =>
  dates.reduce<Date | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
const earliest = (dates: readonly (Date | null)[]): Date | null =>
  dates.reduce<Date | null>((a, b) => (b !== null && (a === null || b < a) ? b : a), null);

/** When the page last changed: its newest recorded service state or published update; the time of asking when it has neither. */
function pageUpdatedAt(facts: StatuspageFacts): Date {
  const updates = [...facts.incidents, ...facts.maintenances].map((f) => updatedAtOf(f));
  return latest([...facts.states.map((s) => s.last), ...updates]) ?? facts.generatedAt;
}

function pageOf(facts: StatuspageFacts) {
  return { ...facts.page, time_zone: 'Etc/UTC', updated_at: iso(pageUpdatedAt(facts)) };
}

/** An unresolved incident raises the indicator to its impact, as Statuspage does, with Statuspage's words for it. */
const incidentIndicator: Record<IncidentView['severity'], { indicator: StatuspageIndicator; description: string }> = {
  minor: { indicator: 'minor', description: 'Minor Service Outage' },
  major: { indicator: 'major', description: 'Partial System Outage' },
  critical: { indicator: 'critical', description: 'Major System Outage' },
};
const indicatorRank: Record<StatuspageIndicator, number> = { none: 0, minor: 1, major: 2, critical: 3 };

/**
 * The page's indicator: the worst of the services' states now and the impact of each unresolved incident
 * (an incident declared with no service marked still raises it); the services' words when they decide it.
 */
export function statusOf(facts: StatuspageFacts) {
  let status = indicatorOf[worstStatus(facts.states.map((s) => s.status))];
  for (const { incident } of facts.incidents) {
    if (incident.status === 'resolved') continue;
    const raised = incidentIndicator[incident.severity];
    if (indicatorRank[raised.indicator] > indicatorRank[status.indicator]) status = raised;
  }
  return status;
}

/** A service, or a group (`group: true`, with its members' ids), as Statuspage lists components. */
export interface StatuspageComponent {
  id: string;
  name: string;
  status: StatuspageComponentStatus;
  created_at: string;
  updated_at: string;
  position: number;
  description: string | null;
  showcase: boolean;
  start_date: string | null;
  group_id: string | null;
  page_id: string;
  group: boolean;
  only_show_if_degraded: boolean;
  components?: string[];
}

/** The components list: each group (a component with `group: true`) followed by its members, ungrouped services in their place. */
export function componentsOf(facts: StatuspageFacts): StatuspageComponent[] {
  const pageId = facts.page.id;
  const stateOf = new Map(facts.states.map((s) => [s.id, s]));
  const fallback = pageUpdatedAt(facts);
  const service = (c: Component, position: number): StatuspageComponent => {
    const state = stateOf.get(c.id);
    const created = state?.first ?? fallback;
    const group = groupOf(c);
    return {
      id: c.id,
      name: c.name,
      status: componentStatusOf[state?.status ?? 'operational'],
      created_at: iso(created),
      updated_at: iso(state?.last ?? created),
      position,
      description: c.description,
      showcase: true,
      start_date: iso(created).slice(0, 10),
      group_id: group === null ? null : groupTopicKey(group),
      page_id: pageId,
      group: false,
      only_show_if_degraded: false,
    };
  };
  const groups = componentGroups(facts.components);
  const list: StatuspageComponent[] = [];
  const done = new Set<string>();
  let position = 0;
  for (const c of facts.components) {
    const groupId = groupOf(c);
    if (groupId === null) {
      list.push(service(c, ++position));
      continue;
    }
    if (done.has(groupId)) continue;
    done.add(groupId);
    const group = groups.find((g) => g.id === groupId);
    if (!group) continue;
    const members = group.components.map((m, i) => service(m, i + 1));
    const memberStates = group.components.map((m) => stateOf.get(m.id));
    const created = earliest(memberStates.map((s) => s?.first ?? null)) ?? fallback;
    list.push({
      id: groupTopicKey(group.id),
      name: group.name,
      status: componentStatusOf[worstStatus(memberStates.map((s) => s?.status ?? 'operational'))],
      created_at: iso(created),
      updated_at: iso(latest(memberStates.map((s) => s?.last ?? null)) ?? created),
      position: ++position,
      description: null,
      showcase: false,
      start_date: iso(created).slice(0, 10),
      group_id: null,
      page_id: pageId,
      group: true,
      only_show_if_degraded: false,
      components: group.components.map((m) => m.id),
    });
    list.push(...members);
  }
  return list;
}

function updatedAtOf(f: IncidentFacts): Date | null {
  return latest(f.updates.map((u) => latest([u.publishedAt, u.editedAt ?? null])));
}

/** One incident or maintenance in Statuspage's shape, its updates newest first. */
function incidentOf(facts: StatuspageFacts, f: IncidentFacts, publicUrl: URL, components: readonly StatuspageComponent[]) {
  const { incident } = f;
  const maintenance = incident.kind === 'maintenance';
  const status = (s: IncidentStatus) => (maintenance ? maintenanceStatusOf[s] : s);
  const id = String(incident.id);
  const oldest = f.updates.at(-1);
  const names = new Map(facts.components.map((c) => [c.id, c.name]));
  const affected = (update: UpdateView) => {
    const before = new Map<string, ComponentStatus>();
    const changes: { code: string; name: string; old_status: string; new_status: string }[] = [];
    for (const s of f.states) {
      if (s.updateId === update.id)
        changes.push({
          code: s.componentId,
          name: names.get(s.componentId) ?? s.componentId,
          old_status: componentStatusOf[before.get(s.componentId) ?? 'operational'],
          new_status: componentStatusOf[s.status],
        });
      before.set(s.componentId, s.status);
    }
    return changes.length ? changes : null;
  };
  const monitoring = f.updates.filter((u) => u.status === 'monitoring').at(-1);
  const created = oldest?.publishedAt ?? incident.startedAt;
  const document = {
    id,
    name: incident.title,
    status: status(incident.status),
    created_at: iso(created),
    updated_at: iso(updatedAtOf(f) ?? created),
    monitoring_at: monitoring ? iso(monitoring.publishedAt) : null,
    resolved_at: incident.resolvedAt ? iso(incident.resolvedAt) : null,
    impact: maintenance ? 'maintenance' : incident.severity,
    shortlink: incidentUrl(publicUrl, incident.id),
    started_at: iso(incident.startedAt),
    page_id: facts.page.id,
    incident_updates: f.updates.map((u) => ({
      id: String(u.id),
      status: status(u.status),
      body: u.body,
      incident_id: id,
      created_at: iso(u.publishedAt),
      updated_at: iso(u.editedAt ?? u.publishedAt),
      display_at: iso(u.publishedAt),
      affected_components: affected(u),
      deliver_notifications: u.notified !== false,
      custom_tweet: null,
      tweet_id: null,
    })),
    components: incident.components.flatMap((c) => components.filter((listed) => listed.id === c.id && !listed.group)),
  };
  if (!maintenance || !incident.window) return document;
  return { ...document, scheduled_for: iso(incident.window.startsAt), scheduled_until: iso(incident.window.endsAt) };
}

const open = (f: IncidentFacts) => f.incident.status !== 'resolved';
const upcoming = (f: IncidentFacts) => f.incident.status === 'scheduled';
const active = (f: IncidentFacts) => f.incident.status === 'in_progress' || f.incident.status === 'monitoring';
const bySchedule = (a: IncidentFacts, b: IncidentFacts) =>
  (a.incident.window?.startsAt.getTime() ?? 0) - (b.incident.window?.startsAt.getTime() ?? 0);

/** The documents, by path under /api/v2/. */
export const statuspageDocuments = {
  'summary.json': (facts: StatuspageFacts, publicUrl: URL) => {
    const components = componentsOf(facts);
    return {
      page: pageOf(facts),
      components,
      incidents: facts.incidents.filter(open).map((f) => incidentOf(facts, f, publicUrl, components)),
      scheduled_maintenances: facts.maintenances
        .filter((f) => upcoming(f) || active(f))
        .sort(bySchedule)
        .map((f) => incidentOf(facts, f, publicUrl, components)),
      status: statusOf(facts),
    };
  },
  'status.json': (facts: StatuspageFacts) => ({ page: pageOf(facts), status: statusOf(facts) }),
  'components.json': (facts: StatuspageFacts) => ({ page: pageOf(facts), components: componentsOf(facts) }),
  'incidents.json': (facts: StatuspageFacts, publicUrl: URL) => {
    const components = componentsOf(facts);
    return { page: pageOf(facts), incidents: facts.incidents.map((f) => incidentOf(facts, f, publicUrl, components)) };
  },
  'incidents/unresolved.json': (facts: StatuspageFacts, publicUrl: URL) => {
    const components = componentsOf(facts);
    return { page: pageOf(facts), incidents: facts.incidents.filter(open).map((f) => incidentOf(facts, f, publicUrl, components)) };
  },
  'scheduled-maintenances.json': (facts: StatuspageFacts, publicUrl: URL) => {
    const components = componentsOf(facts);
    return { page: pageOf(facts), scheduled_maintenances: facts.maintenances.map((f) => incidentOf(facts, f, publicUrl, components)) };
  },
  'scheduled-maintenances/upcoming.json': (facts: StatuspageFacts, publicUrl: URL) => {
    const components = componentsOf(facts);
    return {
      page: pageOf(facts),
      scheduled_maintenances: facts.maintenances
        .filter(upcoming)
        .sort(bySchedule)
        .map((f) => incidentOf(facts, f, publicUrl, components)),
    };
  },
  'scheduled-maintenances/active.json': (facts: StatuspageFacts, publicUrl: URL) => {
    const components = componentsOf(facts);
    return {
      page: pageOf(facts),
      scheduled_maintenances: facts.maintenances
        .filter(active)
        .sort(bySchedule)
        .map((f) => incidentOf(facts, f, publicUrl, components)),
    };
  },
} as const;

export type StatuspageDocumentName = keyof typeof statuspageDocuments;
export const statuspageDocumentNames = Object.keys(statuspageDocuments) as StatuspageDocumentName[];
