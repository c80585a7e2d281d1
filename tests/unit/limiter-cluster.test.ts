/**
 * Provider limits hold for the whole cluster: two limiters on one database file, as two dispatcher
 * processes would have, together send no faster than the configured
 * rate, and a 429 pause recorded by one holds back the other's next send. Time is a fake clock
 * driven by a scheduler, so the counts are exact and do not depend on the machine's load.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { Limiter } from '../../src/core/notify/limiter.ts';
import type { LimitSettings } from '../../src/core/notify/types.ts';
import { tempDir } from '../helpers/server.ts';
import { openTestDb } from '../helpers/staff.ts';

const START = Date.UTC(2026, 10, 22, 9, 0, 0);

/** A clock and the sleeps of everything waiting on it; `runUntil` moves time to each wake-up in turn. */
class FakeTime {
  now = START;
  private timers: { at: number; wake: () => void }[] = [];

  readonly clock = () => this.now;

  readonly sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      signal?.throwIfAborted();
      const timer = { at: this.now + ms, wake: resolve };
      this.timers.push(timer);
      signal?.addEventListener(
        'abort',
        () => {
          this.timers = this.timers.filter((t) => t !== timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });

  /** Lets every promise that can settle do so (the limiters' database work on SQLite settles within a few turns). */
  async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  async runUntil(end: number): Promise<void> {
    for (;;) {
      await this.settle();
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) {
        this.now = end;
        return;
      }
      this.timers.shift();
      this.now = Math.max(this.now, next.at);
      next.wake();
    }
  }
}

const dirs: string[] = [];
const dbs: Db[] = [];

/**
 * The database two dispatcher processes share: one file. In one test process they share one connection
 * and its engine handle: two SQLite connections in one process cannot both run the engine's async
 * transactions (the second's BEGIN IMMEDIATE would wait synchronously for a transaction that can only
 * finish on the blocked event loop). The limiters hold nothing in common but the rows, as across
 * processes; the engines' concurrency is tests/integration/provider-limit-store.test.ts's.
 */
function twoProcesses(): [Database, Database] {
  const dir = tempDir('candor-limiter-');
  dirs.push(dir);
  const a = openTestDb(dir);
  dbs.push(a);
  return [databaseOf(a), databaseOf(a)];
}

