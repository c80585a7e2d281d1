/**
 * The published change history, its baseline and objections on the stores (issue 15): the same
 * observations on SQLite and on PostgreSQL (as the application role, under row-level security),
 * including what must hold when callers race on PostgreSQL, where transactions really run at once:
 * nodes starting together record one baseline, one objection link filed ten times at once files one
 * objection, and two staff deciding one objection at once each see (and audit) what the other left.
 */
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query, reading } from '../../db/engine/query.ts';
import type { Database, Tx } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import type { SubprocessorDiff } from '../../src/core/changes/diff.ts';
import { publishedDocs, publishedSubprocessors } from '../../src/core/changes/history.ts';
import { trackedSince } from '../../src/core/changes/log.ts';
import { getObjection, listObjections, openObjectionLink, updateObjection } from '../../src/core/changes/objections.ts';
import { changesVersion, subprocessorList, subprocessorsDocument } from '../../src/core/changes/public.ts';
import { recordBaseline } from '../../src/core/changes/snapshot.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { objectionToken } from '../../src/core/notify/links.ts';
import { filedFrom, insertObjection, objectionRows } from '../../src/stores/objections.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';
import { ROOT } from '../helpers/server.ts';

const SECRET = 'change-history-store-test-secret-0123456789';
const KEYRING = auditKeyring(SECRET);
const content = loadContent(join(ROOT, 'content'));
const T0 = new Date('2026-11-02T09:00:00.000Z');
const DAY = 86_400_000;
const at = (days: number) => new Date(T0.getTime() + days * DAY);
const day = (days: number) => at(days).toISOString().slice(0, 10);
const PUBLIC_URL = new URL('https://trust.example/');

/** A published notice adding a subprocessor, as publishing stores it (notices.ts is another capability's). */
async function publishAddition(tx: Tx, id: string, name: string, publishedDays: number, effectiveDays: number): Promise<number> {
  const first = content.subprocessors[0];
  if (!first) throw new Error('no subprocessor in content/');
  const after = { ...JSON.parse(JSON.stringify(first)), id, name };
  const diff: SubprocessorDiff = { subject: 'subprocessor', change: 'added', id, name, before: null, after, fields: [] };
  const q = query(tx);
  const [row] = await q.db
    .insert(q.t.changeNotices)
    .values({
      subject: 'subprocessor',
      change: 'added',
      subjectId: id,
      subjectName: name,
      details: diff,
      fingerprint: `test:${id}`,
      status: 'published',
      intro: `We intend to engage ${name}.`,
      effectiveOn: day(effectiveDays),
      objectionDeadline: day(effectiveDays - 1),
      publishedAt: at(publishedDays),
      detectedAt: at(publishedDays),
      trustCenterId: q.trustCenter,
    })
    .returning({ id: q.t.changeNotices.id });
  if (!row) throw new Error('no notice');
  return row.id;
}

async function recipient(tx: Tx, address: string, organisation: string): Promise<number> {
  const q = query(tx);
  const [s] = await q.db
    .insert(q.t.subscribers)
    .values({ organisation, createdAt: T0, trustCenterId: q.trustCenter })
    .returning({ id: q.t.subscribers.id });
  if (!s) throw new Error('no subscriber');
  const [r] = await q.db
    .insert(q.t.recipients)
    .values({
      subscriberId: s.id,
      channel: 'email',
      address,
      addressHash: `hash:${address}`,
      status: 'active',
      createdAt: T0,
      trustCenterId: q.trustCenter,
    })
    .returning({ id: q.t.recipients.id });
  if (!r) throw new Error('no recipient');
  return r.id;
}

async function snapshotCounts(database: Database) {
  return database.read(async (r) => {
    const q = reading(r);
    const s = q.t.contentSnapshots;
    return {
      subprocessors: await q.db.$count(s, eq(s.kind, 'subprocessors')),
      docs: await q.db.$count(s, eq(s.kind, 'docs')),
    };
  });
}

async function auditOf(database: Database, target: string) {
  const rows = await database.read(async (r) => {
    const q = reading(r);
    const a = q.t.auditLog;
    return q.db
      .select({ id: a.id, action: a.action, summary: a.summary })
      .from(a)
      .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.target, target)));
  });
  return rows.sort((a, b) => a.id - b.id).map(({ action, summary }) => ({ action, summary }));
}

const names = (items: { name: string }[]) => items.map((s) => s.name);

