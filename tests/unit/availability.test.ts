import { beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import type { Component } from '../../src/core/content/schema.ts';
import { dailyAvailability, describeDay, formatPercent, mergeIntervals } from '../../src/core/incidents/availability.ts';
import { type ComponentStatus, componentStatusLabels, type IncidentKind, type IncidentSeverity } from '../../src/core/incidents/types.ts';

const components: Component[] = [
  { id: 'public-api', name: 'Public API', description: 'The REST API' },
  { id: 'web-app', name: 'Web app', description: 'The web application' },
];
const NOW = new Date('2026-11-22T12:00:00Z');
const MIN = 60_000;
const at = (iso: string) => new Date(iso).getTime();

interface Seed {
  title?: string;
  kind?: IncidentKind;
  severity?: IncidentSeverity;
  public?: boolean;
  start: string;
  end: string | null;
  components: Record<string, ComponentStatus>;
}

let db: Db;
beforeEach(() => {
  db = openDatabase(':memory:');
});

function seed(s: Seed): number {
  const resolved = s.end !== null;
  const { lastInsertRowid } = db.$client
    .prepare(
      `INSERT INTO incidents (kind, severity, title, status, public, started_at, resolved_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      s.kind ?? 'outage',
      s.severity ?? 'major',
      s.title ?? 'API errors',
      resolved ? 'resolved' : 'investigating',
      s.public === false ? 0 : 1,
      at(s.start),
      s.end === null ? null : at(s.end),
      at(s.start),
    );
  const id = Number(lastInsertRowid);
  for (const [component, status] of Object.entries(s.components))
    db.$client.prepare('INSERT INTO incident_components (incident_id, component_id, status) VALUES (?, ?, ?)').run(id, component, status);
  return id;
}

function api(now = NOW, days = 90) {
  const result = dailyAvailability(db, components, now, days).find((c) => c.id === 'public-api');
  if (!result) throw new Error('no public-api');
  return result;
}
const day = (date: string) => {
  const d = api().days.find((x) => x.date === date);
  if (!d) throw new Error(`no ${date}`);
  return d;
};

describe('dailyAvailability', () => {
  it('has one entry a day, oldest first, today last, all operational without incidents', () => {
    const result = dailyAvailability(db, components, NOW);
    expect(result.map((c) => c.id)).toEqual(['public-api', 'web-app']);
    for (const c of result) {
      expect(c.days).toHaveLength(90);
      expect(c.days.at(-1)?.date).toBe('2026-11-22');
      expect(c.days[0]?.date).toBe('2026-08-25');
      expect(c.days.every((d) => d.worst === 'operational' && d.downtimeMinutes === 0 && d.incidents.length === 0)).toBe(true);
      expect(c.uptimePercent).toBe(100);
    }
    expect(api(NOW, 7).days.map((d) => d.date)).toEqual([
      '2026-11-16',
      '2026-11-17',
      '2026-11-18',
      '2026-11-19',
      '2026-11-20',
      '2026-11-21',
      '2026-11-22',
    ]);
  });

  it('merges overlapping incidents so no minute counts twice', () => {
    const a = seed({
      title: 'API errors',
      start: '2026-11-20T10:00:00Z',
      end: '2026-11-20T11:00:00Z',
      components: { 'public-api': 'operational' },
    });
    const b = seed({
      title: 'Slow API',
      severity: 'critical',
      start: '2026-11-20T10:30:00Z',
      end: '2026-11-20T11:30:00Z',
      components: { 'public-api': 'operational' },
    });
    const d = day('2026-11-20');
    expect(d.downtimeMinutes).toBe(90);
    expect(d.affectedMinutes).toBe(90);
    expect(d.worst).toBe('partial_outage');
    expect(d.incidents).toEqual([
      { id: a, title: 'API errors' },
      { id: b, title: 'Slow API' },
    ]);
    expect(
      mergeIntervals([
        { start: 5, end: 9 },
        { start: 0, end: 3 },
        { start: 2, end: 6 },
        { start: 10, end: 11 },
      ]),
    ).toEqual([
      { start: 0, end: 9 },
      { start: 10, end: 11 },
    ]);
  });

  it('splits an incident spanning midnight across both days', () => {
    seed({ start: '2026-11-19T23:20:00Z', end: '2026-11-20T00:45:00Z', components: { 'public-api': 'operational' } });
    expect(day('2026-11-19')).toMatchObject({ worst: 'partial_outage', downtimeMinutes: 40 });
    expect(day('2026-11-20')).toMatchObject({ worst: 'partial_outage', downtimeMinutes: 45 });
    expect(day('2026-11-18')).toMatchObject({ worst: 'operational', downtimeMinutes: 0, incidents: [] });
    expect(day('2026-11-21')).toMatchObject({ worst: 'operational', downtimeMinutes: 0, incidents: [] });
  });

  it('counts an open incident until now, with the status its row records', () => {
    seed({ start: '2026-11-22T11:18:00Z', end: null, components: { 'public-api': 'major_outage', 'web-app': 'degraded' } });
    expect(day('2026-11-22')).toMatchObject({ worst: 'major_outage', downtimeMinutes: 42, affectedMinutes: 42 });
    const web = dailyAvailability(db, components, NOW).find((c) => c.id === 'web-app');
    expect(web?.days.at(-1)).toMatchObject({ worst: 'degraded', downtimeMinutes: 0, affectedMinutes: 42 });
    expect(web?.uptimePercent).toBe(100);
    // later, it has lasted longer
    expect(api(new Date('2026-11-22T13:00:00Z')).days.at(-1)?.downtimeMinutes).toBe(102);
  });

  it('ignores incidents that are not public', () => {
    seed({
      kind: 'breach',
      public: false,
      start: '2026-11-21T08:00:00Z',
      end: '2026-11-21T10:00:00Z',
      components: { 'public-api': 'operational' },
    });
    seed({ public: false, start: '2026-11-22T08:00:00Z', end: null, components: { 'public-api': 'major_outage' } });
    const result = api();
    expect(result.days.every((d) => d.worst === 'operational' && d.incidents.length === 0)).toBe(true);
    expect(result.uptimePercent).toBe(100);
  });

  it('shows maintenance and degraded performance but does not count them as downtime', () => {
    seed({
      kind: 'maintenance',
      severity: 'minor',
      title: 'Database upgrade',
      start: '2026-11-21T02:00:00Z',
      end: '2026-11-21T04:00:00Z',
      components: { 'public-api': 'operational' },
    });
    seed({
      severity: 'minor',
      title: 'Slow search',
      start: '2026-11-20T02:00:00Z',
      end: '2026-11-20T02:30:00Z',
      components: { 'public-api': 'operational' },
    });
    expect(day('2026-11-21')).toMatchObject({ worst: 'under_maintenance', downtimeMinutes: 0, affectedMinutes: 120 });
    expect(day('2026-11-20')).toMatchObject({ worst: 'degraded', downtimeMinutes: 0, affectedMinutes: 30 });
    expect(api().uptimePercent).toBe(100);
  });

  it('takes the worst status of the day', () => {
    seed({ severity: 'minor', start: '2026-11-21T01:00:00Z', end: '2026-11-21T05:00:00Z', components: { 'public-api': 'operational' } });
    seed({ title: 'Outage', start: '2026-11-22T09:00:00Z', end: null, components: { 'public-api': 'major_outage' } });
    seed({ title: 'Minor', severity: 'minor', start: '2026-11-22T10:00:00Z', end: null, components: { 'public-api': 'degraded' } });
    expect(day('2026-11-21').worst).toBe('degraded');
    expect(day('2026-11-22').worst).toBe('major_outage');
  });

  it('counts an incident that began before the window only from the window start', () => {
    seed({ start: '2026-08-24T22:00:00Z', end: '2026-08-25T01:00:00Z', components: { 'public-api': 'operational' } });
    expect(api().days[0]).toMatchObject({ date: '2026-08-25', downtimeMinutes: 60 });
  });

  it('gives the exact uptime for a known scenario', () => {
    // The window: 89 whole days and 12 hours of today = 128,880 minutes.
    seed({ start: '2026-11-01T00:00:00Z', end: '2026-11-01T01:00:00Z', components: { 'public-api': 'operational' } });
    seed({ start: '2026-11-10T10:00:00Z', end: '2026-11-10T11:00:00Z', components: { 'public-api': 'operational' } });
    seed({ severity: 'critical', start: '2026-11-10T10:30:00Z', end: '2026-11-10T11:30:00Z', components: { 'public-api': 'operational' } });
    seed({ kind: 'maintenance', start: '2026-11-12T00:00:00Z', end: '2026-11-12T06:00:00Z', components: { 'public-api': 'operational' } });
    seed({ start: '2026-11-22T10:48:00Z', end: null, components: { 'public-api': 'partial_outage' } });
    // Downtime: 60, 90 (two overlapping incidents, merged) and 72 (open since 10:48) = 222 minutes;
    // the 6 hours of maintenance do not count. 100 × (1 − 222 / 128,880) = 99.8277…, rounded down: 99.82.
    const result = api();
    expect(result.days.reduce((s, d) => s + d.downtimeMinutes, 0)).toBe(222);
    expect(result.uptimePercent).toBe(99.82);
    expect(formatPercent(result.uptimePercent)).toBe('99.82%');
    expect(formatPercent(100)).toBe('100%');
  });

  it('rounds uptime down, so any downtime shows below 100%', () => {
    seed({
      start: '2026-11-21T10:00:00Z',
      end: new Date(at('2026-11-21T10:00:00Z') + MIN).toISOString(),
      components: { 'public-api': 'operational' },
    });
    expect(api().uptimePercent).toBe(99.99);
  });
});

describe('describeDay', () => {
  it('says what happened, for the text alternative', () => {
    seed({ title: 'API errors', start: '2026-11-21T09:00:00Z', end: '2026-11-21T09:42:00Z', components: { 'public-api': 'operational' } });
    expect(describeDay(day('2026-11-22'), componentStatusLabels)).toBe('22 Nov 2026: no incidents');
    expect(describeDay(day('2026-11-21'), componentStatusLabels)).toBe('21 Nov 2026: Partial outage, 42 minutes (API errors)');
  });
});
