/**
 * Every node's in-memory public pages follow a change made on another node: on PostgreSQL a write
 * to a table those pages show notifies `candor_public` when it commits (db/migrations-pg/0003), and
 * `listen` (db/engine/postgres.ts) hands the notification over, listening again after its
 * connection is dropped and saying that something may have been missed.
 */
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresDatabase, type PostgresEngine } from '../../db/engine/postgres.ts';
import { query } from '../../db/engine/query.ts';
import type { Tx } from '../../db/engine/types.ts';
import { StatusSnapshots } from '../../src/runtime/status-snapshots.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';

const T0 = new Date('2026-12-02T10:00:00.000Z');

async function declare(tx: Tx, title: string): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.incidents).values({
    kind: 'outage',
    severity: 'minor',
    title,
    status: 'investigating',
    public: true,
    startedAt: T0,
    createdAt: T0,
    trustCenterId: q.trustCenter,
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!TEST_POSTGRES_URL)('public-page change notifications on PostgreSQL', () => {
  let pg: TestPostgres;
  let writer: PostgresEngine;
  let follower: PostgresEngine;
  beforeAll(async () => {
    pg = await createTestPostgres();
    writer = openPostgresDatabase({ url: pg.appUrl });
    follower = openPostgresDatabase({ url: pg.appUrl });
  }, 60_000);
  afterAll(async () => {
    await writer?.close();
    await follower?.close();
    await pg?.drop();
  });

  it('arrive once per committed transaction, none for one rolled back, and again after the connection drops', async () => {
    const payloads: string[] = [];
    let gaps = 0;
    const listener = await follower.listen(
      'candor_public',
      (p) => payloads.push(p),
      () => gaps++,
    );
    try {
      await writer.transaction(async (tx) => {
        await declare(tx, 'one');
        await declare(tx, 'two');
      });
      await until(() => payloads.length === 1, 'the first notification');
      await expect(
        writer.transaction(async (tx) => {
          await declare(tx, 'never');
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await writer.transaction((tx) => declare(tx, 'three'), { trustCenter: 1 });
      await until(() => payloads.length === 2, 'the second notification');
      expect(payloads).toEqual(['1', '1']);

      // The listening session is killed (a restarted server, a failover): it listens again and reports the gap.
      await pg.superuser.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN candor_public'`,
        [pg.database],
      );
      await until(() => gaps === 1, 'the reconnection');
      await writer.transaction((tx) => declare(tx, 'four'));
      await until(() => payloads.length === 3, 'a notification after the reconnection');
    } finally {
      await listener.close();
    }
  }, 30_000);

  it("a node's page versions follow a commit made elsewhere, read once per change rather than once per turn", async () => {
    // The fallback is put out of reach: only the announcement can move the version here.
    let reads = 0;
    const counted: PostgresEngine = {
      ...follower,
      read: (fn, options) => {
        reads++;
        return follower.read(fn, options);
      },
    };
    const snapshots = new StatusSnapshots(counted, () => T0, { followMaxAgeMs: 600_000 });
    await snapshots.follow(counted);
    try {
      const before = await snapshots.version('/status');
      for (let turn = 0; turn < 5; turn++) {
        expect(await snapshots.version('/status')).toBe(before);
        expect(await snapshots.version('/changes')).toBeTypeOf('string');
        await nextTurn();
      }
      expect(reads).toBe(2); // one for the status facts, one for the changes facts, over five turns

      await writer.transaction((tx) => declare(tx, 'declared on another node'));
      let after = before;
      for (let i = 0; i < 200 && after === before; i++) {
        await sleep(25);
        after = await snapshots.version('/status');
      }
      expect(after).not.toBe(before);
      expect(reads).toBeLessThanOrEqual(4);

      // A request this node answered that may have written: the next version is read afresh.
      const counting = reads;
      snapshots.changed();
      await snapshots.version('/status');
      expect(reads).toBe(counting + 1);
    } finally {
      await snapshots.close();
    }
    // No longer following: back to a read per turn.
    const unfollowed = reads;
    await snapshots.version('/status');
    await nextTurn();
    await snapshots.version('/status');
    expect(reads).toBe(unfollowed + 2);
  }, 30_000);

  it('refuses a channel name that is not an identifier', async () => {
    await expect(follower.listen('candor; DROP TABLE incidents', () => {})).rejects.toThrow(/not a channel name/);
  });
});
