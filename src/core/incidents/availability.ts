import type { Reader, Tx } from '../../../db/engine/types.ts';
import { type PublicStateRow, publicStateRows } from '../../stores/component-states.ts';
import type { Component } from '../content/schema.ts';
import { type ComponentStatus, componentStatusRank, worstStatus } from './types.ts';

const DAY = 86_400_000;

/** Tenths of a minute of downtime per minute in each state (Statuspage: major 100 %, partial 30 %). */
export const DOWNTIME_TENTHS: Record<ComponentStatus, number> = {
  operational: 0,
  under_maintenance: 0,
  degraded: 0,
  partial_outage: 3,
  major_outage: 10,
};

export type DayState = ComponentStatus | 'no_data';

/** One stretch of a state one source declared, as far as it falls on a day. */
export interface StateInterval {
  status: Exclude<ComponentStatus, 'operational'>;
  /** when the source declared it (may be before the day) */
  from: Date;
  /** when it ended (may be after the day); null while it lasts */
  to: Date | null;
  /** milliseconds of it within the day */
  ms: number;
  /** the incident that declared it; null for other sources */
  incident: { id: number; title: string } | null;
}

export interface DayAvailability {
  /** the UTC day, YYYY-MM-DD */
  date: string;
  /** the worst state of the day; 'no_data' before the service's history begins */
  state: DayState;
  /** milliseconds of the day measured: from midnight or the start of the history, to midnight or `now` */
  measuredMs: number;
  /** milliseconds spent in each state that day (the worst state declared at each moment) */
  ms: Record<ComponentStatus, number>;
  /** uptime of the day, hundredths rounded down; null without data */
  uptimePercent: number | null;
  /** each state interval of the day, by start */
  intervals: StateInterval[];
}

export interface ComponentAvailability {
  id: string;
  name: string;
  /** where the service's history begins; null when it has none */
  since: Date | null;
  /** `days` entries, oldest first; the last is today (UTC), counted up to `now` */
  days: DayAvailability[];
  /** uptime over the whole window; null without data */
  uptimePercent: number | null;
  /** uptime over the last `recentDays` days (narrow screens show those) */
  recentUptimePercent: number | null;
}

interface Row {
  componentId: string;
  status: ComponentStatus;
  since: number;
  incidentId: number | null;
  source: string;
  title: string | null;
}

interface Segment {
  start: number;
  end: number;
  status: ComponentStatus;
}

const overlap = (a: { start: number; end: number }, start: number, end: number) =>
  Math.max(0, Math.min(a.end, end) - Math.max(a.start, start));

/** 100 × (1 − downtime / measured), in hundredths, rounded down; exact integer arithmetic. */
function uptime(measuredMs: number, downtimeTenthsMs: number): number {
  if (measuredMs <= 0) return 100;
  const total = BigInt(measuredMs) * 10n;
  return Number(((total - BigInt(downtimeTenthsMs)) * 10_000n) / total) / 100;
}

/** The worst declared state at each moment, as adjacent segments up to `end`. */
function segments(streams: Map<string, Row[]>, end: number): Segment[] {
  const times = [...new Set([...streams.values()].flatMap((rows) => rows.map((r) => r.since)))]
    .filter((t) => t < end)
    .sort((a, b) => a - b);
  const result: Segment[] = [];
  const current = new Map<string, ComponentStatus>();
  const cursor = new Map<string, number>();
  for (let i = 0; i < times.length; i++) {
    const t = times[i] as number;
    for (const [key, rows] of streams) {
      let k = cursor.get(key) ?? 0;
      while (k < rows.length && (rows[k] as Row).since <= t) {
        current.set(key, (rows[k] as Row).status);
        k++;
      }
      cursor.set(key, k);
    }
    const status = worstStatus(current.values());
    const next = Math.min(times[i + 1] ?? end, end);
    const last = result.at(-1);
    if (last && last.status === status) last.end = next;
    else result.push({ start: t, end: next, status });
  }
  return result;
}

/** Each source's non-operational stretches. */
function stretches(streams: Map<string, Row[]>): Omit<StateInterval, 'ms'>[] {
  const result: Omit<StateInterval, 'ms'>[] = [];
  for (const rows of streams.values()) {
    rows.forEach((row, i) => {
      if (row.status === 'operational') return;
      const next = rows[i + 1];
      result.push({
        status: row.status,
        from: new Date(row.since),
        to: next ? new Date(next.since) : null,
        incident: row.incidentId === null ? null : { id: row.incidentId, title: row.title ?? '' },
      });
    });
  }
  return result.sort((a, b) => a.from.getTime() - b.from.getTime() || componentStatusRank[b.status] - componentStatusRank[a.status]);
}

const emptyMs = (): Record<ComponentStatus, number> => ({
  operational: 0,
  under_maintenance: 0,
  degraded: 0,
  partial_outage: 0,
  major_outage: 0,
});

export async function dailyAvailability(
  r: Reader | Tx,
  components: readonly Component[],
  now: Date,
  days = 90,
  recentDays = 30,
): Promise<ComponentAvailability[]> {
  const rows = await publicStateRows(r, now);
  return availabilityOf(
    rows.map((row: PublicStateRow) => ({ ...row, since: row.since.getTime() })),
    components,
    now,
    days,
    recentDays,
  );
}

