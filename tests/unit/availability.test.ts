/**
 * The 90-day bars and uptime from the recorded history of service states, and how that history is
 * recorded. On each engine (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, as the
 * application role under row-level security): one database per engine, emptied of incidents and
 * history before each case, seeded and inspected through the builder. The migration that added the
 * history is SQLite's (PostgreSQL's schema has had it from its first migration), so that case runs on
 * SQLite only.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { asc, eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database as EngineDatabase, Reader, Tx } from '../../db/engine/types.ts';
import * as schema from '../../db/schema.ts';
import type { Component } from '../../src/core/content/schema.ts';
import { dailyAvailability, describeDay, formatDuration, formatPercent } from '../../src/core/incidents/availability.ts';
import { recordIncidentStates, recordListedComponents, worstDeclared } from '../../src/core/incidents/history.ts';
import { type ComponentStatus, componentStatusLabels, type IncidentKind, type IncidentStatus } from '../../src/core/incidents/types.ts';
import type { StateSource } from '../../src/stores/component-states.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';

const components: Component[] = [
  { id: 'public-api', name: 'Public API', description: 'The REST API' },
  { id: 'web-app', name: 'Web app', description: 'The web application' },
];
const NOW = new Date('2026-11-22T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const at = (iso: string) => new Date(iso).getTime();

/** The database of the running case. */
let current: EngineDatabase;
const database = () => current;

/** One read of the case's database. */
function read<T>(fn: (r: Reader) => Promise<T>): Promise<T> {
  const d = current;
  return d.engine === 'sqlite' ? d.read((r) => fn(r)) : d.read((r) => fn(r));
}

/** One transaction of the case's database. */
function transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
  const d = current;
  return d.engine === 'sqlite' ? d.transaction((tx) => fn(tx)) : d.transaction((tx) => fn(tx));
}

async function incident(
  title: string,
  options: { kind?: IncidentKind; public?: boolean; status?: IncidentStatus; start?: string } = {},
): Promise<number> {
  const start = new Date(options.start ?? '2026-08-01T00:00:00Z');
  return writeRows(current, async (q) => {
    const [row] = await q.db
      .insert(q.t.incidents)
      .values({
        kind: options.kind ?? 'outage',
        severity: 'major',
        title,
        status: options.status ?? 'resolved',
        public: options.public !== false,
        startedAt: start,
        createdAt: start,
      })
      .returning({ id: q.t.incidents.id });
    if (!row) throw new Error('no incident');
    return row.id;
  });
}

/** One history row: from `iso`, the source declares `status` for the service. */
async function state(
  component: string,
  status: ComponentStatus,
  iso: string,
  incidentId: number | null,
  source: StateSource = 'update',
): Promise<void> {
  await writeRows(current, (q) =>
    q.db.insert(q.t.componentStates).values({ componentId: component, status, since: new Date(iso), incidentId, source }),
  );
}

/** Both services listed (their history begins) at `iso`. */
async function listed(iso = '2026-01-01T00:00:00Z'): Promise<void> {
  for (const c of components) await state(c.id, 'operational', iso, null, 'listed');
}

async function service(id = 'public-api', now = NOW, days = 90) {
  const result = (await read((r) => dailyAvailability(r, components, now, days))).find((c) => c.id === id);
  if (!result) throw new Error(`no ${id}`);
  return result;
}
const day = async (date: string, id = 'public-api', now = NOW) => {
  const d = (await service(id, now)).days.find((x) => x.date === date);
  if (!d) throw new Error(`no ${date}`);
  return d;
};

