/**
 * 90 days of history for /status: per service, one entry per UTC day with
 * the worst state public incidents put it in, how long it was down, and
 * which incidents touched it; plus the uptime over the window.
 *
 * Computed from incident durations only: an incident affects each of its
 * components from `started_at` to `resolved_at` (or `now` while open).
 *
 * Which state an incident applied. incident_components keeps one row per
 * incident and component with the *current* (or last) state, and resolving
 * an incident resets every row to 'operational'; there is no history of
 * states (and this module may not change the schema). So:
 * - a row that is not 'operational' gives the state, as recorded;
 * - a row that is 'operational' (the incident is resolved, or staff already
 *   restored that service while the incident stays open) gets the state the
 *   incident implies: `under_maintenance` for scheduled maintenance,
 *   `partial_outage` for a major or critical incident of any other kind, and
 *   `degraded` for a minor one. A resolved major outage therefore shows as
 *   a partial outage for its whole duration, never as a major outage: the
 *   conservative reading of data we no longer have. A history table of
 *   state changes would make this exact; that is a schema change to propose.
 *
 * Downtime is the time a service spent in `partial_outage` or
 * `major_outage`; degraded performance and maintenance are not downtime.
 * Overlapping incidents are merged first, so no minute counts twice.
 */
import type { Db } from '../../../db/client.ts';
import type { Component } from '../content/schema.ts';
import type { ComponentStatus, IncidentKind, IncidentSeverity } from './types.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;

export interface DayAvailability {
  /** the UTC day, YYYY-MM-DD */
  date: string;
  /** the worst state any public incident put the service in that day; 'operational' when none */
  worst: ComponentStatus;
  /** minutes of that day the service was in partial or major outage (overlaps merged, rounded) */
  downtimeMinutes: number;
  /** minutes of that day any public incident affected the service, whatever its state (overlaps merged, rounded) */
  affectedMinutes: number;
  /** the public incidents that affected the service that day, oldest first */
  incidents: { id: number; title: string }[];
}

export interface ComponentAvailability {
  id: string;
  name: string;
  /** `days` entries, oldest first; the last is today (UTC), counted up to `now` */
  days: DayAvailability[];
  /**
   * 100 × (1 − downtime / elapsed time of the window), the window running
   * from the start of the oldest day to `now`. Rounded *down* to 2 decimals,
   * so any downtime at all shows below 100.
   */
  uptimePercent: number;
}

const rank: Record<ComponentStatus, number> = {
  operational: 0,
  under_maintenance: 1,
  degraded: 2,
  partial_outage: 3,
  major_outage: 4,
};

const isDowntime = (s: ComponentStatus) => s === 'partial_outage' || s === 'major_outage';

/** The state an incident applied to a component; see the module comment. */
export function appliedStatus(row: ComponentStatus, kind: IncidentKind, severity: IncidentSeverity): ComponentStatus {
  if (row !== 'operational') return row;
  if (kind === 'maintenance') return 'under_maintenance';
  return severity === 'minor' ? 'degraded' : 'partial_outage';
}

interface Interval {
  start: number;
  end: number;
}

