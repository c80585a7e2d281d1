/**
 * The incidents and breaches stores (src/stores/incidents.ts, breaches.ts) on both engines: the same
 * calls give the same answers, and on PostgreSQL, where transactions run concurrently, the row locks
 * keep concurrent changes of one incident in order — every update its own Art. 33(4) phase, a
 * resolved incident no further update, no edit of a text lost, the authority recorded once.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database, Tx } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { listAudit } from '../../src/core/audit/log.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { editUpdate } from '../../src/core/incidents/edit.ts';
import { declareIncident, type IncidentContext, incidentView, lifecycleProblem, postUpdate } from '../../src/core/incidents/incidents.ts';
import { publishPostmortem } from '../../src/core/incidents/postmortem.ts';
import type { IncidentStatus } from '../../src/core/incidents/types.ts';
import { breachRow, recordAuthorityNotified, saveBreachFacts } from '../../src/stores/breaches.ts';
import {
  componentsOf,
  incidentEditedAt,
  incidentForUpdate,
  incidentRow,
  incidentRows,
  insertIncident,
  insertPostmortem,
  insertRevisions,
  insertUpdate,
  openPublicComponentStates,
  postmortemRow,
  publicIncidentRowsBetween,
  resolveIncidentComponents,
  revisionsOf,
  setIncidentComponent,
  setIncidentHeadline,
  setIncidentState,
  setUpdateBody,
  setUpdateNotification,
  updateForEdit,
  updatesInOrder,
  updatesOf,
} from '../../src/stores/incidents.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';
import { ROOT } from '../helpers/server.ts';

const T0 = new Date('2026-11-30T09:15:00.123Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

function incident(title: string, extra: Partial<Parameters<typeof insertIncident>[1]> = {}): Parameters<typeof insertIncident>[1] {
  return {
    kind: 'outage',
    severity: 'major',
    title,
    status: 'investigating',
    public: true,
    startedAt: T0,
    createdAt: T0,
    createdBy: 7,
    ...extra,
  };
}

/** Everything a store user can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const ids = await database.transaction(async (tx) => {
    const outage = await insertIncident(tx, incident('Search is slow'));
    const breach = await insertIncident(
      tx,
      incident('Exports', { kind: 'breach', severity: 'critical', public: false, audienceOrganisationIds: [3, 1], startedAt: at(-1) }),
    );
    const old = await insertIncident(
      tx,
      incident('Old', { status: 'resolved', startedAt: at(-60 * 24 * 200), resolvedAt: at(-60 * 24 * 199) }),
    );
    const planned = await insertIncident(
      tx,
      incident('Upgrade', { kind: 'maintenance', status: 'scheduled', windowStartsAt: at(60), windowEndsAt: at(120), startedAt: at(60) }),
    );
    // set twice: the second is the state it leaves
    await setIncidentComponent(tx, outage, 'search', 'major_outage');
    await setIncidentComponent(tx, outage, 'search', 'degraded');
    await setIncidentComponent(tx, outage, 'api', 'partial_outage');
    await setIncidentComponent(tx, outage, 'Web', 'degraded');
    await setIncidentComponent(tx, planned, 'api', 'under_maintenance');
    return { outage, breach, old, planned };
  });
  seen.ids = ids;
  seen.row = await database.read(async (r) => {
    const row = await incidentRow(r, ids.breach);
    return row && { ...row, id: 'breach' };
  });
  seen.missing = await database.read((r) => incidentRow(r, 999));
  seen.components = await database.read(async (r) => [...(await componentsOf(r, [ids.outage, ids.planned, 999])).entries()]);
  seen.openPublic = await database.read(async (r) =>
    (await openPublicComponentStates(r)).sort((a, b) => a.componentId.localeCompare(b.componentId)),
  );

  const updates = await database.transaction(async (tx) => {
    const first = await insertUpdate(tx, {
      incidentId: ids.outage,
      status: 'investigating',
      body: 'Looking.',
      publishedAt: at(1),
      createdBy: 7,
    });
    const second = await insertUpdate(tx, {
      incidentId: ids.outage,
      status: 'identified',
      body: 'Found.',
      publishedAt: at(2),
      createdBy: 7,
    });
    await setUpdateNotification(tx, second, null, false);
    await setIncidentState(tx, ids.outage, { status: 'identified', nextUpdateBy: at(32), resolvedAt: null });
    const locked = await updateForEdit(tx, ids.outage, second);
    const elsewhere = await updateForEdit(tx, ids.breach, second);
    await insertRevisions(tx, [
      { incidentId: ids.outage, updateId: second, field: 'body', before: 'Found.', after: 'Found it.', notified: false, at: at(3), by: 7 },
      {
        incidentId: ids.outage,
        updateId: null,
        field: 'title',
        before: 'Search is slow',
        after: 'Search slow',
        notified: true,
        at: at(4),
        by: 7,
      },
    ]);
    await setUpdateBody(tx, second, 'Found it.');
    await setIncidentHeadline(tx, ids.outage, 'Search slow', 'critical');
    return { first, second, locked, elsewhere };
  });
  seen.locked = updates.locked;
  seen.elsewhere = updates.elsewhere;
  seen.updates = await database.read((r) => updatesOf(r, ids.outage));
  seen.latest = await database.read((r) => updatesOf(r, ids.outage, 1));
  seen.inOrder = await database.read((r) => updatesInOrder(r, ids.outage));
  seen.editedAt = await database.read((r) => incidentEditedAt(r, ids.outage));
  seen.neverEdited = await database.read((r) => incidentEditedAt(r, ids.breach));
  seen.revisions = await database.read(async (r) => (await revisionsOf(r, ids.outage)).map(({ id: _id, ...rest }) => rest));
  seen.headline = await database.read(async (r) => {
    const row = await incidentRow(r, ids.outage);
    return row && { title: row.title, severity: row.severity, status: row.status, nextUpdateBy: row.nextUpdateBy };
  });

  seen.open = await database.read(async (r) => (await incidentRows(r, { open: true, limit: 50 })).map((i) => i.title));
  seen.publicOnly = await database.read(async (r) => (await incidentRows(r, { publicOnly: true, limit: 2 })).map((i) => i.title));
  seen.since = await database.read(async (r) => (await incidentRows(r, { since: at(-60), limit: 50 })).map((i) => i.title));
  seen.between = await database.read(async (r) => (await publicIncidentRowsBetween(r, at(-60 * 24 * 90), at(10), 200)).map((i) => i.title));
  seen.betweenLong = await database.read(async (r) =>
    (await publicIncidentRowsBetween(r, at(-60 * 24 * 365), at(10), 200)).map((i) => i.title),
  );

  await database.transaction(async (tx) => {
    await setIncidentState(tx, ids.outage, { status: 'resolved', nextUpdateBy: null, resolvedAt: at(5) });
    await resolveIncidentComponents(tx, ids.outage);
    await insertPostmortem(tx, {
      incidentId: ids.outage,
      body: 'What happened.',
      publishedAt: at(6),
      publishedBy: 7,
      notificationId: null,
    });
  });
  seen.resolved = await database.read(async (r) => (await componentsOf(r, [ids.outage])).get(ids.outage));
  seen.postmortem = await database.read((r) => postmortemRow(r, ids.outage));
  seen.noPostmortem = await database.read((r) => postmortemRow(r, ids.breach));

  const facts = {
    awareAt: at(-30),
    occurredAt: null,
    nature: 'n',
    subjects: 's',
    records: 'r',
    consequences: 'not yet known',
    measures: 'm',
  };
  seen.authority = await database.transaction(async (tx) => {
    await saveBreachFacts(tx, ids.breach, facts);
    await saveBreachFacts(tx, ids.breach, { ...facts, consequences: 'c', occurredAt: at(-90) });
    return [
      await recordAuthorityNotified(tx, ids.breach, at(10)),
      await recordAuthorityNotified(tx, ids.breach, at(11)),
      await recordAuthorityNotified(tx, ids.outage, at(10)),
    ];
  });
  seen.breach = await database.read((r) => breachRow(r, ids.breach));
  return seen;
}

const expected = {
  ids: { outage: 1, breach: 2, old: 3, planned: 4 },
  row: { id: 'breach', kind: 'breach', public: false, audienceOrganisationIds: [3, 1], audienceOrganisations: null, startedAt: at(-1) },
  missing: undefined,
  components: [
    [
      1,
      [
        { componentId: 'Web', status: 'degraded' },
        { componentId: 'api', status: 'partial_outage' },
        { componentId: 'search', status: 'degraded' },
      ],
    ],
    [4, [{ componentId: 'api', status: 'under_maintenance' }]],
    [999, []],
  ],
  // open, begun and public: the outage's; not the scheduled maintenance's
  openPublic: [
    { componentId: 'api', status: 'partial_outage' },
    { componentId: 'search', status: 'degraded' },
    { componentId: 'Web', status: 'degraded' },
  ],
  locked: { id: 2, body: 'Found.', publishedAt: at(2) },
  elsewhere: undefined,
  updates: [
    { id: 2, status: 'identified', body: 'Found it.', publishedAt: at(2), notified: false, notificationId: null, editedAt: at(3) },
    { id: 1, status: 'investigating', body: 'Looking.', publishedAt: at(1), notified: true, notificationId: null, editedAt: null },
  ],
  latest: [{ id: 2 }],
  inOrder: [
    { id: 1, status: 'investigating', publishedAt: at(1), notificationId: null },
    { id: 2, status: 'identified', publishedAt: at(2), notificationId: null },
  ],
  editedAt: at(4),
  neverEdited: null,
  headline: { title: 'Search slow', severity: 'critical', status: 'identified', nextUpdateBy: at(32) },
  open: ['Upgrade', 'Search slow', 'Exports'],
  publicOnly: ['Upgrade', 'Search slow'],
  since: ['Upgrade', 'Search slow', 'Exports'],
  between: ['Search slow'],
  betweenLong: ['Search slow', 'Old'],
  resolved: [
    { componentId: 'Web', status: 'operational' },
    { componentId: 'api', status: 'operational' },
    { componentId: 'search', status: 'operational' },
  ],
  postmortem: { incidentId: 1, body: 'What happened.', publishedAt: at(6), publishedBy: 7, notificationId: null },
  noPostmortem: undefined,
  authority: [true, false, false],
  breach: { incidentId: 2, awareAt: at(-30), occurredAt: at(-90), consequences: 'c', authorityNotifiedAt: at(10) },
};

/** One update as publishing makes it: on the incident's row lock, numbered after the updates before it. */
async function postOne(tx: Tx, incidentId: number, status: IncidentStatus, minute: number): Promise<'posted' | string> {
  const current = await incidentForUpdate(tx, incidentId);
  if (!current) throw new Error('no incident');
  const refused = lifecycleProblem(current, { status });
  if (refused) return refused;
  const phase = (await updatesOf(tx, incidentId)).length + 1;
  await insertUpdate(tx, { incidentId, status, body: `phase ${phase} after ${current.status}`, publishedAt: at(minute), createdBy: 7 });
  await setIncidentState(tx, incidentId, { status, nextUpdateBy: null, resolvedAt: status === 'resolved' ? at(minute) : null });
  return 'posted';
}

