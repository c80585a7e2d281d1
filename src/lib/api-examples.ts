/**
 * Example responses for /api, made at build time by the same functions the
 * endpoints use, from the content and a fictional incident, so an example
 * has exactly the shape the endpoint serves. Lists are cut to their first
 * item. Dates are fixed: the page is the same at every build.
 */
import type { changesDocument, subprocessorsDocument } from '../core/changes/public.ts';
import { locationLabel } from '../core/content/locations.ts';
import type { Component, Site, Subprocessor } from '../core/content/schema.ts';
import { renderFeed } from '../core/feeds/feed.ts';
import { feedBuilders } from '../core/feeds/sources.ts';
import type { DayAvailability } from '../core/incidents/availability.ts';
import { maintenanceCalendar } from '../core/incidents/calendar.ts';
import { incidentUrl } from '../core/incidents/incidents.ts';
import { type StatusSnapshot, statusDocument } from '../core/incidents/public.ts';
import { type StatuspageDocumentName, type StatuspageFacts, statuspageDocuments } from '../core/incidents/statuspage.ts';
import type { IncidentView } from '../core/incidents/types.ts';
import { buildSecurityTxt } from '../core/trust/security-txt.ts';
import { buildTrustDocument } from '../core/trust/trust-document.ts';

/** Where the examples' absolute addresses point; a real trust center uses its CANDOR_PUBLIC_URL. */
export const EXAMPLE_URL = new URL('https://trust.example.com/');
const AT = new Date('2026-03-14T09:30:00Z');

export interface ExampleInput {
  site: Site;
  docs: readonly { slug: string; title: string; summary: string; updated: Date }[];
  components: readonly Component[];
}

/**
 * Fictional: content/ may hold a subprocessor whose notice is not yet published, and the page is
 * built from content/, so no example names a real one.
 */
const EXAMPLE_SUBPROCESSORS: Subprocessor[] = [
  {
    id: 'example-cloud',
    name: 'Example Cloud',
    entity: 'Example Cloud GmbH',
    category: 'infrastructure',
    purpose: 'Application servers and encrypted backups for EU workspaces.',
    dataCategories: ['Workspace content', 'Account data'],
    countries: ['DE', 'IE'],
    regions: [],
    transferMechanism: 'Not applicable (EU processing)',
    dpaUrl: 'https://cloud.example.com/dpa',
    website: 'https://cloud.example.com',
    since: new Date('2024-01-15T00:00:00Z'),
  },
  {
    id: 'example-mail',
    name: 'Example Mail',
    entity: 'Example Mail, Inc.',
    category: 'email',
    purpose: 'Delivery of transactional email.',
    dataCategories: ['Recipient name and email address', 'Email content'],
    countries: ['IE'],
    regions: [],
    transferMechanism: 'EU Standard Contractual Clauses',
    dpaUrl: 'https://mail.example.com/dpa',
    website: 'https://mail.example.com',
    since: new Date('2025-06-02T00:00:00Z'),
  },
];

/** The first item of every list, all the way down. */
function firstOnly(value: unknown): unknown {
  if (Array.isArray(value)) return value.slice(0, 1).map(firstOnly);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, firstOnly(v)]));
  return value;
}

const json = (value: unknown) => `${JSON.stringify(firstOnly(value), null, 2)}\n`;

function incidents(components: readonly Component[]): { outage: IncidentView; maintenance: IncidentView } {
  const [first, second] = components;
  const component = (c: Component | undefined, status: IncidentView['components'][number]['status']) =>
    c ? [{ id: c.id, name: c.name, status }] : [];
  return {
    outage: {
      id: 42,
      kind: 'outage',
      severity: 'major',
      title: 'Slow page loads in the EU region',
      status: 'identified',
      components: component(first, 'degraded'),
      startedAt: new Date(AT.getTime() - 40 * 60_000),
      resolvedAt: null,
      nextUpdateBy: new Date(AT.getTime() + 30 * 60_000),
      window: null,
    },
    maintenance: {
      id: 43,
      kind: 'maintenance',
      severity: 'minor',
      title: 'Database upgrade',
      status: 'scheduled',
      components: component(second ?? first, 'under_maintenance'),
      startedAt: AT,
      resolvedAt: null,
      nextUpdateBy: null,
      window: { startsAt: new Date('2026-03-21T06:00:00Z'), endsAt: new Date('2026-03-21T07:00:00Z') },
    },
  };
}

