/**
 * Change notices and announcements on the stores (src/stores/change-notices.ts, announcements.ts),
 * on SQLite and PostgreSQL alike: the same steps give the same answers on both engines; and what
 * must hold when staff, or nodes, act at the same time, where PostgreSQL really runs them
 * concurrently: two publishers of one draft → one publishes, the other is refused (with the row lock,
 * and by the conditional update alone); detection run on several nodes at once → one draft per
 * change; one composer form posted several times at once → one announcement. The flows whole too
 * (publishNotice, publishAnnouncement): two publishes of one draft → one notification, the other
 * refused; a form published from three posts at once → sent once; detectChanges against content/ on
 * three nodes at once → every change drafted once.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresEngine } from '../../db/engine/postgres.ts';
import { reading } from '../../db/engine/query.ts';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { getAnnouncement, listAnnouncements, publishAnnouncement, saveAnnouncement } from '../../src/core/changes/announcements.ts';
import type { DocDiff } from '../../src/core/changes/diff.ts';
import { fingerprint } from '../../src/core/changes/diff.ts';
import {
  detectChanges,
  detectDifferences,
  getNotice,
  listNotices,
  type NoticeContext,
  publishNotice,
} from '../../src/core/changes/notices.ts';
import { loadContent } from '../../src/core/content/load.ts';
import {
  announcementForChange,
  insertAnnouncement,
  latestPublishedAnnouncements,
  markAnnouncementDiscarded,
  markAnnouncementPublished,
  updateAnnouncement,
} from '../../src/stores/announcements.ts';
import {
  insertDraft,
  latestPublishedNotices,
  markDraft,
  markPublished,
  markScheduled,
  noticeById,
  noticeForChange,
  openNotices,
  setNotification,
  supersedeNotice,
  writeNoticeText,
} from '../../src/stores/change-notices.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';
import { ROOT } from '../helpers/server.ts';

const KEYRING = auditKeyring('change-notice-store-test-secret-0123456789');
const T0 = new Date('2026-12-03T09:00:00.000Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
const content = loadContent(join(ROOT, 'content'));
const site = content.site;

const docAdded = (slug: string, title: string): DocDiff => ({
  subject: 'doc',
  change: 'added',
  id: slug,
  name: title,
  before: null,
  after: { slug, title, summary: `${title}, in short.`, updated: '2026-12-01', body: `# ${title}\n\nText.` },
  sections: [],
});
const draftOf = (diff: DocDiff, minutes: number) => ({
  subject: diff.subject,
  change: diff.change,
  subjectId: diff.id,
  subjectName: diff.name,
  details: diff,
  fingerprint: fingerprint(diff),
  intro: `About ${diff.name}.`,
  detectedAt: at(minutes),
});

const contextOf = (database: Database, now = T0): NoticeContext => ({
  database,
  now,
  site,
  publicUrl: new URL('https://trust.example/'),
  actor: { id: 7, label: 'Jane (owner)' },
  ip: '192.0.2.1',
  userAgent: 'test',
});

/** Everything a store user can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const keys = docAdded('key-management', 'Key management');
  const retention = docAdded('retention', 'Data retention');
  const ids = await database.transaction(async (tx) => ({
    keys: (await insertDraft(tx, draftOf(keys, 0))).id,
    retention: (await insertDraft(tx, draftOf(retention, 1))).id,
  }));
  seen.stored = await database.read((r) => noticeById(r, ids.keys));
  seen.open = (await database.read((r) => openNotices(r))).map((n) => [n.subjectId, n.status]);
  seen.edited = await database.transaction((tx) =>
    writeNoticeText(tx, ids.keys, { intro: 'Edited.', effectiveOn: '2026-12-20', objectionDeadline: null, overrideReason: 'Because.' }),
  );
  seen.scheduled = await database.transaction((tx) => markScheduled(tx, ids.keys, at(60)));
  seen.afterSchedule = await database.read((r) => noticeById(r, ids.keys));
  seen.backToDraft = await database.transaction(async (tx) => [await markDraft(tx, ids.keys), await markDraft(tx, ids.keys)]);
  seen.published = await database.transaction(async (tx) => {
    const first = await markPublished(tx, ids.keys, {
      publishedAt: at(5),
      publishedBy: 7,
      effectiveOn: '2026-12-20',
      objectionDeadline: null,
    });
    await setNotification(tx, ids.keys, 42);
    const second = await markPublished(tx, ids.keys, {
      publishedAt: at(6),
      publishedBy: 8,
      effectiveOn: '2026-12-21',
      objectionDeadline: null,
    });
    return [first, second];
  });
  seen.notAfterPublication = await database.transaction(async (tx) => [
    await writeNoticeText(tx, ids.keys, { intro: 'Too late.', effectiveOn: null, objectionDeadline: null, overrideReason: null }),
    await markScheduled(tx, ids.keys, at(90)),
    await supersedeNotice(tx, ids.keys),
  ]);
  seen.superseded = await database.transaction(async (tx) => [
    await supersedeNotice(tx, ids.retention),
    await supersedeNotice(tx, ids.retention),
  ]);
  seen.latest = (await database.read((r) => latestPublishedNotices(r))).map((n) => ({ ...n, id: n.id === ids.keys }));
  seen.openAfter = await database.read((r) => openNotices(r));
  seen.locked = (await database.transaction((tx) => noticeForChange(tx, ids.keys)))?.status;
  seen.domainList = await listNotices(database).then((l) => ({
    open: l.open.length,
    published: l.published.map((n) => [n.diff.id, n.intro, n.effectiveOn, n.publishedAt?.toISOString()]),
  }));
  seen.domainNotice = (await getNotice(database, ids.keys))?.diff;

  // announcements
  const announcement = await database.transaction((tx) =>
    insertAnnouncement(
      tx,
      { title: 'A new region', body: 'We now host in Frankfurt.', topics: ['subprocessors', 'docs'], effectiveOn: null },
      { status: 'draft', publishAt: null, formKey: 'form-key-0123456789abcdef', createdBy: 7, at: at(10) },
    ),
  );
  seen.byKey = await database.transaction(
    async (tx) => (await announcementForChange(tx, { formKey: 'form-key-0123456789abcdef' }))?.id === announcement,
  );
  seen.updated = await database.transaction((tx) =>
    updateAnnouncement(
      tx,
      announcement,
      { title: 'A new region: Frankfurt', body: 'We now host in Frankfurt.', topics: ['docs'], effectiveOn: '2027-01-01' },
      { status: 'scheduled', publishAt: at(120), at: at(11) },
    ),
  );
  seen.announcementPublished = await database.transaction(async (tx) => [
    await markAnnouncementPublished(tx, announcement, 7, at(12)),
    await markAnnouncementPublished(tx, announcement, 8, at(13)),
    await markAnnouncementDiscarded(tx, announcement, at(14)),
  ]);
  seen.announcements = (await database.read((r) => latestPublishedAnnouncements(r, 10))).map((a) => ({ ...a, id: a.id === announcement }));
  seen.domainAnnouncement = await getAnnouncement(database, announcement).then((a) => a && { ...a, id: a.id === announcement });
  return seen;
}

function expectSequence(seen: Record<string, unknown>) {
  expect(seen.open).toEqual([
    ['key-management', 'draft'],
    ['retention', 'draft'],
  ]);
  expect(seen.stored).toMatchObject({
    status: 'draft',
    details: docAdded('key-management', 'Key management'),
    detectedAt: T0,
    publishAt: null,
  });
  expect(seen.edited).toBe(1);
  expect(seen.scheduled).toBe(1);
  expect(seen.afterSchedule).toMatchObject({ status: 'scheduled', publishAt: at(60), intro: 'Edited.', overrideReason: 'Because.' });
  expect(seen.backToDraft).toEqual([1, 0]);
  expect(seen.published).toEqual([1, 0]);
  expect(seen.notAfterPublication).toEqual([0, 0, 0]);
  expect(seen.superseded).toEqual([1, 0]);
  expect(seen.latest).toEqual([
    expect.objectContaining({
      status: 'published',
      publishedAt: at(5),
      publishedBy: 7,
      effectiveOn: '2026-12-20',
      notificationId: 42,
      intro: 'Edited.',
    }),
  ]);
  expect(seen.openAfter).toEqual([]);
  expect(seen.locked).toBe('published');
  expect(seen.domainList).toEqual({ open: 0, published: [['key-management', 'Edited.', '2026-12-20', at(5).toISOString()]] });
  expect(seen.domainNotice).toEqual(docAdded('key-management', 'Key management'));
  expect(seen.byKey).toBe(true);
  expect(seen.updated).toBe(1);
  expect(seen.announcementPublished).toEqual([1, 0, 0]);
  expect(seen.announcements).toEqual([
    expect.objectContaining({
      id: true,
      title: 'A new region: Frankfurt',
      topics: ['docs'],
      status: 'published',
      publishedAt: at(12),
      publishAt: null,
    }),
  ]);
  expect(seen.domainAnnouncement).toMatchObject({ id: true, status: 'published', topics: ['docs'], effectiveOn: '2027-01-01' });
}

/** Staff publishing one draft from `n` requests at once, as the flow does: lock, look, change only from open. */
async function publishAtOnce(database: Database, id: number, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      database.transaction(async (tx) => {
        const notice = await noticeForChange(tx, id);
        if (notice?.status !== 'draft' && notice?.status !== 'scheduled') return 'refused';
        // give the others time to reach the same row
        await new Promise((resolve) => setTimeout(resolve, 20));
        const claimed = await markPublished(tx, id, {
          publishedAt: at(i),
          publishedBy: i,
          effectiveOn: '2026-12-20',
          objectionDeadline: null,
        });
        return claimed === 1 ? 'published' : 'lost';
      }),
    ),
  );
}