describe.each(enginesUnderTest())('on $name', (engine) => {
  let opened: OpenedEngine;
  beforeAll(async () => {
    opened = await engine.open();
    current = opened.database;
  });
  afterAll(() => opened?.close());
  // Each case starts from an empty history: what the previous one recorded is deleted (rows of the
  // history are never changed, but may be removed, as an incident's deletion removes its own).
  beforeEach(async () => {
    current = opened.database;
    await writeRows(current, async (q) => {
      await q.db.delete(q.t.componentStates);
      await q.db.delete(q.t.incidentComponents);
      await q.db.delete(q.t.incidents);
      await q.db.delete(q.t.contentSnapshots);
    });
  });

  describe('dailyAvailability, from the recorded history', () => {
    it('has one entry a day, oldest first, today last; without any history every day has no data', async () => {
      const result = await read((r) => dailyAvailability(r, components, NOW));
      expect(result.map((c) => c.id)).toEqual(['public-api', 'web-app']);
      for (const c of result) {
        expect(c.days).toHaveLength(90);
        expect(c.days.at(-1)?.date).toBe('2026-11-22');
        expect(c.days[0]?.date).toBe('2026-08-25');
        expect(c.days.every((d) => d.state === 'no_data' && d.uptimePercent === null)).toBe(true);
        expect(c.uptimePercent).toBeNull();
      }
      await listed();
      const quiet = await service();
      expect(quiet.days.every((d) => d.state === 'operational' && d.uptimePercent === 100 && d.intervals.length === 0)).toBe(true);
      expect(quiet.uptimePercent).toBe(100);
      expect((await service('public-api', NOW, 7)).days.map((d) => d.date)).toEqual([
        '2026-11-16',
        '2026-11-17',
        '2026-11-18',
        '2026-11-19',
        '2026-11-20',
        '2026-11-21',
        '2026-11-22',
      ]);
    });

    it('weighs a partial outage at 30 %: two hours of it on a day is 100 − 2/24 × 30 = 97.5 % that day', async () => {
      await listed();
      const id = await incident('API errors');
      await state('public-api', 'partial_outage', '2026-11-20T10:00:00Z', id);
      await state('public-api', 'operational', '2026-11-20T12:00:00Z', id);
      expect(await day('2026-11-20')).toMatchObject({ state: 'partial_outage', uptimePercent: 97.5, measuredMs: 24 * HOUR });
      expect((await day('2026-11-20')).ms.partial_outage).toBe(2 * HOUR);
      // The window: 89 whole days and 12 hours of today = 128,880 minutes; 0.3 × 120 = 36 minutes down.
      // 100 × (1 − 36 / 128,880) = 99.9720…, rounded down: 99.97.
      expect((await service()).uptimePercent).toBe(99.97);
      expect(await day('2026-11-21')).toMatchObject({ state: 'operational', uptimePercent: 100, intervals: [] });
    });

    it('counts a major outage in full: 6 hours of it on a day is 75 %', async () => {
      await listed();
      const id = await incident('Down');
      await state('public-api', 'major_outage', '2026-11-20T00:00:00Z', id);
      await state('public-api', 'operational', '2026-11-20T06:00:00Z', id);
      expect(await day('2026-11-20')).toMatchObject({ state: 'major_outage', uptimePercent: 75 });
    });

    it('a service degraded and restored mid-incident shows "Degraded performance" only while it was, and loses no uptime', async () => {
      await listed();
      const id = await incident('API outage');
      await state('web-app', 'degraded', '2026-11-20T09:00:00Z', id);
      await state('public-api', 'major_outage', '2026-11-20T09:00:00Z', id);
      await state('web-app', 'operational', '2026-11-20T09:40:00Z', id);
      await state('public-api', 'operational', '2026-11-20T11:00:00Z', id);
      const web = await day('2026-11-20', 'web-app');
      expect(web).toMatchObject({ state: 'degraded', uptimePercent: 100 });
      expect(web.ms.degraded).toBe(40 * MIN);
      expect(web.intervals).toEqual([
        {
          status: 'degraded',
          from: new Date('2026-11-20T09:00:00Z'),
          to: new Date('2026-11-20T09:40:00Z'),
          ms: 40 * MIN,
          incident: { id, title: 'API outage' },
        },
      ]);
      expect(describeDay(web, (await service('web-app')).since, componentStatusLabels)).toBe(
        'Degraded performance for 40 min · 100% uptime',
      );
      expect((await service('web-app')).uptimePercent).toBe(100);
      const api = await day('2026-11-20');
      expect(api).toMatchObject({ state: 'major_outage', uptimePercent: 91.66 });
      expect(api.ms.major_outage).toBe(2 * HOUR);
    });

    it('takes the worst state at each moment across sources, so no minute counts twice', async () => {
      await listed();
      const a = await incident('API errors');
      const b = await incident('Slow API');
      await state('public-api', 'major_outage', '2026-11-20T10:00:00Z', a);
      await state('public-api', 'partial_outage', '2026-11-20T10:30:00Z', b);
      await state('public-api', 'operational', '2026-11-20T11:00:00Z', a);
      await state('public-api', 'operational', '2026-11-20T11:30:00Z', b);
      const d = await day('2026-11-20');
      // 60 minutes of major outage (the partial one beneath it does not add), then 30 of partial
      expect(d.ms.major_outage).toBe(60 * MIN);
      expect(d.ms.partial_outage).toBe(30 * MIN);
      // downtime 60 + 0.3 × 30 = 69 minutes of 1,440: 95.2083…, rounded down
      expect(d.uptimePercent).toBe(95.2);
      expect(d.intervals.map((i) => [i.status, i.incident?.title, i.ms / MIN])).toEqual([
        ['major_outage', 'API errors', 60],
        ['partial_outage', 'Slow API', 60],
      ]);
    });

    it('splits a state spanning midnight across both days', async () => {
      await listed();
      const id = await incident('Night outage');
      await state('public-api', 'major_outage', '2026-11-19T23:20:00Z', id);
      await state('public-api', 'operational', '2026-11-20T00:45:00Z', id);
      expect((await day('2026-11-19')).ms.major_outage).toBe(40 * MIN);
      expect((await day('2026-11-20')).ms.major_outage).toBe(45 * MIN);
      expect((await day('2026-11-19')).intervals[0]).toMatchObject({ ms: 40 * MIN, from: new Date('2026-11-19T23:20:00Z') });
      expect(await day('2026-11-18')).toMatchObject({ state: 'operational', intervals: [] });
      expect(await day('2026-11-21')).toMatchObject({ state: 'operational', intervals: [] });
    });

    it('counts a state still declared until now, and today only up to now', async () => {
      await listed();
      const id = await incident('Ongoing', { status: 'investigating' });
      await state('public-api', 'major_outage', '2026-11-22T11:18:00Z', id);
      await state('web-app', 'degraded', '2026-11-22T11:18:00Z', id);
      const today = await day('2026-11-22');
      expect(today).toMatchObject({ state: 'major_outage', measuredMs: 12 * HOUR });
      expect(today.ms.major_outage).toBe(42 * MIN);
      expect(today.intervals[0]?.to).toBeNull();
      // 42 of 720 minutes today: 94.1666…
      expect(today.uptimePercent).toBe(94.16);
      expect(await day('2026-11-22', 'web-app')).toMatchObject({ state: 'degraded', uptimePercent: 100 });
      // later, it has lasted longer
      expect((await day('2026-11-22', 'public-api', new Date('2026-11-22T13:00:00Z'))).ms.major_outage).toBe(102 * MIN);
    });

    it('ignores incidents that are not public', async () => {
      await listed();
      const breach = await incident('Breach', { kind: 'breach', public: false });
      await state('public-api', 'major_outage', '2026-11-21T08:00:00Z', breach);
      await state('public-api', 'operational', '2026-11-21T10:00:00Z', breach);
      const result = await service();
      expect(result.days.every((d) => d.state === 'operational' && d.intervals.length === 0)).toBe(true);
      expect(result.uptimePercent).toBe(100);
    });

    it('shows maintenance and degraded performance but does not count them as downtime', async () => {
      await listed();
      const upgrade = await incident('Database upgrade', { kind: 'maintenance' });
      await state('public-api', 'under_maintenance', '2026-11-21T02:00:00Z', upgrade, 'maintenance');
      await state('public-api', 'operational', '2026-11-21T04:00:00Z', upgrade, 'maintenance');
      const slow = await incident('Slow search');
      await state('public-api', 'degraded', '2026-11-20T02:00:00Z', slow);
      await state('public-api', 'operational', '2026-11-20T02:30:00Z', slow);
      expect(await day('2026-11-21')).toMatchObject({ state: 'under_maintenance', uptimePercent: 100 });
      expect(await day('2026-11-20')).toMatchObject({ state: 'degraded', uptimePercent: 100 });
      expect((await service()).uptimePercent).toBe(100);
    });

    it('colours a day by its worst state: a brief major outage outweighs a long degradation', async () => {
      await listed();
      const slow = await incident('Slow');
      await state('public-api', 'degraded', '2026-11-21T01:00:00Z', slow);
      await state('public-api', 'operational', '2026-11-21T09:00:00Z', slow);
      const down = await incident('Down');
      await state('public-api', 'major_outage', '2026-11-21T10:00:00Z', down);
      await state('public-api', 'operational', '2026-11-21T10:05:00Z', down);
      expect((await day('2026-11-21')).state).toBe('major_outage');
    });

    it('has no data before a service history begins, and measures its first day from then', async () => {
      await listed('2026-11-20T18:00:00Z');
      expect(await day('2026-11-19')).toMatchObject({ state: 'no_data', uptimePercent: null });
      expect(await day('2026-11-20')).toMatchObject({ state: 'operational', measuredMs: 6 * HOUR, uptimePercent: 100 });
      const id = await incident('Early trouble');
      await state('public-api', 'major_outage', '2026-11-20T23:00:00Z', id);
      await state('public-api', 'operational', '2026-11-20T23:30:00Z', id);
      // 30 of the 360 minutes measured that day
      expect((await day('2026-11-20')).uptimePercent).toBe(91.66);
      // the window is measured from the history's start: 30 minutes of 42 hours
      expect((await service()).uptimePercent).toBe(98.8);
      expect((await service()).since).toEqual(new Date('2026-11-20T18:00:00Z'));
      expect((await service()).days.filter((d) => d.state === 'no_data')).toHaveLength(87);
    });

    it('rounds uptime down, so any downtime shows below 100 %', async () => {
      await listed();
      const id = await incident('Blip');
      await state('public-api', 'major_outage', '2026-11-21T10:00:00Z', id);
      await state('public-api', 'operational', '2026-11-21T10:01:00Z', id);
      expect((await service()).uptimePercent).toBe(99.99);
      expect((await day('2026-11-21')).uptimePercent).toBe(99.93);
    });

    it('gives the uptime of the last 30 days apart', async () => {
      await listed();
      const id = await incident('Old outage');
      await state('public-api', 'major_outage', '2026-09-01T00:00:00Z', id);
      await state('public-api', 'operational', '2026-09-01T12:00:00Z', id);
      const result = (await read((r) => dailyAvailability(r, components, NOW, 90, 30))).find((c) => c.id === 'public-api');
      expect(result?.recentUptimePercent).toBe(100);
      expect(result?.uptimePercent).toBeLessThan(100);
    });
  });

  describe('formatting', () => {
    it('says durations, percentages and days plainly', async () => {
      expect(formatDuration(20_000)).toBe('under a minute');
      expect(formatDuration(42 * MIN)).toBe('42 min');
      expect(formatDuration(125 * MIN)).toBe('2 h 5 min');
      expect(formatDuration(24 * HOUR)).toBe('24 h');
      expect(formatPercent(99.5)).toBe('99.50%');
      expect(formatPercent(100)).toBe('100%');
      await listed('2026-11-21T09:30:00Z');
      const since = (await service()).since;
      expect(describeDay(await day('2026-11-22'), since, componentStatusLabels)).toBe('No incidents');
      expect(describeDay(await day('2026-11-21'), since, componentStatusLabels)).toBe('No incidents · data from 09:30 UTC');
      expect(describeDay(await day('2026-11-20'), since, componentStatusLabels)).toBe('No data');
      const id = await incident('Mixed');
      await state('public-api', 'degraded', '2026-11-22T01:00:00Z', id);
      await state('public-api', 'major_outage', '2026-11-22T01:40:00Z', id);
      await state('public-api', 'operational', '2026-11-22T02:45:00Z', id);
      expect(describeDay(await day('2026-11-22'), since, componentStatusLabels)).toBe(
        'Major outage for 1 h 5 min, Degraded performance for 40 min · 90.97% uptime',
      );
    });
  });

  describe('recording the history', () => {
    async function publishState(
      id: number,
      status: IncidentStatus,
      components: Record<string, ComponentStatus>,
      iso: string,
    ): Promise<number> {
      await writeRows(database(), async (q) => {
        const { incidents, incidentComponents } = q.t;
        await q.db.update(incidents).set({ status }).where(eq(incidents.id, id));
        for (const [componentId, s] of Object.entries(components))
          await q.db
            .insert(incidentComponents)
            .values({ incidentId: id, componentId, status: s })
            .onConflictDoUpdate({ target: [incidentComponents.incidentId, incidentComponents.componentId], set: { status: s } });
        if (status === 'resolved')
          await q.db.update(incidentComponents).set({ status: 'operational' }).where(eq(incidentComponents.incidentId, id));
      });
      return transact((tx) => recordIncidentStates(tx, id, null, 'update', new Date(iso)));
    }
    const history = (id: number) =>
      readRows(database(), (q) => {
        const s = q.t.componentStates;
        return q.db
          .select({ component_id: s.componentId, status: s.status, since: s.since })
          .from(s)
          .where(eq(s.incidentId, id))
          .orderBy(asc(s.id));
      });

    it('writes a row only where the state in effect changes', async () => {
      const id = await incident('API outage', { status: 'investigating' });
      expect(await publishState(id, 'investigating', { 'public-api': 'major_outage', 'web-app': 'degraded' }, '2026-11-22T09:00:00Z')).toBe(
        2,
      );
      // the same states again: nothing to record
      expect(await publishState(id, 'identified', { 'public-api': 'major_outage', 'web-app': 'degraded' }, '2026-11-22T09:10:00Z')).toBe(0);
      expect(await publishState(id, 'identified', { 'web-app': 'operational' }, '2026-11-22T09:20:00Z')).toBe(1);
      expect(await publishState(id, 'resolved', {}, '2026-11-22T10:00:00Z')).toBe(1);
      expect(await history(id)).toEqual([
        { component_id: 'public-api', status: 'major_outage', since: new Date('2026-11-22T09:00:00Z') },
        { component_id: 'web-app', status: 'degraded', since: new Date('2026-11-22T09:00:00Z') },
        { component_id: 'web-app', status: 'operational', since: new Date('2026-11-22T09:20:00Z') },
        { component_id: 'public-api', status: 'operational', since: new Date('2026-11-22T10:00:00Z') },
      ]);
      expect(await read((r) => worstDeclared(r, id))).toBe('major_outage');
    });

    it('records maintenance from its start, not its announcement; called off before it starts, none at all', async () => {
      const planned = await incident('Upgrade', { kind: 'maintenance', status: 'scheduled' });
      expect(await publishState(planned, 'scheduled', { 'public-api': 'under_maintenance' }, '2026-11-20T09:00:00Z')).toBe(0);
      expect(await publishState(planned, 'in_progress', {}, '2026-11-21T02:00:00Z')).toBe(1);
      expect(await publishState(planned, 'resolved', {}, '2026-11-21T04:00:00Z')).toBe(1);
      expect((await history(planned)).map((r) => (r as { status: string }).status)).toEqual(['under_maintenance', 'operational']);
      const calledOff = await incident('Another upgrade', { kind: 'maintenance', status: 'scheduled' });
      await publishState(calledOff, 'scheduled', { 'public-api': 'under_maintenance' }, '2026-11-20T09:00:00Z');
      expect(await publishState(calledOff, 'resolved', {}, '2026-11-20T10:00:00Z')).toBe(0);
      expect(await history(calledOff)).toEqual([]);
      expect(await read((r) => worstDeclared(r, calledOff))).toBe('operational');
    });

    it('lists services once: from the installation on the first start, from now for a service added later', async () => {
      await writeRows(database(), (q) =>
        q.db.insert(q.t.contentSnapshots).values({ kind: 'docs', hash: 'x', data: {}, publishedAt: new Date('2026-05-01T08:00:00Z') }),
      );
      expect(await recordListedComponents(database(), components, NOW)).toEqual(['public-api', 'web-app']);
      expect(await recordListedComponents(database(), components, NOW)).toEqual([]);
      const added = [...components, { id: 'search', name: 'Search', description: 'Search' }];
      expect(await recordListedComponents(database(), added, new Date('2026-11-22T13:00:00Z'))).toEqual(['search']);
      const since = await readRows(database(), (q) => {
        const s = q.t.componentStates;
        return q.db.select({ component_id: s.componentId, since: s.since }).from(s).where(eq(s.source, 'listed')).orderBy(asc(s.id));
      });
      expect(since).toEqual([
        { component_id: 'public-api', since: new Date('2026-05-01T08:00:00Z') },
        { component_id: 'web-app', since: new Date('2026-05-01T08:00:00Z') },
        { component_id: 'search', since: new Date('2026-11-22T13:00:00Z') },
      ]);
    });

    it('is never rewritten', async () => {
      await listed();
      await expect(writeRows(database(), (q) => q.db.update(q.t.componentStates).set({ status: 'major_outage' }))).rejects.toThrow(
        /append-only/,
      );
    });
  });
});