export function trustJsonExample(input: ExampleInput): string {
  return json(buildTrustDocument({ site: input.site, docs: input.docs, subprocessors: EXAMPLE_SUBPROCESSORS, publicUrl: EXAMPLE_URL }));
}

export function statusJsonExample(input: ExampleInput): string {
  const { outage, maintenance } = incidents(input.components);
  const affected = outage.components[0]?.id;
  const day = (date: string, degradedMs: number): DayAvailability => ({
    date,
    state: degradedMs > 0 ? 'degraded' : 'operational',
    measuredMs: 86_400_000,
    ms: { operational: 86_400_000 - degradedMs, degraded: degradedMs, partial_outage: 0, major_outage: 0, under_maintenance: 0 },
    uptimePercent: 100,
    intervals:
      degradedMs > 0 ? [{ status: 'degraded', from: AT, to: null, ms: degradedMs, incident: { id: outage.id, title: outage.title } }] : [],
  });
  const snapshot: StatusSnapshot = {
    generatedAt: AT,
    overall: 'degraded',
    worst: 'degraded',
    components: input.components.map((c) => ({
      id: c.id,
      name: c.name,
      group: c.group ?? null,
      status: c.id === affected ? 'degraded' : 'operational',
      label: '',
    })),
    open: [
      { ...outage, latest: { id: 1, status: 'investigating', body: 'Search answers slowly; we are looking into it.', publishedAt: AT } },
    ],
    upcoming: [maintenance],
    history: [
      { ...outage, id: 41, status: 'resolved', resolvedAt: new Date('2026-02-02T11:05:00Z'), nextUpdateBy: null, impact: 'degraded' },
    ],
    // one service, its last two days, to show the shape (the real document has every service and 90 days)
    availability: input.components.slice(0, 1).map((c) => ({
      id: c.id,
      name: c.name,
      since: new Date('2025-01-01T00:00:00Z'),
      days: [day('2026-03-13', 0), day('2026-03-14', c.id === affected ? 2_700_000 : 0)],
      uptimePercent: 100,
      recentUptimePercent: 100,
    })),
  };
  return json(statusDocument(snapshot, EXAMPLE_URL));
}

/** An /api/v2 document (Statuspage's shape) during the example incident, with the example maintenance ahead. */
export function statuspageExample(input: ExampleInput, name: StatuspageDocumentName): string {
  const { outage, maintenance } = incidents(input.components);
  const affected = outage.components[0]?.id;
  const since = new Date('2025-01-01T00:00:00Z');
  const update = (id: number, status: IncidentView['status'], body: string, minutes: number) => ({
    id,
    status,
    body,
    publishedAt: new Date(AT.getTime() - minutes * 60_000),
    notified: true,
    editedAt: null,
  });
  const facts: StatuspageFacts = {
    generatedAt: AT,
    page: { id: EXAMPLE_URL.hostname, name: input.site.organisation.name, url: EXAMPLE_URL.href.replace(/\/$/, '') },
    components: input.components,
    states: input.components.map((c) => ({
      id: c.id,
      status: c.id === affected ? 'degraded' : 'operational',
      first: since,
      last: c.id === affected ? outage.startedAt : since,
    })),
    incidents: [
      {
        incident: outage,
        updates: [
          update(102, 'identified', 'A faulty cache node slows the EU region; we are replacing it.', 10),
          update(101, 'investigating', 'Pages load slowly in the EU region; we are looking into it.', 40),
        ],
        states: affected ? [{ updateId: 101, componentId: affected, status: 'degraded' }] : [],
      },
    ],
    maintenances: [
      {
        incident: maintenance,
        updates: [update(103, 'scheduled', 'We will upgrade the database during the window.', 0)],
        states: [],
      },
    ],
  };
  return json(statuspageDocuments[name](facts, EXAMPLE_URL));
}