/** The concurrency properties, on either engine (SQLite serialises; PostgreSQL must by its locks). */
async function concurrently(database: Database) {
  const statuses: IncidentStatus[] = ['identified', 'monitoring', 'investigating'];
  // Ten updates at once to one incident: ten updates, phases 1 to 10, each after the state the one before left.
  const busy = await database.transaction((tx) => insertIncident(tx, incident('Busy')));
  const posted = await Promise.all(
    Array.from({ length: 10 }, (_, i) => database.transaction((tx) => postOne(tx, busy, statuses[i % 3] ?? 'identified', 1))),
  );
  expect(posted).toEqual(Array(10).fill('posted'));
  const made = await database.read((r) => updatesInOrder(r, busy));
  const bodies = await database.read(async (r) => (await updatesOf(r, busy)).reverse().map((u) => u.body));
  expect(made).toHaveLength(10);
  expect(new Set(made.map((u) => u.id)).size).toBe(10);
  expect(bodies.map((b) => Number(/phase (\d+)/.exec(b)?.[1]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // each update says it followed the status the one before it set: no update decided on a stale state
  const order = made.map((u) => u.status);
  expect(bodies.slice(1).map((b) => b.split(' after ')[1])).toEqual(order.slice(0, -1));
  expect((await database.read((r) => incidentRow(r, busy)))?.status).toBe(order.at(-1));

  // Ten resolutions at once: one resolves it, the nine others find it resolved.
  const closing = await database.transaction((tx) => insertIncident(tx, incident('Closing')));
  const resolved = await Promise.all(Array.from({ length: 10 }, () => database.transaction((tx) => postOne(tx, closing, 'resolved', 2))));
  expect(resolved.filter((r) => r === 'posted')).toHaveLength(1);
  expect(resolved.filter((r) => r.startsWith('This incident is resolved'))).toHaveLength(9);
  expect(await database.read((r) => updatesInOrder(r, closing))).toHaveLength(1);

  // Ten edits of one update's text at once: each revision's "before" is the text the one before saved.
  const edited = await database.transaction(async (tx) => {
    const id = await insertIncident(tx, incident('Edited'));
    return {
      id,
      update: await insertUpdate(tx, { incidentId: id, status: 'investigating', body: 'v0', publishedAt: at(1), createdBy: 7 }),
    };
  });
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      database.transaction(async (tx) => {
        if (!(await incidentForUpdate(tx, edited.id))) throw new Error('no incident');
        const row = await updateForEdit(tx, edited.id, edited.update);
        if (!row) throw new Error('no update');
        await insertRevisions(tx, [
          {
            incidentId: edited.id,
            updateId: edited.update,
            field: 'body',
            before: row.body,
            after: `v${i + 1}`,
            notified: false,
            at: at(2),
            by: 7,
          },
        ]);
        await setUpdateBody(tx, edited.update, `v${i + 1}`);
      }),
    ),
  );
  const revisions = await database.read((r) => revisionsOf(r, edited.id));
  expect(revisions).toHaveLength(10);
  expect(revisions[0]?.before).toBe('v0');
  for (let i = 1; i < revisions.length; i++) expect(revisions[i]?.before).toBe(revisions[i - 1]?.after);
  const [current] = await database.read((r) => updatesOf(r, edited.id));
  expect(current?.body).toBe(revisions.at(-1)?.after);

  // The authority recorded as notified by ten at once: once.
  const breach = await database.transaction(async (tx) => {
    const id = await insertIncident(tx, incident('Breach', { kind: 'breach', public: false }));
    await saveBreachFacts(tx, id, {
      awareAt: T0,
      occurredAt: null,
      nature: 'n',
      subjects: 's',
      records: 'r',
      consequences: 'c',
      measures: 'm',
    });
    return id;
  });
  const recorded = await Promise.all(
    Array.from({ length: 10 }, (_, i) => database.transaction((tx) => recordAuthorityNotified(tx, breach, at(i + 1)))),
  );
  expect(recorded.filter(Boolean)).toHaveLength(1);
  expect((await database.read((r) => breachRow(r, breach)))?.authorityNotifiedAt).toEqual(at(recorded.indexOf(true) + 1));
}

describe('incidents store on SQLite', () => {
  let engine: SqliteEngine;
  beforeAll(() => {
    engine = tempSqliteEngine();
  });
  afterAll(async () => {
    await engine.close();
  });

  it('declares, updates, edits, resolves, and keeps breach facts', async () => {
    expect(await sequence(engine)).toMatchObject(expected);
  });

  it('keeps concurrent changes of one incident in order', async () => {
    await concurrently(engine);
  });
});

const content = loadContent(join(ROOT, 'content'));
const contextOn = (database: Database): IncidentContext => ({
  database,
  now: T0,
  site: content.site,
  components: content.components,
  publicUrl: new URL('https://trust.example/'),
  actor: { id: 7, label: 'Jane (responder)' },
  ip: null,
  userAgent: null,
});

describe("publishing and editing through the domain on SQLite (the services' history is not on PostgreSQL yet)", () => {
  let engine: SqliteEngine;
  let ctx: IncidentContext;
  beforeAll(() => {
    engine = bindAuditKeys(tempSqliteEngine(), auditKeyring('incident-store-test-secret'));
    ctx = contextOn(engine);
  });
  afterAll(async () => {
    await engine.close();
  });

  it('ten updates at once: each published in turn, audited with the status before it; then one correction per edit', async () => {
    const declared = await declareIncident(ctx, {
      kind: 'outage',
      severity: 'major',
      title: 'Search is slow',
      status: 'investigating',
      body: 'Looking into it.',
      components: { search: 'degraded' },
      confirmPersonalData: false,
      organisations: [],
      publicNotice: false,
      breach: null,
      window: null,
    });
    if (!declared.ok) throw new Error(declared.message);
    const statuses: IncidentStatus[] = ['identified', 'monitoring', 'investigating'];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        postUpdate({ ...ctx, now: at(i + 1) }, declared.incidentId, {
          status: statuses[i % 3] ?? 'identified',
          body: `Update ${i + 1}.`,
          components: { search: 'degraded' },
          confirmPersonalData: false,
        }),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    const record = await incidentView(engine, ctx.components, declared.incidentId);
    expect(record?.updates).toHaveLength(11);
    expect(record?.incident.status).toBe(record?.updates[0]?.status);
    const audited = (await listAudit(engine, { action: 'incidents.updated' }))
      .map((e) => e.summary as { before: { status: string }; after: { status: string } })
      .reverse();
    expect(audited).toHaveLength(10);
    for (let i = 1; i < audited.length; i++) expect(audited[i]?.before.status).toBe(audited[i - 1]?.after.status);

    const first = record?.updates.at(-1);
    if (!first) throw new Error('no first update');
    const edits = await Promise.all(
      ['A.', 'B.', 'C.'].map((body) =>
        editUpdate({ ...ctx, now: at(20) }, declared.incidentId, first.id, { body, notify: false, confirmPersonalData: false }),
      ),
    );
    expect(edits.every((e) => e.ok)).toBe(true);
    const revisions = await engine.read((r) => revisionsOf(r, declared.incidentId));
    expect(revisions.map((r) => [r.before, r.after])).toEqual([
      ['Looking into it.', 'A.'],
      ['A.', 'B.'],
      ['B.', 'C.'],
    ]);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('incidents store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives exactly what SQLite gives, as the application role under row-level security', async () => {
    const onPostgres = await sequence(engines.postgres);
    expect(onPostgres).toMatchObject(expected);
    expect(onPostgres).toEqual(await sequence(engines.sqlite));
  });

  it('keeps concurrent changes of one incident in order: the row locks', async () => {
    await concurrently(engines.postgres);
  });

  it('a postmortem published by five at once: one publishes it and announces it once, the others find it there', async () => {
    const database = bindAuditKeys(engines.postgres, auditKeyring('incident-store-test-secret'));
    const ctx = contextOn(database);
    const id = await database.transaction(async (tx) => {
      const made = await insertIncident(tx, incident('Resolved', { status: 'resolved', resolvedAt: at(5) }));
      await setIncidentComponent(tx, made, 'search', 'operational');
      await insertUpdate(tx, { incidentId: made, status: 'resolved', body: 'Fixed.', publishedAt: at(5), createdBy: 7 });
      return made;
    });
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => publishPostmortem({ ...ctx, now: at(10 + i) }, id, `What happened (${i}).`, false)),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.message === 'This incident already has a postmortem.')).toHaveLength(4);
    const published = results.find((r) => r.ok);
    const row = await database.read((r) => postmortemRow(r, id));
    expect(row?.notificationId).toBe(published?.ok ? published.notificationId : undefined);
    const announced = await engines.pg.superuser.query(
      `SELECT count(*)::int AS n FROM notifications WHERE thread_key = $1 AND kind = 'postmortem'`,
      [`incident:${id}`],
    );
    expect(announced.rows[0]?.n).toBe(1);
  });
});
