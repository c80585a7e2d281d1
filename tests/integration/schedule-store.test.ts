/**
 * Scheduled updates and maintenance windows on both engines (src/stores/scheduled-updates.ts,
 * src/stores/maintenance-windows.ts): what staff schedule, cancel and see pending, and the claims
 * that keep a due update from being published twice when several nodes (or a job run again after
 * its lease ran out) reach it at once, as publishScheduled in src/core/incidents/schedule.ts uses them.
 */
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query, reading } from '../../db/engine/query.ts';
import type { Database, Reader, Tx } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { listAudit } from '../../src/core/audit/log.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { declareIncident, incidentView } from '../../src/core/incidents/incidents.ts';
import { maintenanceJobHandlers, maintenancePlan } from '../../src/core/incidents/maintenance.ts';
import { incidentJobHandlers, pendingScheduledUpdates, scheduleUpdate } from '../../src/core/incidents/schedule.ts';
import { type Job, runDueJobs } from '../../src/core/jobs/jobs.ts';
import { lockMaintenance } from '../../src/stores/maintenance-windows.ts';
import {
  cancelPendingUpdate,
  claimScheduledUpdate,
  incidentStatusOf,
  insertScheduledUpdate,
  markScheduledPublished,
  reminderTarget,
  scheduledUpdateById,
  staffEmailOf,
} from '../../src/stores/scheduled-updates.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';
import { ROOT } from '../helpers/server.ts';

const T0 = new Date('2026-11-30T09:00:00.000Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

async function newIncident(
  tx: Tx,
  values: { kind?: 'outage' | 'maintenance'; status?: 'investigating' | 'scheduled'; window?: [Date, Date] },
) {
  const q = query(tx);
  const [row] = await q.db
    .insert(q.t.incidents)
    .values({
      kind: values.kind ?? 'outage',
      severity: 'major',
      title: 'Search is slow',
      status: values.status ?? 'investigating',
      public: true,
      startedAt: T0,
      createdAt: T0,
      nextUpdateBy: at(30),
      windowStartsAt: values.window?.[0] ?? null,
      windowEndsAt: values.window?.[1] ?? null,
      createdBy: 7,
      trustCenterId: q.trustCenter,
    })
    .returning({ id: q.t.incidents.id });
  if (!row) throw new Error('no incident');
  return row.id;
}

async function newStaff(tx: Tx, email: string): Promise<number> {
  const q = query(tx);
  const [row] = await q.db
    .insert(q.t.staff)
    .values({ email, role: 'responder', status: 'active', createdAt: T0, updatedAt: T0, trustCenterId: q.trustCenter })
    .returning({ id: q.t.staff.id });
  if (!row) throw new Error('no staff');
  return row.id;
}

const scheduled = (incidentId: number, createdBy: number, minutes: number, body: string) => ({
  incidentId,
  status: 'identified',
  body,
  components: { search: 'degraded' },
  runAt: at(minutes),
  createdBy,
  createdAt: T0,
  notify: minutes % 2 === 0,
  nextUpdateBy: minutes === 20 ? at(90) : null,
});

/** The incident updates a publisher wrote (the test's stand-in for postUpdate). */
async function updatesOf(r: Reader | Tx, incidentId: number) {
  const q = reading(r);
  const u = q.t.incidentUpdates;
  return q.db
    .select({ id: u.id, body: u.body })
    .from(u)
    .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, incidentId)));
}

/**
 * What publishScheduled does with a due update, the publishing itself reduced to writing the
 * incident update: claim, publish, mark, in one transaction. True when this call published it.
 */
function publishOnce(database: Database, scheduledId: number): Promise<boolean> {
  return database.transaction(async (tx) => {
    const row = await claimScheduledUpdate(tx, scheduledId);
    if (!row) return false;
    const q = query(tx);
    const [update] = await q.db
      .insert(q.t.incidentUpdates)
      .values({ incidentId: row.incidentId, status: 'identified', body: row.body, publishedAt: T0, trustCenterId: q.trustCenter })
      .returning({ id: q.t.incidentUpdates.id });
    if (!update) throw new Error('no update');
    await markScheduledPublished(tx, scheduledId, update.id);
    return true;
  });
}