export function subprocessorsJsonExample(): string {
  const [current, coming] = EXAMPLE_SUBPROCESSORS;
  const entry = (s: Subprocessor) => ({ ...s, location: locationLabel(s), since: s.since.toISOString().slice(0, 10) });
  const example: Awaited<ReturnType<typeof subprocessorsDocument>> = {
    version: '1.0',
    generatedAt: AT.toISOString(),
    asOf: '2026-03-14',
    subprocessors: current ? [entry(current)] : [],
    coming: coming ? [{ notice: 7, change: 'changed', effectiveOn: '2026-04-13', fields: ['location'], subprocessor: entry(coming) }] : [],
    history: [
      {
        notice: 7,
        url: new URL('changes#notice-7', EXAMPLE_URL).href,
        change: 'changed',
        subprocessorId: coming?.id ?? current?.id ?? 'example',
        name: coming?.name ?? current?.name ?? 'Example',
        publishedAt: AT.toISOString(),
        effectiveOn: '2026-04-13',
        objectionDeadline: '2026-04-06',
        fields: ['location'],
      },
    ],
  };
  return json(example);
}

export function changesJsonExample(): string {
  const [current] = EXAMPLE_SUBPROCESSORS;
  const example: Awaited<ReturnType<typeof changesDocument>> = {
    version: '1.0',
    generatedAt: AT.toISOString(),
    changes: [
      {
        id: 'announcement-3',
        type: 'announcement',
        url: new URL('changes#announcement-3', EXAMPLE_URL).href,
        title: 'A new data region in Frankfurt',
        topics: ['subprocessors', 'docs'],
        publishedAt: AT.toISOString(),
        effectiveOn: '2026-04-01',
        objectionDeadline: null,
        change: null,
        name: null,
        text: 'From 1 April, new EU workspaces are hosted in Frankfurt. Existing workspaces can move on request.',
      },
      {
        id: 'notice-7',
        type: 'subprocessor-notice',
        url: new URL('changes#notice-7', EXAMPLE_URL).href,
        title: `Subprocessor change: ${current?.name ?? 'Example'}`,
        topics: ['subprocessors'],
        publishedAt: new Date(AT.getTime() - 86_400_000).toISOString(),
        effectiveOn: '2026-04-13',
        objectionDeadline: '2026-04-06',
        change: 'changed',
        name: current?.name ?? 'Example',
        text: 'Our backups move to a second region. The details that change are listed below, and you may object.',
      },
    ],
  };
  return json(example);
}

export function feedExample(input: ExampleInput): string {
  const { outage } = incidents(input.components);
  const url = incidentUrl(EXAMPLE_URL, outage.id);
  const feed = feedBuilders.incidents({
    site: input.site,
    publicUrl: EXAMPLE_URL,
    entries: [
      {
        id: url,
        title: `${outage.title} (Identified)`,
        url,
        summary: 'We found the cause: a saturated database replica. Page loads are recovering.',
        contentHtml: '<h3>Identified · 2026-03-14 09:30 UTC</h3><p>We found the cause: a saturated database replica.</p>',
        published: outage.startedAt,
        updated: AT,
        categories: ['Service disruption', 'major', ...outage.components.map((c) => c.name)],
      },
    ],
    emptyUpdated: AT,
  });
  return renderFeed(feed, 'json').body;
}

export function calendarExample(input: ExampleInput): string {
  const { maintenance } = incidents(input.components);
  return (
    maintenanceCalendar({
      incident: maintenance,
      organisation: input.site.organisation.name,
      url: incidentUrl(EXAMPLE_URL, maintenance.id),
      host: EXAMPLE_URL.hostname,
      now: AT,
      description: 'We upgrade the primary database. The service stays available; saving may pause for a few seconds.',
    }) ?? ''
  );
}

export function securityTxtExample(input: ExampleInput): string {
  return buildSecurityTxt(input.site, EXAMPLE_URL);
}
