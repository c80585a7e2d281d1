/**
 * The Slack thread roots store (src/stores/slack-threads.ts) on both engines: a thread's row is made
 * once and claimed by its maker, a standing claim is not taken over, an expired one is, a recorded root
 * stands, and only the claimer releases an unrecorded claim. On PostgreSQL, dispatchers on several
 * connections claiming one thread at once: exactly one claims it and the others read the winner's row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Tx } from '../../db/engine/types.ts';
import { claimThread, recordRoot, releaseClaim, takeExpiredClaim, threadRow } from '../../src/stores/slack-threads.ts';
import { recipientRows } from '../helpers/notify-rows.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const T0 = new Date('2026-12-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const CLAIM = 60_000;

async function sequence(database: Database) {
  const [recipient = 0, other = 0] = await database.transaction((tx) => recipientRows(tx, 2, 'slack', 'slack'));
  const tx = <T>(fn: (t: Tx) => Promise<T>): Promise<T> =>
    (database as { transaction(f: (t: Tx) => Promise<T>): Promise<T> }).transaction(fn);
  const row = () => database.read((r) => threadRow(r, recipient, 'incident:1'));
  return {
    none: await row(),
    claimed: await tx<boolean>((t) => claimThread(t, recipient, 'incident:1', 'a', at(CLAIM))),
    claimedAgain: await tx<boolean>((t) => claimThread(t, recipient, 'incident:1', 'b', at(CLAIM))),
    // another recipient's thread of the same key is its own
    otherRecipient: await tx<boolean>((t) => claimThread(t, other, 'incident:1', 'b', at(CLAIM))),
    afterClaim: await row(),
    standing: await tx<boolean>((t) => takeExpiredClaim(t, recipient, 'incident:1', 'b', at(CLAIM * 2), at(CLAIM - 1))),
    expired: await tx<boolean>((t) => takeExpiredClaim(t, recipient, 'incident:1', 'b', at(CLAIM * 3), at(CLAIM + 1))),
    afterTakeover: await row(),
    // a's late release does not free b's claim
    releasedByA: await tx<void>((t) => releaseClaim(t, recipient, 'incident:1', 'a')).then(row),
    recorded: await tx<boolean>((t) => recordRoot(t, recipient, 'incident:1', 'C0CHAN', '1700000000.000100')),
    recordedAgain: await tx<boolean>((t) => recordRoot(t, recipient, 'incident:1', 'C0CHAN', '1700000000.000200')),
    root: await row(),
    // a recorded root is neither taken over nor released
    rootTaken: await tx<boolean>((t) => takeExpiredClaim(t, recipient, 'incident:1', 'c', at(CLAIM * 9), at(CLAIM * 8))),
    rootReleased: await tx<void>((t) => releaseClaim(t, recipient, 'incident:1', 'b')).then(row),
    // b gives up its claim on the other thread: the row goes, the next message claims afresh
    releasedOther: await tx<void>((t) => releaseClaim(t, other, 'incident:1', 'b')).then(() =>
      database.read((r) => threadRow(r, other, 'incident:1')),
    ),
    claimedAfresh: await tx<boolean>((t) => claimThread(t, other, 'incident:1', 'c', at(CLAIM))),
    // another trust center sees none of it
    otherTrustCenter: await database.read((r) => threadRow(r, recipient, 'incident:1'), { trustCenter: 2 }),
  };
}

const root = { channelId: 'C0CHAN', ts: '1700000000.000100', claimedBy: null, claimExpiresAt: null };
const expected = {
  none: undefined,
  claimed: true,
  claimedAgain: false,
  otherRecipient: true,
  afterClaim: { channelId: null, ts: null, claimedBy: 'a', claimExpiresAt: at(CLAIM) },
  standing: false,
  expired: true,
  afterTakeover: { channelId: null, ts: null, claimedBy: 'b', claimExpiresAt: at(CLAIM * 3) },
  releasedByA: { channelId: null, ts: null, claimedBy: 'b', claimExpiresAt: at(CLAIM * 3) },
  recorded: true,
  recordedAgain: false,
  root,
  rootTaken: false,
  rootReleased: root,
  releasedOther: undefined,
  claimedAfresh: true,
  otherTrustCenter: undefined,
};

describe('Slack thread roots store on SQLite', () => {
  it('claims, takes over, records and releases', async () => {
    const engine = tempSqliteEngine();
    try {
      expect(await sequence(engine)).toEqual(expected);
    } finally {
      await engine.close();
    }
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('Slack thread roots store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives what SQLite gives, as the application role under row-level security', async () => {
    expect(await sequence(engines.postgres)).toEqual(expected);
  });

  it('claimers of one thread at once: one claims it, the others read its claim', async () => {
    const database = engines.postgres;
    const [recipient = 0] = await database.transaction((tx) => recipientRows(tx, 1, 'slack', 'race'));
    // as the Slack channel decides (threadPlace): claim, or else read whose claim it is
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        database.transaction(async (tx) => {
          const won = await claimThread(tx, recipient, 'incident:7', `owner-${i}`, at(CLAIM));
          const row = await threadRow(tx, recipient, 'incident:7');
          return { owner: `owner-${i}`, won, claimedBy: row?.claimedBy };
        }),
      ),
    );
    const winners = outcomes.filter((o) => o.won);
    expect(winners).toHaveLength(1);
    for (const o of outcomes) expect(o.claimedBy).toBe(winners[0]?.owner);
    // and of many taking over the expired claim at once, one gets it
    const takeovers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        database.transaction((tx) => takeExpiredClaim(tx, recipient, 'incident:7', `late-${i}`, at(CLAIM * 3), at(CLAIM + 1))),
      ),
    );
    expect(takeovers.filter(Boolean)).toHaveLength(1);
  });
});