/** Everything a store user can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const { incidentId, author } = await database.transaction(async (tx) => ({
    incidentId: await newIncident(tx, {}),
    author: await newStaff(tx, 'responder@example.com'),
  }));
  const ids = await database.transaction(async (tx) => [
    await insertScheduledUpdate(tx, scheduled(incidentId, author, 20, 'Found it.')),
    await insertScheduledUpdate(tx, scheduled(incidentId, author, 10, 'Looking.')),
    await insertScheduledUpdate(tx, scheduled(incidentId, author, 30, 'Never.')),
  ]);
  const [found, looking, never] = ids as [number, number, number];
  seen.status = await database.read((r) => incidentStatusOf(r, incidentId));
  seen.noIncident = await database.read((r) => incidentStatusOf(r, incidentId + 100));
  seen.author = await database.read((r) => staffEmailOf(r, author));
  seen.reminder = await database.read((r) => reminderTarget(r, incidentId));
  seen.pending = (await pendingScheduledUpdates(database, incidentId)).map((u) => [u.id, u.body, u.runAt]);
  seen.row = await database.read((r) => scheduledUpdateById(r, found));

  seen.cancelled = await database.transaction((tx) => cancelPendingUpdate(tx, never, at(1)));
  seen.cancelledAgain = await database.transaction((tx) => cancelPendingUpdate(tx, never, at(2)));
  seen.claimCancelled = await database.transaction(async (tx) => (await claimScheduledUpdate(tx, never)) ?? null);

  seen.published = [await publishOnce(database, looking), await publishOnce(database, looking)];
  seen.cancelPublished = await database.transaction((tx) => cancelPendingUpdate(tx, looking, at(3)));
  const markAgain = database.transaction((tx) => markScheduledPublished(tx, looking, 999));
  await expect(markAgain).rejects.toThrow(/no longer pending/);
  seen.pendingAfter = (await pendingScheduledUpdates(database, incidentId)).map((u) => u.body);
  const rows = await database.read(async (r) => [await scheduledUpdateById(r, looking), await scheduledUpdateById(r, never)]);
  seen.after = rows.map((row) => ({ cancelledAt: row?.cancelledAt ?? null, published: row?.publishedUpdateId !== null }));
  seen.updates = (await database.read((r) => updatesOf(r, incidentId))).map((u) => u.body);

  // A maintenance window as its steps see it, and its planned steps as the console lists them.
  const maintenance = await database.transaction((tx) =>
    newIncident(tx, { kind: 'maintenance', status: 'scheduled', window: [at(60), at(120)] }),
  );
  seen.window = await database.transaction((tx) => lockMaintenance(tx, maintenance));
  seen.noWindow = await database.transaction((tx) => lockMaintenance(tx, incidentId));
  await database.transaction(async (tx) => {
    const q = query(tx);
    const job = (step: string, runAt: Date, status: 'pending' | 'done') => ({
      key: `maintenance:${maintenance}:${step}`,
      kind: `maintenance.${step}`,
      runAt,
      payload: {},
      status,
      createdAt: T0,
      finishedAt: status === 'done' ? at(1) : null,
      trustCenterId: q.trustCenter,
    });
    await q.db.insert(q.t.jobs).values([
      job('complete', at(120), 'pending'),
      job('start', at(60), 'pending'),
      job('remind-1h', at(0), 'done'),
      // another maintenance's step, whose key only begins alike
      { ...job('start', at(5), 'pending'), key: `maintenance:${maintenance}0:start` },
    ]);
  });
  seen.plan = await maintenancePlan(database, maintenance);
  return { seen, ids: { found, looking, never, incidentId, maintenance } };
}

function expected(ids: { found: number; looking: number; never: number; incidentId: number }) {
  return {
    status: 'investigating',
    noIncident: undefined,
    author: 'responder@example.com',
    reminder: { title: 'Search is slow', status: 'investigating', nextUpdateBy: at(30) },
    pending: [
      [ids.looking, 'Looking.', at(10)],
      [ids.found, 'Found it.', at(20)],
      [ids.never, 'Never.', at(30)],
    ],
    row: {
      id: ids.found,
      incidentId: ids.incidentId,
      status: 'identified',
      body: 'Found it.',
      components: { search: 'degraded' },
      runAt: at(20),
      createdBy: expect.any(Number),
      createdAt: T0,
      cancelledAt: null,
      publishedUpdateId: null,
      notify: true,
      nextUpdateBy: at(90),
    },
    cancelled: true,
    cancelledAgain: false,
    claimCancelled: null,
    published: [true, false],
    cancelPublished: false,
    pendingAfter: ['Found it.'],
    after: [
      { cancelledAt: null, published: true },
      { cancelledAt: at(1), published: false },
    ],
    updates: ['Looking.'],
    window: { kind: 'maintenance', status: 'scheduled', window: { startsAt: at(60), endsAt: at(120) }, createdBy: 7 },
    noWindow: { kind: 'outage', status: 'investigating', window: null, createdBy: 7 },
    plan: [
      { step: 'remind-1h', label: 'Reminder to subscribers, 1 hour before', at: at(1), state: 'done' },
      { step: 'start', label: 'Start: services under maintenance, subscribers told', at: at(60), state: 'planned' },
      { step: 'complete', label: 'Completion: services operational, subscribers told', at: at(120), state: 'planned' },
    ],
  };
}

/** N publishers reaching the same due updates at once: every update published exactly once. */
async function concurrentPublishers(database: Database, publishers: number) {
  const { incidentId, due } = await database.transaction(async (tx) => {
    const incident = await newIncident(tx, {});
    const author = await newStaff(tx, `p${publishers}@example.com`);
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push(await insertScheduledUpdate(tx, scheduled(incident, author, i + 1, `update ${i}`)));
    return { incidentId: incident, due: ids };
  });
  const wins = await Promise.all(
    Array.from({ length: publishers }, async () => {
      let won = 0;
      for (const id of due) if (await publishOnce(database, id)) won++;
      return won;
    }),
  );
  const updates = await database.read((r) => updatesOf(r, incidentId));
  const marks = await database.read(async (r) => Promise.all(due.map((id) => scheduledUpdateById(r, id))));
  return { wins, updates, marks };
}