async function concurrencyCases(database: Database) {
  // two (and five) publishers of one draft
  const [one, two] = await database.transaction(async (tx) => [
    (await insertDraft(tx, draftOf(docAdded('one', 'One'), 0))).id,
    (await insertDraft(tx, draftOf(docAdded('two', 'Two'), 0))).id,
  ]);
  const pair = await publishAtOnce(database, one, 2);
  expect(pair.sort()).toEqual(['published', 'refused']);
  const five = await publishAtOnce(database, two ?? 0, 5);
  expect(five.filter((r) => r === 'published')).toHaveLength(1);
  expect(five.filter((r) => r === 'lost')).toHaveLength(0);
  // without the lock, the conditional update alone lets one through
  const [three] = await database.transaction(async (tx) => [(await insertDraft(tx, draftOf(docAdded('three', 'Three'), 0))).id]);
  const unlocked = await Promise.all(
    Array.from({ length: 4 }, (_, i) =>
      database.transaction((tx) =>
        markPublished(tx, three ?? 0, { publishedAt: at(i), publishedBy: i, effectiveOn: '2026-12-20', objectionDeadline: null }),
      ),
    ),
  );
  expect(unlocked.sort()).toEqual([0, 0, 0, 1]);

  // detection on four nodes at once, the same two changes: one draft each
  const diffs = [docAdded('key-management', 'Key management'), docAdded('retention', 'Data retention')];
  const detections = await Promise.all(Array.from({ length: 4 }, () => detectDifferences(contextOf(database), () => diffs)));
  expect(detections.flatMap((d) => d.drafted.map((n) => n.diff.id)).sort()).toEqual(['key-management', 'retention']);
  const open = await database.read((r) => openNotices(r));
  expect(open.map((n) => n.subjectId).sort()).toEqual(['key-management', 'retention']);
  // and again: nothing new
  expect(await detectDifferences(contextOf(database), () => diffs)).toEqual({
    drafted: [],
    superseded: 0,
  });

  // one composer form posted four times at once: one announcement, every post told its id
  const input = {
    title: 'Frankfurt',
    body: 'We now host in Frankfurt.',
    topics: ['docs'],
    effectiveOn: '',
    formKey: 'same-form-0123456789abcdef',
  };
  const saved = await Promise.all(Array.from({ length: 4 }, () => saveAnnouncement(contextOf(database), null, input)));
  const { open: announcements } = await listAnnouncements(database);
  expect(announcements.map((a) => a.title)).toEqual(['Frankfurt']);
  expect(saved).toEqual(Array.from({ length: 4 }, () => ({ ok: true, id: announcements[0]?.id })));
}

