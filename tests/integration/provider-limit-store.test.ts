/**
 * The provider limits store (src/stores/provider-limits.ts) on both engines: a bucket is made full,
 * refills by elapsed time × rate, grants nothing while paused and refills from the pause's end; a later
 * pause stands against an earlier one. On PostgreSQL, many dispatchers at once: the tokens of a bucket
 * are handed out exactly once, and the latest of concurrent pauses stands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { pausedUntil, pauseKey, takeTokens } from '../../src/stores/provider-limits.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const T0 = new Date('2026-12-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const LIMITS = { ratePerSecond: 4, burst: 10 };

async function sequence(database: Database) {
  const take = (key: string, want: number, ms: number) => database.transaction((tx) => takeTokens(tx, key, want, LIMITS, at(ms)));
  const pause = (key: string, untilMs: number, nowMs: number) =>
    database.transaction(async (tx) => (await pauseKey(tx, key, at(untilMs), at(nowMs))).getTime() - T0.getTime());
  const paused = async (key: string) => {
    const until = await database.read((r) => pausedUntil(r, key));
    return until === null ? null : until.getTime() - T0.getTime();
  };
  const asSeen = (t: { granted: number; tokens: number; pausedUntil: Date | null }) => ({
    granted: t.granted,
    tokens: Math.round(t.tokens * 1000) / 1000,
    pausedUntil: t.pausedUntil === null ? null : t.pausedUntil.getTime() - T0.getTime(),
  });
  return {
    // a new bucket starts full
    first: asSeen(await take('email:a', 3, 0)),
    // what is left, and no more
    rest: asSeen(await take('email:a', 20, 0)),
    empty: asSeen(await take('email:a', 1, 100)),
    // 500 ms at 4/s: two tokens
    refilled: asSeen(await take('email:a', 5, 600)),
    // another key is a bucket of its own
    other: asSeen(await take('email:b', 1, 600)),
    notPaused: await paused('email:a'),
    // a 429 until +5 s: the bucket is emptied but for the one request allowed when it ends
    paused: await pause('email:a', 5_000, 700),
    // an earlier pause does not shorten it
    earlier: await pause('email:a', 2_000, 800),
    seen: await paused('email:a'),
    whilePaused: asSeen(await take('email:a', 5, 4_000)),
    // at its end the one token; 1 s later four more (refilled from the pause's end, not from the last take)
    atEnd: asSeen(await take('email:a', 5, 5_000)),
    later: asSeen(await take('email:a', 10, 6_000)),
    // a pause of a key with no bucket yet makes one
    pausedNew: await pause('sms:c', 3_000, 0),
    takeNew: asSeen(await take('sms:c', 1, 1_000)),
  };
}

const expected = {
  first: { granted: 3, tokens: 7, pausedUntil: null },
  rest: { granted: 7, tokens: 0, pausedUntil: null },
  empty: { granted: 0, tokens: 0.4, pausedUntil: null },
  refilled: { granted: 2, tokens: 0.4, pausedUntil: null },
  other: { granted: 1, tokens: 9, pausedUntil: null },
  notPaused: null,
  paused: 5_000,
  earlier: 5_000,
  seen: 5_000,
  whilePaused: { granted: 0, tokens: 1, pausedUntil: 5_000 },
  atEnd: { granted: 1, tokens: 0, pausedUntil: 5_000 },
  later: { granted: 4, tokens: 0, pausedUntil: 5_000 },
  pausedNew: 3_000,
  takeNew: { granted: 0, tokens: 1, pausedUntil: 3_000 },
};

describe('provider limits store on SQLite', () => {
  it('makes, takes from, refills and pauses buckets', async () => {
    const engine = tempSqliteEngine();
    try {
      expect(await sequence(engine)).toEqual(expected);
    } finally {
      await engine.close();
    }
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('provider limits store on PostgreSQL', () => {
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

  it('many dispatchers taking at once: every token is handed out once, none twice', async () => {
    const database = engines.postgres;
    const limits = { ratePerSecond: 0.001, burst: 50 };
    // 30 takers of 4 at one instant from a bucket of 50 (no refill to speak of): 50 in all, 12 times 4 and one 2
    const taken = await Promise.all(
      Array.from({ length: 30 }, () => database.transaction((tx) => takeTokens(tx, 'webhook:race', 4, limits, at(0)))),
    );
    const granted = taken.map((t) => t.granted);
    expect(granted.reduce((a, b) => a + b, 0)).toBe(50);
    expect(granted.filter((g) => g === 4)).toHaveLength(12);
    expect(granted.filter((g) => g === 2)).toHaveLength(1);
  });

  it('concurrent pauses: the latest stands, whichever commits last', async () => {
    const database = engines.postgres;
    const untils = Array.from({ length: 20 }, (_, i) => ((i * 7) % 20) * 1000 + 1000);
    const stood = await Promise.all(untils.map((u) => database.transaction((tx) => pauseKey(tx, 'slack:race', at(u), at(0)))));
    // each saw at least its own pause
    stood.forEach((s, i) => {
      expect(s.getTime()).toBeGreaterThanOrEqual(at(untils[i] ?? 0).getTime());
    });
    expect((await database.read((r) => pausedUntil(r, 'slack:race')))?.getTime()).toBe(at(Math.max(...untils)).getTime());
  });
});