describe('scheduled updates store on SQLite', () => {
  let engine: ReturnType<typeof tempSqliteEngine>;
  beforeAll(() => {
    engine = tempSqliteEngine();
  });
  afterAll(async () => {
    await engine.close();
  });

  it('schedules, cancels, claims and publishes once; maintenance windows and their plan', async () => {
    const { seen, ids } = await sequence(engine);
    expect(seen).toEqual(expected(ids));
  });

  it('two publishers of the same due updates publish each once', async () => {
    const { wins, updates, marks } = await concurrentPublishers(engine, 2);
    expect(wins.reduce((a, b) => a + b, 0)).toBe(4);
    expect(updates.map((u) => u.body).sort()).toEqual(['update 0', 'update 1', 'update 2', 'update 3']);
    expect(marks.map((m) => m?.publishedUpdateId).sort()).toEqual(updates.map((u) => u.id).sort());
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('scheduled updates store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives exactly what SQLite gives, as the application role under row-level security', async () => {
    const onPostgres = await sequence(engines.postgres);
    expect(onPostgres.seen).toEqual(expected(onPostgres.ids));
    expect(onPostgres.seen).toEqual((await sequence(engines.sqlite)).seen);
  });

  it('concurrent publishers of the same due updates publish each exactly once', async () => {
    const { wins, updates, marks } = await concurrentPublishers(engines.postgres, 6);
    expect(wins.reduce((a, b) => a + b, 0)).toBe(4);
    expect(updates.map((u) => u.body).sort()).toEqual(['update 0', 'update 1', 'update 2', 'update 3']);
    expect(marks.map((m) => m?.publishedUpdateId).sort()).toEqual(updates.map((u) => u.id).sort());
  });

  it('a cancel racing a publish: exactly one of them happens', async () => {
    const database = engines.postgres;
    for (let round = 0; round < 5; round++) {
      const { incidentId, id } = await database.transaction(async (tx) => {
        const incident = await newIncident(tx, {});
        const author = await newStaff(tx, `race${round}@example.com`);
        return { incidentId: incident, id: await insertScheduledUpdate(tx, scheduled(incident, author, 5, 'racing')) };
      });
      const [published, cancelled] = await Promise.all([
        publishOnce(database, id),
        database.transaction((tx) => cancelPendingUpdate(tx, id, at(4))),
      ]);
      expect([published, cancelled].filter(Boolean)).toHaveLength(1);
      const row = await database.read((r) => scheduledUpdateById(r, id));
      expect((await database.read((r) => updatesOf(r, incidentId))).length).toBe(published ? 1 : 0);
      expect(row?.cancelledAt === null).toBe(published);
    }
  });

  it('steps of one maintenance run one after the other: a start that came due twice starts it once', async () => {
    const database = engines.postgres;
    const maintenance = await database.transaction((tx) =>
      newIncident(tx, { kind: 'maintenance', status: 'scheduled', window: [at(60), at(120)] }),
    );
    // What the start step does under the lock: only while the maintenance is still scheduled.
    const start = () =>
      database.transaction(async (tx) => {
        const state = await lockMaintenance(tx, maintenance);
        if (state?.status !== 'scheduled') return false;
        const q = query(tx);
        await q.db
          .update(q.t.incidents)
          .set({ status: 'in_progress' })
          .where(and(eq(q.t.incidents.trustCenterId, q.trustCenter), eq(q.t.incidents.id, maintenance)));
        await q.db
          .insert(q.t.incidentUpdates)
          .values({ incidentId: maintenance, status: 'in_progress', body: 'started', publishedAt: at(60), trustCenterId: q.trustCenter });
        return true;
      });
    const started = await Promise.all(Array.from({ length: 5 }, start));
    expect(started.filter(Boolean)).toHaveLength(1);
    expect(await database.read((r) => updatesOf(r, maintenance))).toHaveLength(1);
  });
});

/** The state of the job of each key (named by the caller), or null when there is none. */
async function jobStates(r: Reader | Tx, keys: Record<string, string>) {
  const q = reading(r);
  const j = q.t.jobs;
  const rows = await q.db.select({ key: j.key, status: j.status }).from(j).where(eq(j.trustCenterId, q.trustCenter));
  return Object.fromEntries(Object.entries(keys).map(([name, key]) => [name, rows.find((row) => row.key === key)?.status ?? null]));
}

/**
 * The whole path on one engine: staff schedule an update (scheduleUpdate), the job runner publishes
 * it when due through the real handler (postUpdate in the handler's transaction), and a second run of
 * the same job (its lease ran out), plus three more at once, publish nothing more.
 */
async function scheduledThroughTheRunner(engine: Database) {
  const database = bindAuditKeys(engine, auditKeyring('schedule-store-test-secret'));
  const content = loadContent(join(ROOT, 'content'));
  const { incidentId, author } = await database.transaction(async (tx) => ({
    incidentId: await newIncident(tx, {}),
    author: await newStaff(tx, 'scheduler@example.com'),
  }));
  const ctx = {
    database,
    now: T0,
    site: content.site,
    components: content.components,
    publicUrl: new URL('https://trust.example/'),
    actor: { id: author, label: 'scheduler@example.com' },
    ip: null,
    userAgent: null,
  };
  const scheduled = await scheduleUpdate(
    ctx,
    incidentId,
    {
      status: 'identified',
      body: 'Found the slow index.',
      components: { search: 'degraded' },
      confirmPersonalData: false,
      nextUpdateBy: at(90),
    },
    at(10),
  );
  if (!scheduled.ok) throw new Error(scheduled.message);
  const handlers = incidentJobHandlers({
    database,
    keys: { keys: [Buffer.alloc(32, 1)], secret: 'schedule-store-test-secret' },
    site: content.site,
    components: content.components,
    publicUrl: new URL('https://trust.example/'),
    staffSlack: null,
  });
  const early = await runDueJobs(database, handlers, at(9));
  const ran = await runDueJobs(database, handlers, at(11));
  // The same job again, as after its lease ran out, from four runners at once.
  const handler = handlers['incident.scheduled_update'];
  if (!handler) throw new Error('no handler');
  const job: Job = {
    id: 0,
    key: `scheduled-update:${scheduled.id}`,
    kind: 'incident.scheduled_update',
    runAt: at(10),
    payload: { scheduledUpdateId: scheduled.id },
    attempts: 1,
  };
  await Promise.all(Array.from({ length: 4 }, () => handler(job, at(12))));
  const record = await incidentView(database, content.components, incidentId);
  const row = await database.read((r) => scheduledUpdateById(r, scheduled.id));
  const audited = await listAudit(database, { action: 'incidents.updated' });
  return {
    early,
    ran,
    status: record?.incident.status,
    nextUpdateBy: record?.incident.nextUpdateBy,
    services: record?.incident.components.map((c) => [c.id, c.status]),
    updates: record?.updates.map((u) => [u.body, u.publishedAt, u.notified]),
    publishedAs: row?.publishedUpdateId === record?.updates[0]?.id,
    pending: (await pendingScheduledUpdates(database, incidentId)).length,
    audited: audited.map((e) => [e.target, e.actorType, e.actorId]),
    jobs: await database.read((r) =>
      jobStates(r, {
        scheduled: `scheduled-update:${scheduled.id}`,
        soon: `reminder:${incidentId}:soon`,
        overdue: `reminder:${incidentId}:overdue`,
      }),
    ),
    incidentId,
    author,
  };
}

function publishedThroughTheRunner(seen: { incidentId: number; author: number }) {
  return {
    early: 0,
    ran: 1,
    status: 'identified',
    nextUpdateBy: at(90),
    services: [['search', 'degraded']],
    updates: [['Found the slow index.', at(11), true]],
    publishedAs: true,
    pending: 0,
    audited: [[`incident:${seen.incidentId}`, 'staff', seen.author]],
    // the job done; the reminders planned for the promise it made
    jobs: { scheduled: 'done', soon: 'pending', overdue: 'pending' },
  };
}

/**
 * Maintenance declared on one engine (its plan written in the declaring transaction), then its
 * steps run by the job runner as they come due: reminded, started, completed.
 */
async function maintenanceThroughTheRunner(engine: Database) {
  const database = bindAuditKeys(engine, auditKeyring('schedule-store-test-secret'));
  const content = loadContent(join(ROOT, 'content'));
  const author = await database.transaction((tx) => newStaff(tx, 'planner@example.com'));
  const declared = await declareIncident(
    {
      database,
      now: T0,
      site: content.site,
      components: content.components,
      publicUrl: new URL('https://trust.example/'),
      actor: { id: author, label: 'planner@example.com' },
      ip: null,
      userAgent: null,
    },
    {
      kind: 'maintenance',
      severity: 'minor',
      title: 'Search index rebuild',
      status: 'scheduled',
      body: 'We will rebuild the search index.',
      components: { search: 'under_maintenance' },
      confirmPersonalData: false,
      organisations: [],
      publicNotice: false,
      breach: null,
      window: { startsAt: at(120), endsAt: at(180) },
    },
  );
  if (!declared.ok) throw new Error(declared.message);
  const handlers = maintenanceJobHandlers({
    database,
    site: content.site,
    components: content.components,
    templates: content.templates,
    publicUrl: new URL('https://trust.example/'),
  });
  const seen: Record<string, unknown> = {};
  seen.planned = (await maintenancePlan(database, declared.incidentId)).map((p) => [p.step, p.at, p.state]);
  for (const minutes of [61, 121, 181]) {
    const ran = await runDueJobs(database, handlers, at(minutes));
    const record = await incidentView(database, content.components, declared.incidentId);
    seen[`at ${minutes}`] = { ran, status: record?.incident.status, services: record?.incident.components.map((c) => c.status) };
  }
  const record = await incidentView(database, content.components, declared.incidentId);
  seen.updates = record?.updates.map((u) => [u.status, u.publishedAt]);
  seen.done = (await maintenancePlan(database, declared.incidentId)).map((p) => [p.step, p.state]);
  return seen;
}

describe.skipIf(!TEST_POSTGRES_URL)('maintenance steps run by the job runner on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it("planned when declared, then reminded, started and completed each in its step's transaction; as on SQLite", async () => {
    const onPostgres = await maintenanceThroughTheRunner(engines.postgres);
    expect(onPostgres).toEqual({
      planned: [
        ['remind-1h', at(60), 'planned'],
        ['start', at(120), 'planned'],
        ['complete', at(180), 'planned'],
      ],
      'at 61': { ran: 1, status: 'scheduled', services: ['under_maintenance'] },
      'at 121': { ran: 1, status: 'in_progress', services: ['under_maintenance'] },
      'at 181': { ran: 1, status: 'resolved', services: ['operational'] },
      updates: [
        ['resolved', at(181)],
        ['in_progress', at(121)],
        ['scheduled', T0],
      ],
      done: [
        ['remind-1h', 'done'],
        ['start', 'done'],
        ['complete', 'done'],
      ],
    });
    expect(onPostgres).toEqual(await maintenanceThroughTheRunner(engines.sqlite));
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('a due scheduled update published by the job runner on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it("publishes it once, in the handler's transaction, with its notice, audit and reminders; as on SQLite", async () => {
    const onPostgres = await scheduledThroughTheRunner(engines.postgres);
    expect(onPostgres).toMatchObject(publishedThroughTheRunner(onPostgres));
    const onSqlite = await scheduledThroughTheRunner(engines.sqlite);
    expect({ ...onSqlite, incidentId: 0, author: 0, audited: onSqlite.audited.length }).toEqual({
      ...onPostgres,
      incidentId: 0,
      author: 0,
      audited: onPostgres.audited.length,
    });
  });
});