/** Sorted, non-overlapping intervals covering the same time. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  const merged: Interval[] = [];
  for (const i of sorted) {
    const last = merged.at(-1);
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else merged.push({ ...i });
  }
  return merged;
}

function overlap(merged: readonly Interval[], start: number, end: number): number {
  let total = 0;
  for (const i of merged) total += Math.max(0, Math.min(i.end, end) - Math.max(i.start, start));
  return total;
}

interface Row {
  id: number;
  title: string;
  kind: IncidentKind;
  severity: IncidentSeverity;
  status: string;
  started_at: number;
  resolved_at: number | null;
  component_id: string;
  component_status: ComponentStatus;
}

interface Affect extends Interval {
  id: number;
  title: string;
  status: ComponentStatus;
}

export function dailyAvailability(db: Db, components: readonly Component[], now: Date, days = 90): ComponentAvailability[] {
  const end = now.getTime();
  const today = Math.floor(end / DAY) * DAY;
  const windowStart = today - (days - 1) * DAY;
  const rows = db.$client
    .prepare(
      `SELECT i.id, i.title, i.kind, i.severity, i.status, i.started_at, i.resolved_at, c.component_id, c.status AS component_status
         FROM incidents i JOIN incident_components c ON c.incident_id = i.id
        WHERE i.public = 1 AND i.started_at < ? AND (i.resolved_at IS NULL OR i.resolved_at > ?)
        ORDER BY i.started_at, i.id`,
    )
    .all(end, windowStart) as Row[];

  const byComponent = new Map<string, Affect[]>();
  for (const r of rows) {
    // A resolved incident without a resolution time (not written by this app) is taken as instantaneous.
    const stop = r.resolved_at ?? (r.status === 'resolved' ? r.started_at : end);
    const interval = { start: Math.max(r.started_at, windowStart), end: Math.min(stop, end) };
    if (interval.end <= interval.start) continue;
    const list = byComponent.get(r.component_id) ?? [];
    list.push({ ...interval, id: r.id, title: r.title, status: appliedStatus(r.component_status, r.kind, r.severity) });
    byComponent.set(r.component_id, list);
  }

  const elapsed = end - windowStart;
  return components.map((component) => {
    const affects = byComponent.get(component.id) ?? [];
    const all = mergeIntervals(affects);
    const down = mergeIntervals(affects.filter((a) => isDowntime(a.status)));
    const entries: DayAvailability[] = [];
    for (let d = 0; d < days; d++) {
      const dayStart = windowStart + d * DAY;
      const dayEnd = Math.min(dayStart + DAY, end);
      const touching = affects.filter((a) => a.start < dayEnd && a.end > dayStart);
      const incidents: { id: number; title: string }[] = [];
      for (const a of touching) if (!incidents.some((i) => i.id === a.id)) incidents.push({ id: a.id, title: a.title });
      entries.push({
        date: new Date(dayStart).toISOString().slice(0, 10),
        worst: touching.reduce<ComponentStatus>((w, a) => (rank[a.status] > rank[w] ? a.status : w), 'operational'),
        downtimeMinutes: Math.round(overlap(down, dayStart, dayEnd) / MINUTE),
        affectedMinutes: Math.round(overlap(all, dayStart, dayEnd) / MINUTE),
        incidents,
      });
    }
    const downtime = overlap(down, windowStart, end);
    // Integer arithmetic, so the floor is exact (no 99.99 turning into 99.98 through a float).
    const hundredths = elapsed > 0 ? Number((BigInt(elapsed - downtime) * 10_000n) / BigInt(elapsed)) : 10_000;
    return { id: component.id, name: component.name, days: entries, uptimePercent: hundredths / 100 };
  });
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** '2026-11-22' → '22 Nov 2026' (no locale data involved, so the same everywhere). */
export function formatDay(date: string): string {
  const [y, m, d] = date.split('-').map(Number);
  return `${d} ${MONTHS[(m ?? 1) - 1]} ${y}`;
}

/** The text alternative of one day: "22 Nov 2026: no incidents", "21 Nov 2026: Partial outage, 42 minutes (API errors)". */
export function describeDay(day: DayAvailability, labels: Record<ComponentStatus, string>): string {
  const date = formatDay(day.date);
  if (day.incidents.length === 0) return `${date}: no incidents`;
  // Outage days give the downtime; other days the time the incidents lasted.
  const minutes = isDowntime(day.worst) ? day.downtimeMinutes : day.affectedMinutes;
  const titles = day.incidents.map((i) => i.title).join('; ');
  const duration = minutes === 0 ? 'under a minute' : `${minutes} ${minutes === 1 ? 'minute' : 'minutes'}`;
  return `${date}: ${labels[day.worst]}, ${duration} (${titles})`;
}

/** '99.98%', '100%': two decimals unless whole. */
export const formatPercent = (p: number) => `${Number.isInteger(p) ? p : p.toFixed(2)}%`;