/** The days and uptime of each service from the rows the public sees (by service, then time). */
function availabilityOf(
  rows: readonly Row[],
  components: readonly Component[],
  now: Date,
  days: number,
  recentDays: number,
): ComponentAvailability[] {
  const end = now.getTime();
  const today = Math.floor(end / DAY) * DAY;
  const windowStart = today - (days - 1) * DAY;
  const recentStart = today - (Math.min(recentDays, days) - 1) * DAY;
  const byComponent = new Map<string, Map<string, Row[]>>();
  for (const row of rows) {
    const streams = byComponent.get(row.componentId) ?? new Map<string, Row[]>();
    const key = row.incidentId === null ? `source:${row.source}` : `incident:${row.incidentId}`;
    const stream = streams.get(key);
    if (stream) stream.push(row);
    else streams.set(key, [row]);
    byComponent.set(row.componentId, streams);
  }

  return components.map((component) => {
    const streams = byComponent.get(component.id) ?? new Map<string, Row[]>();
    const firstRows = [...streams.values()].map((r) => (r[0] as Row).since);
    const since = firstRows.length ? Math.min(...firstRows) : null;
    const worst = segments(streams, end);
    const all = stretches(streams);

    const measure = (start: number, stop: number) => {
      const from = Math.max(start, since ?? Number.POSITIVE_INFINITY);
      const ms = emptyMs();
      let downtime = 0;
      for (const s of worst) {
        const o = overlap(s, from, stop);
        ms[s.status] += o;
        downtime += o * DOWNTIME_TENTHS[s.status];
      }
      return { measuredMs: Math.max(0, stop - from), ms, downtime };
    };

    const entries: DayAvailability[] = [];
    for (let d = 0; d < days; d++) {
      const dayStart = windowStart + d * DAY;
      const dayEnd = Math.min(dayStart + DAY, end);
      const date = new Date(dayStart).toISOString().slice(0, 10);
      if (since === null || since >= dayEnd) {
        entries.push({ date, state: 'no_data', measuredMs: 0, ms: emptyMs(), uptimePercent: null, intervals: [] });
        continue;
      }
      const { measuredMs, ms, downtime } = measure(dayStart, dayEnd);
      const intervals = all
        .map((i) => ({ ...i, ms: overlap({ start: i.from.getTime(), end: i.to?.getTime() ?? end }, dayStart, dayEnd) }))
        .filter((i) => i.ms > 0);
      entries.push({
        date,
        state: worstStatus((Object.keys(ms) as ComponentStatus[]).filter((s) => ms[s] > 0)),
        measuredMs,
        ms,
        uptimePercent: uptime(measuredMs, downtime),
        intervals,
      });
    }
    const over = (start: number) => {
      if (since === null) return null;
      const { measuredMs, downtime } = measure(start, end);
      return uptime(measuredMs, downtime);
    };
    return {
      id: component.id,
      name: component.name,
      since: since === null ? null : new Date(since),
      days: entries,
      uptimePercent: over(windowStart),
      recentUptimePercent: over(recentStart),
    };
  });
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** '2026-11-22' → '22 Nov 2026' (no locale data involved, so the same everywhere). */
export function formatDay(date: string): string {
  const [y, m, d] = date.split('-').map(Number);
  return `${d} ${MONTHS[(m ?? 1) - 1]} ${y}`;
}

/** 42 min, 2 h 5 min, 24 h; under a minute. */
export function formatDuration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes === 0) return 'under a minute';
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return [h ? `${h} h` : '', m ? `${m} min` : ''].filter(Boolean).join(' ');
}

/** '99.98%', '100%': two decimals unless whole. */
export const formatPercent = (p: number) => `${Number.isInteger(p) ? p : p.toFixed(2)}%`;

/** The states of a day with their time, worst first: [['major_outage', ms], …] without operational. */
export function dayStates(day: DayAvailability): [Exclude<ComponentStatus, 'operational'>, number][] {
  return (Object.entries(day.ms) as [ComponentStatus, number][])
    .filter((e): e is [Exclude<ComponentStatus, 'operational'>, number] => e[0] !== 'operational' && e[1] > 0)
    .sort((a, b) => componentStatusRank[b[0]] - componentStatusRank[a[0]]);
}

/**
 * The summary of a day, after its date: "No incidents", "No data", "Major
 * outage for 1 h, Degraded performance for 40 min · 95.83% uptime"; on the
 * day the service's history begins, from when.
 */
export function describeDay(day: DayAvailability, since: Date | null, labels: Record<ComponentStatus, string>): string {
  if (day.state === 'no_data') return 'No data';
  const from = since?.toISOString().slice(0, 10) === day.date ? ` · data from ${since.toISOString().slice(11, 16)} UTC` : '';
  if (day.state === 'operational') return `No incidents${from}`;
  const states = dayStates(day).map(([s, ms]) => `${labels[s]} for ${formatDuration(ms)}`);
  return `${states.join(', ')} · ${formatPercent(day.uptimePercent ?? 100)} uptime${from}`;
}