afterEach(() => {
  for (const db of dbs.splice(0)) db.$client.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Sends as fast as the limiter lets it until aborted; returns the (fake) time of each send. */
function sender(limiter: Limiter, key: string, signal: AbortSignal, time: FakeTime): { sends: number[]; done: Promise<void> } {
  const sends: number[] = [];
  const done = (async () => {
    for (;;) {
      let release: () => void;
      try {
        release = await limiter.acquire(key, signal);
      } catch {
        return;
      }
      sends.push(time.now);
      release();
    }
  })();
  return { sends, done };
}

/** The most sends in any window of `ms` starting at a send. */
function busiestWindow(sends: number[], ms: number): number {
  const sorted = [...sends].sort((a, b) => a - b);
  let most = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while ((sorted[j] ?? 0) < (sorted[i] ?? 0) - ms + 1) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('provider limits shared through the database', () => {
  it('two dispatchers on one database together send no faster than the configured rate', async () => {
    const [dbA, dbB] = twoProcesses();
    const time = new FakeTime();
    const settings: LimitSettings = { ratePerSecond: 20, burst: 8, concurrency: 4 };
    const a = new Limiter(settings, { database: dbA, channel: 'sms', clock: time.clock, sleep: time.sleep });
    const b = new Limiter(settings, { database: dbB, channel: 'sms', clock: time.clock, sleep: time.sleep });
    const stop = new AbortController();
    const fromA = sender(a, '+15005550006', stop.signal, time);
    const fromB = sender(b, '+15005550006', stop.signal, time);
    const seconds = 10;
    await time.runUntil(START + seconds * 1000);
    stop.abort();
    await Promise.all([fromA.done, fromB.done]);

    const all = [...fromA.sends, ...fromB.sends];
    // a full bucket at the start, then the rate; a process may hold one batch (a quarter of the burst) beyond it
    const heldBatches = 2 * Math.floor(settings.burst / 4);
    expect(all.length).toBeLessThanOrEqual(settings.burst + settings.ratePerSecond * seconds + heldBatches);
    // and the rate is used, not wasted by the sharing
    expect(all.length).toBeGreaterThanOrEqual(settings.ratePerSecond * seconds * 0.95);
    expect(busiestWindow(all, 1000)).toBeLessThanOrEqual(settings.burst + settings.ratePerSecond + heldBatches);
    // both processes sent: the bucket is shared, not taken by one
    expect(fromA.sends.length).toBeGreaterThan(0);
    expect(fromB.sends.length).toBeGreaterThan(0);
  });

  it('a rate of one a second with a burst of one is one a second across both', async () => {
    const [dbA, dbB] = twoProcesses();
    const time = new FakeTime();
    const settings: LimitSettings = { ratePerSecond: 1, burst: 1, concurrency: 4 };
    const a = new Limiter(settings, { database: dbA, channel: 'slack', clock: time.clock, sleep: time.sleep });
    const b = new Limiter(settings, { database: dbB, channel: 'slack', clock: time.clock, sleep: time.sleep });
    const stop = new AbortController();
    const fromA = sender(a, 'C0SHARED', stop.signal, time);
    const fromB = sender(b, 'C0SHARED', stop.signal, time);
    // another key is a bucket of its own
    const other = sender(b, 'C0OTHER', stop.signal, time);
    await time.runUntil(START + 30_000);
    stop.abort();
    await Promise.all([fromA.done, fromB.done, other.done]);

    const shared = [...fromA.sends, ...fromB.sends].sort((x, y) => x - y);
    expect(shared.length).toBeGreaterThanOrEqual(30);
    expect(shared.length).toBeLessThanOrEqual(31);
    for (let i = 1; i < shared.length; i++) expect((shared[i] ?? 0) - (shared[i - 1] ?? 0)).toBeGreaterThanOrEqual(1000);
    expect(other.sends.length).toBeGreaterThanOrEqual(30);
  });

  it("a 429 seen by one dispatcher pauses the other's next send, even with tokens in hand", async () => {
    const [dbA, dbB] = twoProcesses();
    const time = new FakeTime();
    const settings: LimitSettings = { ratePerSecond: 100, burst: 100, concurrency: 4 };
    const a = new Limiter(settings, { database: dbA, channel: 'email', clock: time.clock, sleep: time.sleep });
    const b = new Limiter(settings, { database: dbB, channel: 'email', clock: time.clock, sleep: time.sleep });
    // B sends once and keeps the rest of its batch (a quarter of the burst) for its next sends
    (await b.acquire('default'))();
    (await a.acquire('default'))();
    time.now += 10;
    const retryAfterMs = 2000;
    const pausedAt = time.now;
    await a.pause('default', pausedAt + retryAfterMs);

    const stopA = new AbortController();
    const stopB = new AbortController();
    const fromB = sender(b, 'default', stopB.signal, time);
    const fromA = sender(a, 'default', stopA.signal, time);
    await time.runUntil(pausedAt + 3000);
    stopA.abort();
    // Which of two senders waking at one instant takes the one token is the fake clock's order (on it, the
    // same one every time): B goes on alone for a while, so that it is seen to send at all.
    await time.runUntil(pausedAt + 4000);
    stopB.abort();
    await Promise.all([fromA.done, fromB.done]);

    expect(fromB.sends.length).toBeGreaterThan(0);
    expect(Math.min(...fromB.sends)).toBeGreaterThanOrEqual(pausedAt + retryAfterMs);
    expect(Math.min(...fromA.sends)).toBeGreaterThanOrEqual(pausedAt + retryAfterMs);
    // after the pause one request goes, then the bucket refills from there: no burst of what was held before
    const after = [...fromA.sends, ...fromB.sends].filter((at) => at <= pausedAt + 3000);
    expect(after.length).toBeGreaterThan(0);
    expect(after.length).toBeLessThanOrEqual(1 + settings.ratePerSecond * 1 + 2 * Math.floor(settings.burst / 4));
  });

  it('a pause recorded while the other waits for a slot holds that send back too', async () => {
    const [dbA, dbB] = twoProcesses();
    const time = new FakeTime();
    const settings: LimitSettings = { ratePerSecond: 1000, burst: 1000, concurrency: 1 };
    const a = new Limiter(settings, { database: dbA, channel: 'webhook', clock: time.clock, sleep: time.sleep });
    const b = new Limiter(settings, { database: dbB, channel: 'webhook', clock: time.clock, sleep: time.sleep });
    const releaseFirst = await b.acquire('hooks.example');
    let secondAt: number | null = null;
    const second = b.acquire('hooks.example').then((release) => {
      secondAt = time.now;
      release();
    });
    await time.settle();
    expect(secondAt).toBeNull();
    await a.pause('hooks.example', time.now + 5000);
    releaseFirst();
    await time.runUntil(time.now + 6000);
    await second;
    expect(secondAt).toBe(START + 5000);
  });

  it('callers waiting for a slot do not each read the shared row when one frees: about one read per send', async () => {
    const [shared] = twoProcesses();
    let visits = 0;
    const counted: Database = new Proxy(shared, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if ((property === 'read' || property === 'transaction') && typeof value === 'function')
          return (...args: unknown[]) => {
            visits++;
            return Reflect.apply(value, target, args);
          };
        return value;
      },
    });
    const time = new FakeTime();
    // plenty of tokens (the fake clock stands still): a send either takes tokens or reads the pause, once
    const settings: LimitSettings = { ratePerSecond: 1000, burst: 1000, concurrency: 1 };
    const limiter = new Limiter(settings, { database: counted, channel: 'sms', clock: time.clock, sleep: time.sleep });
    const callers = 20;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: callers }, async (_, i) => {
        const release = await limiter.acquire('+14155550100');
        order.push(i);
        await time.settle();
        release();
      }),
    );
    expect(order).toHaveLength(callers);
    // each of the 20 sends visits the database once; every waiter reading on every freed slot made ~200
    expect(visits).toBeLessThanOrEqual(callers + 2);
  });

  it('a later pause is never shortened by an earlier one', async () => {
    const [dbA, dbB] = twoProcesses();
    const time = new FakeTime();
    const settings: LimitSettings = { ratePerSecond: 10, burst: 10, concurrency: 1 };
    const a = new Limiter(settings, { database: dbA, channel: 'email', clock: time.clock, sleep: time.sleep });
    const b = new Limiter(settings, { database: dbB, channel: 'email', clock: time.clock, sleep: time.sleep });
    await a.pause('default', START + 8000);
    await b.pause('default', START + 3000);
    let sentAt: number | null = null;
    const send = b.acquire('default').then((release) => {
      sentAt = time.now;
      release();
    });
    await time.runUntil(START + 10_000);
    await send;
    expect(sentAt).toBe(START + 8000);
  });
});