/** The flows whole: two staff publishing one draft at once, one composer form published from three posts at once. */
async function flowCases(database: Database) {
  const id = await database.transaction(async (tx) => (await insertDraft(tx, draftOf(docAdded('flows', 'Flows'), 0))).id);
  const results = await Promise.all([publishNotice(contextOf(database), id), publishNotice(contextOf(database), id)]);
  expect(results).toContainEqual({ ok: true, deliveries: 0 });
  expect(results).toContainEqual({ ok: false, message: 'This notice is already published.' });
  expect(await getNotice(database, id)).toMatchObject({ status: 'published', publishedAt: T0, effectiveOn: '2026-12-03' });

  const input = { title: 'Once', body: 'Sent once.', topics: ['docs'], effectiveOn: '', formKey: 'published-form-0123456789abcdef' };
  const posts = await Promise.all(Array.from({ length: 3 }, () => publishAnnouncement(contextOf(database), null, input)));
  expect(posts.filter((p) => p.ok)).toHaveLength(1);
  expect(posts.filter((p) => !p.ok)).toEqual([
    { ok: false, message: 'This announcement is already published.' },
    { ok: false, message: 'This announcement is already published.' },
  ]);
  const sent = await database.read(async (r) => {
    const q = reading(r);
    return (await q.db.select({ threadKey: q.t.notifications.threadKey }).from(q.t.notifications)).map((n) => n.threadKey);
  });
  const announced = posts.find((p) => p.ok);
  // one notification each (store-level publications above send nothing)
  expect(sent.sort()).toEqual([`announcement:${announced?.ok ? announced.id : 0}`, `notice:${id}`]);

  // detection as the server runs it at start, on three nodes at once against content/ (nothing published
  // yet: every entry is new): each change drafted once, whichever node drafted it
  const detected = await Promise.all(Array.from({ length: 3 }, () => detectChanges(contextOf(database), content)));
  const drafted = detected.flatMap((d) => d.drafted.map((n) => `${n.diff.subject}:${n.diff.id}`));
  expect(drafted.length).toBe(content.subprocessors.length + content.docs.length);
  expect(new Set(drafted).size).toBe(drafted.length);
  const openNow = await database.read((r) => openNotices(r));
  expect(openNow.map((n) => `${n.subject}:${n.subjectId}`).sort()).toEqual([...drafted].sort());
  expect(await detectChanges(contextOf(database), content)).toEqual({ drafted: [], superseded: 0 });
}

