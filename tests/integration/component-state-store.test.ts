/**
 * The history of service states on both engines (src/stores/component-states.ts through
 * src/core/incidents/history.ts, availability.ts and status-version.ts): what an incident records,
 * what the public sees of it, the status version, and the listing of services, which nodes starting
 * together on PostgreSQL must do once.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { Database, Tx } from '../../db/engine/types.ts';
import type { Component } from '../../src/core/content/schema.ts';
import { dailyAvailability } from '../../src/core/incidents/availability.ts';
import { incidentStateHistory, recordIncidentStates, recordListedComponents, worstDeclared } from '../../src/core/incidents/history.ts';
import { statusVersion } from '../../src/core/incidents/status-version.ts';
import type { ComponentStatus, IncidentStatus } from '../../src/core/incidents/types.ts';
import { componentStateRows, insertStates, lockListing } from '../../src/stores/component-states.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const T0 = new Date('2026-11-30T09:00:00.000Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
const components: Component[] = [
  { id: 'api', name: 'API', description: 'The API' },
  { id: 'web', name: 'Web app', description: 'The web app' },
];

async function newIncident(tx: Tx, title: string, options: { public?: boolean; status?: IncidentStatus } = {}): Promise<number> {
  const q = query(tx);
  const [row] = await q.db
    .insert(q.t.incidents)
    .values({
      kind: 'outage',
      severity: 'major',
      title,
      status: options.status ?? 'investigating',
      public: options.public ?? true,
      startedAt: T0,
      createdAt: T0,
      trustCenterId: q.trustCenter,
    })
    .returning({ id: q.t.incidents.id });
  if (!row) throw new Error('no incident');
  return row.id;
}

/** What publishing an update does to the tables history.ts reads, then the history it records, as one transaction. */
function publish(database: Database, id: number, status: IncidentStatus, declared: Record<string, ComponentStatus>, now: Date) {
  return database.transaction(async (tx) => {
    const q = query(tx);
    const { incidents, incidentComponents } = q.t;
    // The incident's row first, as postUpdate does: it is what serialises two publishers of one incident.
    await q.db.update(incidents).set({ status }).where(eq(incidents.id, id));
    for (const [componentId, state] of Object.entries(declared))
      await q.db
        .insert(incidentComponents)
        .values({ incidentId: id, componentId, status: state, trustCenterId: q.trustCenter })
        .onConflictDoUpdate({ target: [incidentComponents.incidentId, incidentComponents.componentId], set: { status: state } });
    return recordIncidentStates(tx, id, null, 'update', now);
  });
}

