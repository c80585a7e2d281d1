/**
 * The audit log read and purged through the stores (src/stores/audit.ts via src/core/audit/log.ts):
 * listing, export, retention purge and verification give the same answers on SQLite and PostgreSQL,
 * entry for entry (same ids, same MACs), and on PostgreSQL concurrent purges and appends keep one
 * chain that verifies, with each purge recorded once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { refusalFingerprint } from '../../src/core/audit/canonical.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { type AuditInput, exportAudit, listAudit, purgeAudit, verifyAuditChain, writeAudit } from '../../src/core/audit/log.ts';
import { closeRepeatWindows, openRepeatWindows, type RefusalInput, recordRefusal, timesRecorded } from '../../src/core/audit/repeats.ts';
import { entryById } from '../../src/stores/audit.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL } from '../helpers/postgres.ts';

const KEYRING = auditKeyring('audit-store-test-secret-0123456789abcdef');
const T0 = new Date('2026-12-01T09:00:00.000Z');
const DAY = 86_400_000;
const day = (n: number) => new Date(T0.getTime() + n * DAY);
const ACTIONS = ['auth.sign_out', 'staff.role_changed', 'settings.test_sent'] as const;

const input = (i: number): AuditInput => ({
  actor: { type: 'staff', id: (i % 3) + 1, label: `staff${(i % 3) + 1}@lumenwork.example` },
  ip: `192.0.2.${i}`,
  action: ACTIONS[i % 3] ?? 'auth.sign_out',
  target: `staff:${i}`,
  summary: { n: i, note: i === 4 ? 'a "quoted", comma' : null },
});

/** Everything a reader of the log can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const ids = (entries: { id: number }[]) => entries.map((e) => e.id);
  // Twelve entries, one a day.
  for (let i = 0; i < 12; i++) await database.transaction((tx) => writeAudit(tx, input(i), day(i)));

  seen.all = ids(await listAudit(database));
  seen.byActor = ids(await listAudit(database, { actorId: 2 }));
  seen.byAction = ids(await listAudit(database, { action: 'settings.test_sent' }));
  seen.byTime = ids(await listAudit(database, { from: day(3), to: day(6) }));
  const page1 = await listAudit(database, { limit: 5 });
  seen.page1 = ids(page1);
  seen.page2 = ids(await listAudit(database, { limit: 5, beforeId: page1.at(-1)?.id }));
  seen.limitCapped = (await listAudit(database, { limit: 0 })).length;
  seen.newest = (await listAudit(database, { limit: 1 }))[0];

  seen.json = JSON.parse(await exportAudit(database, {}, 'json'));
  seen.csv = await exportAudit(database, { actorId: 2 }, 'csv');
  seen.emptyExport = [await exportAudit(database, { actorId: 99 }, 'json'), await exportAudit(database, { actorId: 99 }, 'csv')];
  seen.verified = await verifyAuditChain(database);

  // Retention of five days on day 11: the entries of days 0 to 5 go.
  const purged = await purgeAudit(database, 5, day(11));
  seen.purged = purged && { upToId: purged.upToId, removed: purged.removed, entry: purged.entry };
  seen.afterPurge = ids(await listAudit(database));
  seen.verifiedAfterPurge = await verifyAuditChain(database);
  seen.purgedAgain = await purgeAudit(database, 5, day(11));
  // Everything, later: the log holds only the purge records, and still verifies from the last one.
  seen.purgedAll = (await purgeAudit(database, 1, day(30)))?.removed;
  seen.left = (await listAudit(database)).map((e) => [e.id, e.action, e.summary.upToId]);
  seen.verifiedEmpty = await verifyAuditChain(database);
  return seen;
}

describe.skipIf(!TEST_POSTGRES_URL)('the audit store on both engines', () => {
  let engines: BothEngines;
  const seen: Record<string, Record<string, unknown>> = {};
  beforeAll(async () => {
    engines = await bothEngines();
    bindAuditKeys(engines.sqlite, KEYRING);
    bindAuditKeys(engines.postgres, KEYRING);
  }, 60_000);
  afterAll(() => engines?.close());

  it.each(['sqlite', 'postgres'] as const)(
    'lists, exports, purges and verifies on %s',
    async (engine) => {
      const database = engines[engine];
      const s = await sequence(database);
      seen[engine] = s;
      expect(s.all).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      expect(s.byActor).toEqual([11, 8, 5, 2]);
      expect(s.byAction).toEqual([12, 9, 6, 3]);
      // from inclusive, to exclusive: days 3, 4 and 5
      expect(s.byTime).toEqual([6, 5, 4]);
      expect(s.page1).toEqual([12, 11, 10, 9, 8]);
      expect(s.page2).toEqual([7, 6, 5, 4, 3]);
      expect(s.limitCapped).toBe(1);
      expect(s.newest).toMatchObject({
        id: 12,
        at: day(11),
        actorType: 'staff',
        actorId: 3,
        action: 'settings.test_sent',
        summary: { n: 11, note: null },
        keyId: KEYRING.current.id,
      });
      const json = s.json as { id: number; at: string; hash: string; prevHash: string }[];
      expect(json.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(json[0]?.at).toBe(T0.toISOString());
      expect(json[1]?.prevHash).toBe(json[0]?.hash);
      const csv = String(s.csv).trimEnd().split('\r\n');
      expect(csv[0]).toBe('id,at,actor_type,actor_id,actor_label,ip,user_agent,action,target,summary,prev_hash,hash,key_id');
      expect(csv.slice(1).map((line) => line.split(',')[0])).toEqual(['2', '5', '8', '11']);
      expect(csv[2]).toContain('"{""n"":4,""note"":""a \\""quoted\\"", comma""}"');
      expect(s.emptyExport).toEqual([
        '[]\n',
        'id,at,actor_type,actor_id,actor_label,ip,user_agent,action,target,summary,prev_hash,hash,key_id\r\n',
      ]);
      expect(s.verified).toMatchObject({ ok: true, checked: 12, head: { id: 12 }, keys: [{ keyId: KEYRING.current.id, fromId: 1 }] });
      expect(s.purged).toMatchObject({ upToId: 6, removed: 6, entry: { id: 13, action: 'audit.purged', actorType: 'system' } });
      expect(s.afterPurge).toEqual([13, 12, 11, 10, 9, 8, 7]);
      expect(s.verifiedAfterPurge).toMatchObject({ ok: true, checked: 7, head: { id: 13 } });
      expect(s.purgedAgain).toBeNull();
      expect(s.purgedAll).toBe(7);
      expect(s.left).toEqual([[14, 'audit.purged', 13]]);
      expect(s.verifiedEmpty).toMatchObject({ ok: true, checked: 1 });
    },
    60_000,
  );

  it('gives the same entries, MACs and verdicts on both engines', () => {
    if (!seen.sqlite || !seen.postgres) throw new Error('the sequence did not run on both engines');
    expect(seen.postgres).toEqual(seen.sqlite);
  });

  it('on PostgreSQL, concurrent purges and appends: one purge removes, each entry is in the chain once, it verifies', async () => {
    const pg = engines.postgres;
    for (let i = 0; i < 10; i++) await pg.transaction((tx) => writeAudit(tx, input(i), day(40 + i)));
    const before = (await listAudit(pg, { limit: 1000 })).length;
    const purges = Array.from({ length: 6 }, () => purgeAudit(pg, 5, day(55)));
    const writers = Array.from({ length: 10 }, (_, i) =>
      pg.transaction((tx) => writeAudit(tx, { ...input(i), target: `late:${i}` }, day(55))),
    );
    const [purged] = await Promise.all([Promise.all(purges), Promise.all(writers)]);
    const done = purged.filter((p) => p !== null);
    expect(done).toHaveLength(1);
    // Entries of days 40 to 49 are all older than the cutoff (day 50), and the earlier purge record too.
    expect(done[0]?.removed).toBe(before);
    const left = await listAudit(pg, { limit: 1000 });
    expect(left.filter((e) => e.action === 'audit.purged')).toHaveLength(1);
    expect(
      left
        .filter((e) => e.target?.startsWith('late:'))
        .map((e) => e.target)
        .toSorted(),
    ).toEqual(Array.from({ length: 10 }, (_, i) => `late:${i}`).toSorted());
    expect(await verifyAuditChain(pg)).toMatchObject({ ok: true, checked: 11 });
  }, 60_000);

  /**
   * A refusal's first entry and its counting window as recordRefusal makes them, written here directly
   * so a test can choose the count and times.
   */
  async function openWindow(database: Database, opened: Date, repeats: number, forFirstId?: number) {
    return database.transaction(async (tx) => {
      const first =
        forFirstId === undefined
          ? await writeAudit(
              tx,
              {
                actor: { type: 'anonymous' },
                ip: '198.51.100.7',
                action: 'auth.sign_in.locked',
                target: 'staff:1',
                summary: { reason: 'ip' },
              },
              opened,
            )
          : await entryById(tx, forFirstId);
      if (!first) throw new Error('no first entry');
      const q = query(tx);
      await q.db.insert(q.t.auditRepeats).values({
        fingerprint: refusalFingerprint(first),
        action: first.action,
        actorType: first.actorType,
        actorId: first.actorId,
        actorLabel: first.actorLabel,
        ip: first.ip,
        target: first.target,
        summary: first.summary,
        firstEntryId: first.id,
        openedAt: first.at,
        closesAt: new Date(first.at.getTime() + 15 * 60_000),
        repeats,
        firstRepeatAt: new Date(first.at.getTime() + 60_000),
        lastRepeatAt: new Date(first.at.getTime() + 120_000),
        addresses: ['198.51.100.7', '198.51.100.9'],
        trustCenterId: q.trustCenter,
      });
      return first;
    });
  }

  it.each(['sqlite', 'postgres'] as const)(
    'closes a refusal window into the chain once, on %s',
    async (engine) => {
      const database = engines[engine];
      const opened = day(100);
      const first = await openWindow(database, opened, 3);
      expect(await openRepeatWindows(database)).toMatchObject([{ firstEntryId: first.id, repeats: 3 }]);
      expect(await timesRecorded(database, 'auth.sign_in.locked', day(99))).toBe(4);
      // Not due yet: nothing closes.
      expect(await closeRepeatWindows(database, new Date(opened.getTime() + 5 * 60_000))).toEqual([]);
      const [closing] = await closeRepeatWindows(database, new Date(opened.getTime() + 16 * 60_000));
      expect(closing).toMatchObject({
        action: 'auth.sign_in.locked',
        actorType: 'anonymous',
        ip: '198.51.100.7',
        target: 'staff:1',
        summary: { reason: 'ip', repeated: { times: 3, after: first.id, addresses: 2, source: '198.51.100.7' } },
      });
      expect(await openRepeatWindows(database)).toEqual([]);
      expect(await timesRecorded(database, 'auth.sign_in.locked', day(99))).toBe(4);
      // A window row naming the same first entry again (as someone writing the file could plant): not counted twice.
      await openWindow(database, opened, 5, first.id);
      const [discarded] = await closeRepeatWindows(database, day(101), { all: true });
      expect(discarded).toMatchObject({
        action: 'audit.repeats_discarded',
        actorType: 'system',
        summary: { after: first.id, reason: `its first entry's window was closed already (#${closing?.id})` },
      });
      expect(await timesRecorded(database, 'auth.sign_in.locked', day(99))).toBe(4);
      expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
    },
    60_000,
  );

  it('on PostgreSQL, four nodes closing the same due window append its count once', async () => {
    const pg = engines.postgres;
    const opened = day(200);
    const first = await openWindow(pg, opened, 2);
    const closed = await Promise.all(Array.from({ length: 4 }, () => closeRepeatWindows(pg, day(201))));
    expect(closed.flat().map((e) => e.summary.repeated)).toEqual([expect.objectContaining({ times: 2, after: first.id })]);
    expect(await verifyAuditChain(pg)).toMatchObject({ ok: true });
  }, 60_000);

  /** A sign-in refused at a locked address, as console-auth records it; the user agent does not count. */
  const lockedOut = (target: string, i = 0): RefusalInput => ({
    actor: { type: 'anonymous' },
    ip: '203.0.113.66',
    userAgent: `agent ${i}`,
    action: 'auth.sign_in.locked',
    target,
    summary: { reason: 'ip' },
  });
  const refusalsOf = async (database: Database, target: string) =>
    (await listAudit(database, { action: 'auth.sign_in.locked', limit: 1000 })).filter((e) => e.target === target);

  it.each(['sqlite', 'postgres'] as const)(
    'records refusals as one entry and a count, and closes the count into the chain, on %s',
    async (engine) => {
      const database = engines[engine];
      const opened = day(300);
      const at = (s: number) => new Date(opened.getTime() + s * 1000);
      const first = await recordRefusal(database, lockedOut('staff:31'), at(0));
      expect(first).toMatchObject({ entry: { action: 'auth.sign_in.locked', target: 'staff:31' }, repeats: 0 });
      expect(await recordRefusal(database, lockedOut('staff:31', 1), at(1))).toEqual({ entry: null, repeats: 1 });
      expect(await recordRefusal(database, lockedOut('staff:31', 2), at(2))).toEqual({ entry: null, repeats: 2 });
      // Another target is another window.
      expect((await recordRefusal(database, lockedOut('staff:32'), at(3))).entry).not.toBeNull();
      expect(await refusalsOf(database, 'staff:31')).toHaveLength(1);
      expect(await timesRecorded(database, 'auth.sign_in.locked', opened)).toBe(4);
      // The next refusal after the window closes it (appending its count) and opens the next one.
      const next = await recordRefusal(database, lockedOut('staff:31'), at(16 * 60));
      expect(next.entry).not.toBeNull();
      const entries = await refusalsOf(database, 'staff:31');
      expect(entries.map((e) => e.summary.repeated ?? null)).toEqual([
        null,
        expect.objectContaining({ times: 2, after: first.entry?.id, addresses: 1 }),
        null,
      ]);
      expect(await timesRecorded(database, 'auth.sign_in.locked', opened)).toBe(5);
      await closeRepeatWindows(database, at(60 * 60), { all: true });
      expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
    },
    60_000,
  );

  it('on PostgreSQL, 10 concurrent identical refusals fold into one window counting all 10', async () => {
    const pg = engines.postgres;
    const opened = day(400);
    const at = (i: number) => new Date(opened.getTime() + i * 10);
    const records = await Promise.all(Array.from({ length: 10 }, (_, i) => recordRefusal(pg, lockedOut('staff:40', i), at(i))));
    // One of them opened the window with the entry, the nine others counted 1 to 9 in it, none twice.
    expect(records.filter((r) => r.entry !== null)).toHaveLength(1);
    expect(records.map((r) => r.repeats).toSorted((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await refusalsOf(pg, 'staff:40')).toHaveLength(1);
    const windows = (await openRepeatWindows(pg)).filter((w) => w.target === 'staff:40');
    expect(windows.map((w) => w.repeats)).toEqual([9]);
    expect(await timesRecorded(pg, 'auth.sign_in.locked', opened)).toBe(10);
    // Closed, the chain accounts for all 10: the first entry and "repeated 9 more times".
    await closeRepeatWindows(pg, day(401));
    const entries = await refusalsOf(pg, 'staff:40');
    expect(entries.reduce((n, e) => n + ((e.summary.repeated as { times?: number } | undefined)?.times ?? 1), 0)).toBe(10);
    expect(await verifyAuditChain(pg)).toMatchObject({ ok: true });
  }, 60_000);
});