describe('the migration that added the history', () => {
  let dir = '';
  let db: Db | undefined;
  afterEach(() => {
    db?.$client.close();
    db = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reconstructs the past as /status showed it before, so no history is lost', async () => {
    // A database as the previous version left it: every migration but the history's.
    dir = mkdtempSync(join(tmpdir(), 'candor-migration-'));
    const migrations = join(import.meta.dirname, '../../db/migrations');
    const before = join(dir, 'migrations');
    cpSync(migrations, before, { recursive: true });
    const journal = join(before, 'meta/_journal.json');
    const meta = JSON.parse(readFileSync(journal, 'utf8')) as { entries: { tag: string }[] };
    const historyIndex = meta.entries.findIndex((e) => e.tag.endsWith('_component_states'));
    expect(historyIndex).toBeGreaterThan(0);
    writeFileSync(journal, JSON.stringify({ ...meta, entries: meta.entries.slice(0, historyIndex) }));
    for (const f of readdirSync(before)) if (f.endsWith('_component_states.sql')) rmSync(join(before, f));
    const sqlite = new Database(join(dir, 'candor.db'));
    const old = drizzle(sqlite, { schema });
    migrate(old, { migrationsFolder: before });

    const insert = (kind: string, severity: string, status: string, start: string, end: string | null) =>
      Number(
        sqlite
          .prepare(
            `INSERT INTO incidents (kind, severity, title, status, public, started_at, resolved_at, created_at) VALUES (?, ?, 'x', ?, 1, ?, ?, ?)`,
          )
          .run(kind, severity, status, at(start), end === null ? null : at(end), at(start)).lastInsertRowid,
      );
    const affect = (id: number, component: string, status: string) =>
      sqlite.prepare('INSERT INTO incident_components (incident_id, component_id, status) VALUES (?, ?, ?)').run(id, component, status);
    const update = (id: number, iso: string) =>
      sqlite
        .prepare(`INSERT INTO incident_updates (incident_id, status, body, published_at) VALUES (?, 'identified', 'x', ?)`)
        .run(id, at(iso));
    const resolvedMajor = insert('outage', 'major', 'resolved', '2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z');
    affect(resolvedMajor, 'public-api', 'operational');
    const resolvedMinor = insert('outage', 'minor', 'resolved', '2026-11-02T10:00:00Z', '2026-11-02T10:30:00Z');
    affect(resolvedMinor, 'web-app', 'operational');
    const open = insert('outage', 'critical', 'identified', '2026-11-22T09:00:00Z', null);
    affect(open, 'public-api', 'major_outage');
    affect(open, 'web-app', 'operational');
    update(open, '2026-11-22T09:00:00Z');
    update(open, '2026-11-22T09:30:00Z');
    const planned = insert('maintenance', 'minor', 'scheduled', '2026-12-01T02:00:00Z', null);
    affect(planned, 'public-api', 'under_maintenance');
    sqlite.close();

    const upgraded = openDatabase(join(dir, 'candor.db'));
    db = upgraded;
    current = databaseOf(upgraded);
    const rows = upgraded.$client
      .prepare('SELECT component_id, status, since, incident_id, source FROM component_states ORDER BY since, id')
      .all();
    expect(rows).toEqual([
      {
        component_id: 'public-api',
        status: 'partial_outage',
        since: at('2026-11-01T10:00:00Z'),
        incident_id: resolvedMajor,
        source: 'backfill',
      },
      {
        component_id: 'public-api',
        status: 'operational',
        since: at('2026-11-01T11:00:00Z'),
        incident_id: resolvedMajor,
        source: 'backfill',
      },
      { component_id: 'web-app', status: 'degraded', since: at('2026-11-02T10:00:00Z'), incident_id: resolvedMinor, source: 'backfill' },
      { component_id: 'web-app', status: 'operational', since: at('2026-11-02T10:30:00Z'), incident_id: resolvedMinor, source: 'backfill' },
      { component_id: 'public-api', status: 'major_outage', since: at('2026-11-22T09:00:00Z'), incident_id: open, source: 'backfill' },
      { component_id: 'web-app', status: 'partial_outage', since: at('2026-11-22T09:00:00Z'), incident_id: open, source: 'backfill' },
      { component_id: 'web-app', status: 'operational', since: at('2026-11-22T09:30:00Z'), incident_id: open, source: 'backfill' },
    ]);
    // the first start after the upgrade lists the services from the installation's first incident
    await recordListedComponents(database(), components, NOW);
    expect((await service()).since).toEqual(new Date('2026-11-01T10:00:00Z'));
    expect((await day('2026-11-01')).state).toBe('partial_outage');
    expect((await day('2026-10-31')).state).toBe('no_data');
  });
});