/** Everything a user of the history can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const version = () => database.read((r) => statusVersion(r, at(600)));

  seen.listed = await recordListedComponents(database, components, at(-60));
  seen.listedAgain = await recordListedComponents(database, components, at(-30));
  seen.listedAdded = await recordListedComponents(database, [...components, { id: 'search', name: 'Search', description: 'x' }], at(-10));
  seen.searchRows = (await database.read((r) => componentStateRows(r, 'search'))).map((r) => ({ since: r.since, source: r.source }));

  const v0 = await version();
  const hidden = await database.transaction((tx) => newIncident(tx, 'A breach', { public: false }));
  seen.hiddenWritten = await publish(database, hidden, 'investigating', { api: 'major_outage' }, at(0));
  seen.versionAfterHidden = (await version()) === v0;

  const shown = await database.transaction((tx) => newIncident(tx, 'API errors'));
  const v1 = await version();
  seen.versionAfterDeclared = v1 === v0;
  seen.written = [
    await publish(database, shown, 'investigating', { api: 'partial_outage', web: 'degraded' }, at(0)),
    await publish(database, shown, 'identified', { api: 'partial_outage', web: 'degraded' }, at(10)),
    await publish(database, shown, 'identified', { web: 'operational' }, at(20)),
    await publish(database, shown, 'resolved', { api: 'operational', web: 'operational' }, at(60)),
  ];
  seen.versionAfterStates = (await version()) === v1;
  seen.worst = await database.read((r) => worstDeclared(r, shown));
  seen.worstHidden = await database.read((r) => worstDeclared(r, hidden));
  seen.history = Object.fromEntries(await database.read((r) => incidentStateHistory(r, shown)));
  const availability = await database.read((r) => dailyAvailability(r, components, at(600), 2, 1));
  seen.availability = availability.map((c) => ({
    id: c.id,
    since: c.since,
    today: c.days.at(-1)?.state,
    // the hidden incident's major outage counts nowhere: one hour of partial outage is all the API lost
    ms: c.days.at(-1)?.ms,
    intervals: c.days.at(-1)?.intervals.map((i) => ({ status: i.status, ms: i.ms, incident: i.incident })),
  }));
  return { seen, shown };
}

const HOUR = 3_600_000;

function expectations(shown: number) {
  return {
    listed: ['api', 'web'],
    listedAgain: [],
    listedAdded: ['search'],
    searchRows: [{ since: at(-10), source: 'listed' }],
    hiddenWritten: 1,
    versionAfterHidden: true,
    versionAfterDeclared: false,
    written: [2, 0, 1, 1],
    versionAfterStates: false,
    worst: 'partial_outage',
    worstHidden: 'major_outage',
    history: {
      api: [{ status: 'partial_outage', from: at(0), to: at(60) }],
      web: [{ status: 'degraded', from: at(0), to: at(20) }],
    },
    availability: [
      {
        id: 'api',
        since: at(-60),
        today: 'partial_outage',
        ms: { operational: 10 * HOUR, partial_outage: HOUR, degraded: 0, major_outage: 0, under_maintenance: 0 },
        intervals: [{ status: 'partial_outage', ms: HOUR, incident: { id: shown, title: 'API errors' } }],
      },
      {
        id: 'web',
        since: at(-60),
        today: 'degraded',
        ms: { operational: 11 * HOUR - 20 * 60_000, partial_outage: 0, degraded: 20 * 60_000, major_outage: 0, under_maintenance: 0 },
        intervals: [{ status: 'degraded', ms: 20 * 60_000, incident: { id: shown, title: 'API errors' } }],
      },
    ],
  };
}

describe('component states store on SQLite', () => {
  let engine: ReturnType<typeof tempSqliteEngine>;
  beforeAll(() => {
    engine = tempSqliteEngine();
  });
  afterAll(async () => {
    await engine.close();
  });

  it('records, shows and versions the history of service states', async () => {
    const { seen, shown } = await sequence(engine);
    expect(seen).toEqual(expectations(shown));
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('component states store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives exactly what SQLite gives, as the application role under row-level security', async () => {
    const onPostgres = await sequence(engines.postgres);
    expect(onPostgres.seen).toEqual(expectations(onPostgres.shown));
    const onSqlite = await sequence(engines.sqlite);
    expect(onPostgres.seen).toEqual(onSqlite.seen);
  });

  it('lists each service once when nodes start together: a second lister waits for the first', async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The first node has taken the lock and listed a service, and has not committed yet.
    const first = engines.postgres.transaction(async (tx) => {
      await lockListing(tx);
      await insertStates(tx, [
        { componentId: 'gated', status: 'operational', since: at(5), incidentId: null, updateId: null, source: 'listed' },
      ]);
      await gate;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    let secondDone = false;
    const second = recordListedComponents(engines.postgres, [{ id: 'gated', name: 'Gated', description: 'x' }], at(6)).then((ids) => {
      secondDone = true;
      return ids;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(secondDone).toBe(false);
    release();
    await first;
    // it read after the first committed, and found the service listed
    expect(await second).toEqual([]);
    expect(await engines.postgres.read((r) => componentStateRows(r, 'gated'))).toHaveLength(1);
    // and many at once list each service once
    const many = Array.from({ length: 6 }, (_, i) => ({ id: `svc-${i}`, name: `Service ${i}`, description: 'x' }));
    const results = await Promise.all(Array.from({ length: 8 }, () => recordListedComponents(engines.postgres, many, at(7))));
    expect(results.flat().sort()).toEqual(many.map((c) => c.id).sort());
  });

  it('records a change once when two updates of one incident are published together', async () => {
    const id = await engines.postgres.transaction((tx) => newIncident(tx, 'Together'));
    const written = await Promise.all(
      Array.from({ length: 6 }, () => publish(engines.postgres, id, 'investigating', { api: 'major_outage', web: 'degraded' }, at(30))),
    );
    expect(written.reduce((a, b) => a + b, 0)).toBe(2);
    const history = await engines.postgres.read((r) => incidentStateHistory(r, id));
    expect(history.get('api')).toEqual([{ status: 'major_outage', from: at(30), to: null }]);
    expect(history.get('web')).toEqual([{ status: 'degraded', from: at(30), to: null }]);
  });
});