/** Everything a caller can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const contentNames = content.subprocessors.map((s) => s.name).sort((a, b) => a.localeCompare(b));

  // Before the first start: no history, no list.
  seen.before = {
    trackedSince: await trackedSince(database),
    published: await database.read((r) => publishedSubprocessors(r)),
    version: await database.read((r) => changesVersion(r, T0)),
  };

  // Five nodes start at once: one baseline of each kind.
  const recorded = await Promise.all(Array.from({ length: 5 }, () => recordBaseline(database, content, T0)));
  seen.recorded = recorded.filter((kinds) => kinds.length > 0);
  seen.snapshots = await snapshotCounts(database);
  seen.restart = await recordBaseline(database, content, at(1));
  seen.trackedSince = await trackedSince(database);
  seen.baseline = {
    subprocessors: names(await database.read((r) => publishedSubprocessors(r))).sort((a, b) => a.localeCompare(b)),
    docs: (await database.read((r) => publishedDocs(r))).map((d) => d.slug),
  };

  // A subprocessor announced on day 2, in effect on day 32; another announced on day 3, in effect on day 5.
  const [later, sooner] = await database.transaction(async (tx) => [
    await publishAddition(tx, 'newco', 'Newco', 2, 32),
    await publishAddition(tx, 'quickco', 'Quickco', 3, 5),
  ]);
  if (later === undefined || sooner === undefined) throw new Error('no notices');
  seen.version = await database.read((r) => changesVersion(r, at(4)));
  const list = async (asOf: string | null, now: Date) => {
    const answer = await subprocessorList(database, asOf, now);
    if (!answer.ok) return answer;
    const { view } = answer;
    return {
      day: view.day,
      archived: view.archived,
      problem: view.problem,
      extra: names(view.items).filter((n) => !contentNames.includes(n)),
      count: view.items.length,
      coming: view.coming.map((c) => [c.noticeId, c.change, c.effectiveOn, c.subprocessor.name]),
    };
  };
  seen.lists = {
    day4: await list(null, at(4)),
    day1AsOf: await list(day(1), at(4)),
    day2AsOf: await list(day(2), at(4)),
    future: await list(day(40), at(4)),
    notADay: await list('2026-02-30', at(4)),
    beforeHistory: await list(day(-3), at(4)),
    day40: await list(null, at(40)),
  };
  const document = await subprocessorsDocument(database, PUBLIC_URL, at(4));
  seen.document = {
    asOf: document.asOf,
    coming: document.coming.map((c) => [c.notice, c.subprocessor.name]),
    history: document.history.map((h) => [h.notice, h.name, h.effectiveOn]),
  };
  seen.published = names(await database.read((r) => publishedSubprocessors(r))).filter((n) => !contentNames.includes(n));

  // Objections: the link opens its notice; ten filings from one link at once file one objection.
  const [dana, eve] = await database.transaction(async (tx) => [
    await recipient(tx, 'dana@customer.example', 'Customer Ltd'),
    await recipient(tx, 'eve@customer.example', 'Other Ltd'),
  ]);
  if (dana === undefined || eve === undefined) throw new Error('no recipients');
  const link = await openObjectionLink(database, SECRET, objectionToken(SECRET, later, dana), at(4));
  seen.link = link && {
    notice: link.notice.id === later,
    heading: link.notice.diff.name,
    organisation: link.organisation,
    existing: link.existing,
    late: link.late,
  };
  seen.forged = await openObjectionLink(database, SECRET, `${objectionToken(SECRET, later, dana)}x`, at(4));
  const filings = await Promise.all(
    Array.from({ length: 10 }, (_, n) =>
      database.transaction(async (tx) => {
        const id = await insertObjection(tx, {
          noticeId: later,
          recipientId: dana,
          linkRecipient: dana,
          subscriberId: null,
          organisation: 'Customer Ltd',
          contactName: 'Dana',
          reasons: `Filing ${n}`,
          late: false,
          createdAt: at(4),
        });
        return { id, filed: (await filedFrom(tx, later, dana))?.id };
      }),
    ),
  );
  const winners = filings.filter((f) => f.id !== undefined);
  seen.filings = {
    filed: winners.length,
    everyoneSeesIt: filings.every((f) => f.filed === winners[0]?.id),
  };
  const lateOne = await database.transaction((tx) =>
    insertObjection(tx, {
      noticeId: later,
      recipientId: eve,
      linkRecipient: eve,
      subscriberId: null,
      organisation: null,
      contactName: null,
      reasons: 'Too late.',
      late: true,
      createdAt: at(33),
    }),
  );
  const first = winners[0]?.id ?? 0;
  seen.reopened = (await openObjectionLink(database, SECRET, objectionToken(SECRET, later, dana), at(5)))?.existing;
  seen.listed = (await listObjections(database)).map((o) => [o.id === first ? 'first' : 'late', o.noticeHeading, o.status, o.late]);

  // Two staff decide at once; then a note. The audit trail reads as one history.
  const staff = (id: number, label: string) => ({ database, now: at(6), actor: { id, label }, ip: null, userAgent: null });
  seen.decisions = await Promise.all([
    updateObjection(staff(1, 'ana'), first, { status: 'in_discussion', note: '' }),
    updateObjection(staff(2, 'bo'), first, { status: 'resolved', note: '' }),
  ]);
  const decided = await auditOf(database, `objection:${first}`);
  const [one, two] = decided.map((d) => d.summary as { before: string; after: string });
  seen.decisionsChain = { count: decided.length, startsOpen: one?.before === 'open', continues: two?.before === one?.after };
  const finalStatus = (await getObjection(database, first))?.status;
  seen.finalIsLast = finalStatus === two?.after;
  seen.noted = await updateObjection(staff(1, 'ana'), first, { status: null, note: '  Called Dana.  ' });
  seen.refusals = [
    await updateObjection(staff(1, 'ana'), first, { status: 'maybe', note: '' }),
    await updateObjection(staff(1, 'ana'), first, { status: finalStatus ?? null, note: ' ' }),
    await updateObjection(staff(1, 'ana'), 999_999, { status: 'resolved', note: '' }),
  ];
  const detail = await getObjection(database, first);
  seen.detail = detail && { notes: detail.notes.map((n) => [n.body, n.createdAt]), updatedAt: detail.updatedAt, late: detail.late };
  seen.lateOne = (await getObjection(database, lateOne ?? 0))?.late;
  seen.audit = (await auditOf(database, `objection:${first}`)).map((a) => a.action);

  // Another trust center sees none of it.
  seen.otherTrustCenter = await database.read(async (r) => ({ objections: await objectionRows(r, undefined, 10) }), { trustCenter: 2 });
  return seen;
}

const expected = {
  before: { trackedSince: null, published: [], version: '0:0:2026-11-02' },
  recorded: [['subprocessors', 'docs']],
  snapshots: { subprocessors: 1, docs: 1 },
  restart: [],
  trackedSince: T0,
  version: '2:0:2026-11-06',
  lists: {
    day4: {
      day: '2026-11-06',
      archived: false,
      problem: null,
      extra: [],
      coming: [
        [1, 'added', '2026-12-04', 'Newco'],
        [2, 'added', '2026-11-07', 'Quickco'],
      ],
    },
    day1AsOf: { day: '2026-11-03', archived: true, extra: [], coming: [] },
    day2AsOf: { day: '2026-11-04', archived: true, extra: [], coming: [[1, 'added', '2026-12-04', 'Newco']] },
    future: { day: '2026-11-06', archived: false, problem: expect.stringContaining('2026-12-12 is in the future') },
    notADay: { ok: false, status: 400 },
    beforeHistory: { ok: false, status: 404, historyStarts: '2026-11-02' },
    day40: { day: '2026-12-12', extra: ['Newco', 'Quickco'], coming: [] },
  },
  document: {
    asOf: '2026-11-06',
    coming: [
      [1, 'Newco'],
      [2, 'Quickco'],
    ],
    history: [
      [2, 'Quickco', '2026-11-07'],
      [1, 'Newco', '2026-12-04'],
    ],
  },
  published: ['Newco', 'Quickco'],
  link: { notice: true, heading: 'Newco', organisation: 'Customer Ltd', existing: null, late: false },
  forged: null,
  filings: { filed: 1, everyoneSeesIt: true },
  reopened: { createdAt: at(4), late: false },
  listed: [
    ['late', 'New subprocessor: Newco', 'open', true],
    ['first', 'New subprocessor: Newco', 'open', false],
  ],
  decisions: [{ ok: true }, { ok: true }],
  decisionsChain: { count: 2, startsOpen: true, continues: true },
  finalIsLast: true,
  noted: { ok: true },
  refusals: [
    { ok: false, message: expect.stringContaining('Choose a status') },
    { ok: false, message: 'Nothing to save: change the status or write a note.' },
    { ok: false, message: 'There is no such objection.' },
  ],
  detail: { notes: [['Called Dana.', at(6)]], updatedAt: at(6), late: false },
  lateOne: true,
  audit: ['objections.status_changed', 'objections.status_changed', 'objections.noted'],
  otherTrustCenter: { objections: [] },
};

describe('change history, baselines and objections store on SQLite', () => {
  let engine: Database;
  beforeAll(() => {
    engine = bindAuditKeys(tempSqliteEngine(), KEYRING);
  });
  afterAll(async () => {
    await engine.close();
  });

  it('records one baseline, builds the history, files one objection per link and keeps the decisions in order', async () => {
    const seen = await sequence(engine);
    expect(seen).toMatchObject(expected);
    expect(seen.baseline).toEqual({
      subprocessors: content.subprocessors.map((s) => s.name).sort((a, b) => a.localeCompare(b)),
      docs: content.docs.map((d) => d.slug),
    });
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('change history, baselines and objections store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
    bindAuditKeys(engines.postgres, KEYRING);
    bindAuditKeys(engines.sqlite, KEYRING);
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives what SQLite gives, as the application role under row-level security, also when callers race', async () => {
    const onPostgres = await sequence(engines.postgres);
    expect(onPostgres).toMatchObject(expected);
    expect(onPostgres).toEqual(await sequence(engines.sqlite));
  });
});
