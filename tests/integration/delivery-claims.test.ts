/**
 * The deliveries store (src/stores/deliveries.ts) on both engines: what a claim takes (due deliveries in
 * order, up to the limit, expired leases, whole batches), what recording an outcome changes (only under
 * the claimer's lease), and the console's figures. On PostgreSQL, two nodes (two connection pools)
 * claiming the same outbox at once: their claims are disjoint, every due delivery is claimed exactly
 * once, and a batch is never split between them.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresDatabase, type PostgresEngine } from '../../db/engine/postgres.ts';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import {
  attemptRows,
  claimDue,
  deferDeliveries,
  deliveryRows as deliveriesOfNotification,
  insertAttempts,
  insertLoggedMessages,
  loggedMessageRows,
  markFinished,
  markRetry,
  markSent,
  notificationSummaries,
  releaseLeases,
  requeueFailed,
  statusCounts,
  suppressRecipientsOf,
} from '../../src/stores/deliveries.ts';
import { deliveryRows, notificationRow, recipientRows } from '../helpers/notify-rows.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const T0 = new Date('2026-12-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const LEASE = 60_000;

/** Everything a user of the store can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const made = await database.transaction(async (tx) => {
    const n = await notificationRow(tx);
    const recipients = await recipientRows(tx, 10);
    // 9 and 10 are not due yet; 3 and 9 are one batch, sent before (a retry resends it whole)
    const ids = await deliveryRows(tx, n, recipients, {
      due: (i) => (i >= 8 ? at(3_600_000) : at(i)),
      batchKey: (i) => (i === 2 || i === 8 ? 'batch-k' : null),
    });
    return { n, recipients, ids };
  });
  const { ids } = made;
  const id = (k: number) => ids[k - 1] ?? 0;
  const claim = (owner: string, now: Date, limit: number) =>
    database.transaction((tx) => claimDue(tx, 'email', owner, now, new Date(now.getTime() + LEASE), limit));

  const first = await claim('a', at(100), 4);
  seen.first = first.map((c) => ({ id: c.id, attempts: c.attempts, batchKey: c.batchKey, hasAddress: c.address !== null }));
  seen.firstUnknown = first.map((c) => c.unknownSince);
  seen.second = (await claim('b', at(100), 4)).map((c) => c.id);
  seen.nothingDue = (await claim('b', at(200), 4)).map((c) => c.id);
  seen.otherChannel = (await database.transaction((tx) => claimDue(tx, 'sms', 'c', at(20), at(LEASE), 4))).length;

  // a's sends: 1 sent, 2 a retry, 3 and 9 (the batch) failed for good, 4 handed back unstarted
  await database.transaction(async (tx) => {
    await insertAttempts(tx, at(100), [
      { deliveryId: id(1), kind: 'send', outcome: 'sent', httpStatus: 200, providerCode: null, durationMs: 12, error: null },
      { deliveryId: id(2), kind: 'send', outcome: 'retry', httpStatus: 503, providerCode: null, durationMs: 30, error: 'unavailable' },
    ]);
    await markSent(tx, 'a', at(100), [{ deliveryId: id(1), providerMessageId: 'msg-1' }]);
    // not a's lease: nothing changes
    await markSent(tx, 'a', at(100), [{ deliveryId: id(5), providerMessageId: 'stolen' }]);
    // a timeout: the provider may have sent it, so the next claim finds unknown_since set, to when that send began
    await markRetry(tx, 'a', id(2), {
      status: 'pending',
      nextAttemptAt: at(5_000),
      finishedAt: null,
      error: 'unavailable',
      mayHaveSent: at(70),
    });
    await markFinished(tx, 'a', 'failed', at(100), 'rejected', [id(3), id(9)]);
    seen.released = await releaseLeases(tx, 'a', [id(4), id(5)], 'clear');
  });
  // b defers 5 (waiting for another's work) and suppresses 6's recipient; 7 and 8 it never records (it crashed)
  await database.transaction(async (tx) => {
    await deferDeliveries(tx, 'b', [id(5)], at(1_000), 'clear');
    await markFinished(tx, 'b', 'suppressed', at(200), 'gone', [id(6)]);
    await suppressRecipientsOf(tx, [id(6)], at(200), 'gone');
  });
  seen.afterRecording = (await database.read((r) => deliveriesOfNotification(r, made.n, { afterId: 0, limit: 100 }))).map((d) => ({
    id: d.id,
    status: d.status,
    attempts: d.attempts,
    providerMessageId: d.providerMessageId,
    lastError: d.lastError,
  }));
  seen.attempts = (await database.read((r) => attemptRows(r, [id(1), id(2), id(3)]))).map((a) => [a.deliveryId, a.outcome, a.at]);
  // 4 (handed back) and 5 (deferred, due at +1 s) come again; 7 and 8 once b's lease runs out; 2 at +5 s
  // each with unknown_since as the claim found it: set for 2, whose retry may have been sent (when that
  // send began), and for 7 and 8, whose sender died (the first claim's time); not for 4 and 5, handed back unsent
  seen.later = (await claim('c', at(2_000), 10)).map((c) => [c.id, c.attempts, c.unknownSince]);
  seen.expired = (await claim('c', at(LEASE + 1_000), 10)).map((c) => [c.id, c.attempts, c.unknownSince]);
  seen.counts = (await database.read((r) => statusCounts(r, [made.n]))).sort((x, y) => x.status.localeCompare(y.status));
  seen.requeued = await database.transaction((tx) => requeueFailed(tx, made.n, at(300_000)));
  seen.requeuedAgain = await database.transaction((tx) => requeueFailed(tx, made.n, at(300_000)));
  seen.summaries = (await database.read((r) => notificationSummaries(r, { limit: 5 }))).map((s) => s.id);
  const logged = await database.transaction((tx) =>
    insertLoggedMessages(tx, at(1), [
      { deliveryId: id(1), channel: 'email', to: 'r…@example.test', payload: { subject: 'Update' } },
      { deliveryId: id(2), channel: 'email', to: 'r…@example.test', payload: null },
    ]),
  );
  seen.logged = [...logged.keys()];
  seen.loggedRows = (await database.read((r) => loggedMessageRows(r, 10))).map((m) => [m.to, m.payload]);
  // another trust center sees and claims none of it
  seen.otherTrustCenter = await database.transaction(
    async (tx) => (await claimDue(tx, 'email', 'x', at(LEASE * 10), at(LEASE * 11), 100)).length,
    { trustCenter: 2 },
  );
  return { seen, ids, n: made.n };
}

function expected(ids: number[], n: number) {
  const id = (k: number) => ids[k - 1] ?? 0;
  return {
    first: [
      { id: id(1), attempts: 1, batchKey: null, hasAddress: true },
      { id: id(2), attempts: 1, batchKey: null, hasAddress: true },
      { id: id(3), attempts: 1, batchKey: 'batch-k', hasAddress: true },
      { id: id(4), attempts: 1, batchKey: null, hasAddress: true },
      // not due, but its batch is resent whole
      { id: id(9), attempts: 1, batchKey: 'batch-k', hasAddress: true },
    ],
    firstUnknown: [null, null, null, null, null],
    second: [id(5), id(6), id(7), id(8)],
    nothingDue: [],
    otherChannel: 0,
    released: 1,
    afterRecording: [
      { id: id(1), status: 'sent', attempts: 1, providerMessageId: 'msg-1', lastError: null },
      { id: id(2), status: 'pending', attempts: 1, providerMessageId: null, lastError: 'unavailable' },
      { id: id(3), status: 'failed', attempts: 1, providerMessageId: null, lastError: 'rejected' },
      { id: id(4), status: 'pending', attempts: 0, providerMessageId: null, lastError: null },
      { id: id(5), status: 'pending', attempts: 0, providerMessageId: null, lastError: null },
      { id: id(6), status: 'suppressed', attempts: 1, providerMessageId: null, lastError: 'gone' },
      { id: id(7), status: 'sending', attempts: 1, providerMessageId: null, lastError: null },
      { id: id(8), status: 'sending', attempts: 1, providerMessageId: null, lastError: null },
      { id: id(9), status: 'failed', attempts: 1, providerMessageId: null, lastError: 'rejected' },
      { id: id(10), status: 'pending', attempts: 0, providerMessageId: null, lastError: null },
    ],
    attempts: [
      [id(1), 'sent', at(100)],
      [id(2), 'retry', at(100)],
    ],
    later: [
      [id(4), 1, null],
      [id(5), 1, null],
    ],
    expired: [
      [id(2), 2, at(70)],
      [id(7), 2, at(100)],
      [id(8), 2, at(100)],
    ],
    counts: [
      { status: 'failed', n: 2 },
      { status: 'pending', n: 1 },
      { status: 'sending', n: 5 },
      { status: 'sent', n: 1 },
      { status: 'suppressed', n: 1 },
    ].map((c) => ({ notificationId: n, channel: 'email', ...c })),
    // 3 and 9 failed, their recipients still active; 6's recipient is suppressed
    requeued: 2,
    requeuedAgain: 0,
    summaries: [n],
    logged: [id(1), id(2)],
    loggedRows: [
      ['r…@example.test', null],
      ['r…@example.test', { subject: 'Update' }],
    ],
    otherTrustCenter: 0,
  };
}

describe('deliveries store on SQLite', () => {
  it('claims, records and counts', async () => {
    const engine = tempSqliteEngine();
    try {
      const { seen, ids, n } = await sequence(engine);
      expect(seen).toEqual(expected(ids, n));
    } finally {
      await engine.close();
    }
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('deliveries store on PostgreSQL', () => {
  let engines: BothEngines;
  let nodes: PostgresEngine[] = [];
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await engines?.close();
  });

  it('gives what SQLite gives, as the application role under row-level security', async () => {
    const { seen, ids, n } = await sequence(engines.postgres);
    expect(seen).toEqual(expected(ids, n));
  });

  it('two nodes claiming at once: disjoint claims, every due delivery claimed once, no batch split', async () => {
    const database = engines.postgres;
    const COUNT = 600;
    const { n, ids } = await database.transaction(async (tx) => {
      const n = await notificationRow(tx, 'Fan-out');
      const recipients = await recipientRows(tx, COUNT, 'email', 'claims');
      // the first half were sent before in batches of 10 (a retry resends each whole); all are due
      const ids = await deliveryRows(tx, n, recipients, {
        due: (i) => at(i % 50),
        batchKey: (i) => (i < COUNT / 2 ? `fanout-${Math.floor(i / 10)}` : null),
      });
      return { n, ids };
    });
    nodes = [openPostgresDatabase({ url: engines.pg.appUrl }), openPostgresDatabase({ url: engines.pg.appUrl })];
    const remaining = async () =>
      database.read(async (r) => {
        const rows = await statusCounts(r, [n]);
        return rows.find((row) => row.status === 'pending')?.n ?? 0;
      });
    const claimedBy = new Map<string, number[]>();
    // four claimers, two on each node, each claiming 25 at a time until nothing is pending
    const claimer = async (node: PostgresEngine, owner: string) => {
      const mine: number[] = [];
      claimedBy.set(owner, mine);
      for (let round = 0; round < 400 && (await remaining()) > 0; round++) {
        const claimed = await node.transaction((tx) => claimDue(tx, 'email', owner, at(1000), at(LEASE), 25));
        mine.push(...claimed.map((c) => c.id));
      }
    };
    const [one, two] = nodes as [PostgresEngine, PostgresEngine];
    await Promise.all([claimer(one, 'node-1a'), claimer(two, 'node-2a'), claimer(one, 'node-1b'), claimer(two, 'node-2b')]);

    const all = [...claimedBy.values()].flat();
    expect(all.length).toBe(COUNT);
    expect(new Set(all).size).toBe(COUNT);
    expect([...all].sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    // more than one claimer did the work
    expect([...claimedBy.values()].filter((c) => c.length > 0).length).toBeGreaterThan(1);
    // as recorded: each claimed once (one attempt), each batch under one lease
    const rows = await database.read(async (r) => {
      const q = reading(r);
      return q.db
        .select({
          id: q.t.deliveries.id,
          owner: q.t.deliveries.leaseOwner,
          attempts: q.t.deliveries.attempts,
          batch: q.t.deliveries.batchKey,
        })
        .from(q.t.deliveries)
        .where(eq(q.t.deliveries.notificationId, n));
    });
    expect(rows.every((row) => row.attempts === 1)).toBe(true);
    const owners = new Map<string, Set<string | null>>();
    for (const row of rows) if (row.batch) owners.set(row.batch, (owners.get(row.batch) ?? new Set()).add(row.owner));
    expect(owners.size).toBe(COUNT / 20);
    for (const [, of] of owners) expect(of.size).toBe(1);
    for (const [owner, mine] of claimedBy) {
      for (const id of mine) expect(rows.find((row) => row.id === id)?.owner).toBe(owner);
    }
  }, 60_000);
});