describe('change notices and announcements on SQLite: the flows whole', () => {
  it('two staff publishing one draft at once: one notification, the other told it is published; one form posted three times: sent once', async () => {
    const database = bindAuditKeys(tempSqliteEngine(), KEYRING);
    try {
      await flowCases(database);
    } finally {
      await database.close();
    }
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('change notice and announcement stores on SQLite and PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
    bindAuditKeys(engines.sqlite, KEYRING);
    bindAuditKeys(engines.postgres, KEYRING);
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('the same steps give the same answers on both engines', async () => {
    const onSqlite = await sequence(engines.sqlite);
    const onPostgres = await sequence(engines.postgres);
    expectSequence(onSqlite);
    expectSequence(onPostgres);
    expect(onPostgres).toEqual(onSqlite);
  });

  it.each(['sqlite', 'postgres'] as const)(
    '%s: concurrent publishers, detections and double posts each take effect once',
    async (engine) => {
      const fresh: SqliteEngine | PostgresEngine = engine === 'sqlite' ? bindAuditKeys(tempSqliteEngine(), KEYRING) : engines.postgres;
      try {
        // the PostgreSQL database already holds the sequence's rows: other fingerprints, other form keys
        await concurrencyCases(fresh);
        await flowCases(fresh);
      } finally {
        if (fresh.engine === 'sqlite') await fresh.close();
      }
    },
  );
});
