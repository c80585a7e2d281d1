/**
 * Provider limits hold for the whole cluster: two limiters on one database, as two dispatcher
 * processes would have, together send no faster than the configured
 * rate, and a 429 pause recorded by one holds back the other's next send. On each engine: SQLite
 * always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, where each "process" has a pool of its own
 * and their transactions on the shared rows run concurrently. Time is a fake clock driven by a
 * scheduler, which waits for the database work in flight before it moves, so the counts are exact and
 * do not depend on the machine's load or the engine's round trips.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { Limiter } from '../../src/core/notify/limiter.ts';
import type { LimitSettings } from '../../src/core/notify/types.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const START = Date.UTC(2026, 10, 22, 9, 0, 0);

/**
 * The limiters' calls to the database still running. On SQLite they settle within a few turns of the
 * event loop; on PostgreSQL they take real round trips, which the fake clock must wait out before it
 * moves, or time would pass while a transaction is on its way.
 */
class DatabaseWork {
  private running = 0;
  private waiters: (() => void)[] = [];

  /** `database`, with each `read` and `transaction` counted while it runs. */
  track(database: Database): Database {
    return new Proxy(database, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver);
        if ((property === 'read' || property === 'transaction') && typeof value === 'function')
          return (...args: unknown[]) => {
            this.running++;
            const done = () => {
              this.running--;
              if (this.running === 0) for (const wake of this.waiters.splice(0)) wake();
            };
            const result = Promise.resolve(Reflect.apply(value, target, args));
            result.then(done, done);
            return result;
          };
        return value;
      },
    });
  }

  get busy(): boolean {
    return this.running > 0;
  }

  /** Resolves once no call is running. */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/** A clock and the sleeps of everything waiting on it; `runUntil` moves time to each wake-up in turn. */
class FakeTime {
  now = START;

  private readonly work: DatabaseWork;

  constructor(work: DatabaseWork) {
    this.work = work;
  }
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

  /** Lets every promise that can settle do so, the limiters' database work included. */
  async settle(): Promise<void> {
    for (;;) {
      for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.work.busy) return;
      await this.work.idle();
    }
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

describe.each(enginesUnderTest())('provider limits shared through the database on $name', (engine) => {
  const opened: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of opened.splice(0)) await close();
  });

  /**
   * The database two dispatcher processes share, a handle for each, and the fake clock. On PostgreSQL
   * each handle is a pool of its own. On SQLite, in one test process, they share one connection and its
   * engine handle (tests/helpers/postgres.ts `another()` says why): the limiters hold nothing in common
   * but the rows, as across processes.
   */
  async function twoProcesses(): Promise<{ dbA: Database; dbB: Database; time: FakeTime }> {
    const { database, another, close } = await engine.open();
    opened.push(close);
    const work = new DatabaseWork();
    return { dbA: work.track(database), dbB: work.track(another()), time: new FakeTime(work) };
  }

  it('two dispatchers on one database together send no faster than the configured rate', async () => {
    const { dbA, dbB, time } = await twoProcesses();
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
    const { dbA, dbB, time } = await twoProcesses();
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
    const { dbA, dbB, time } = await twoProcesses();
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
    const { dbA, dbB, time } = await twoProcesses();
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
    const { dbA: shared, time } = await twoProcesses();
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
    const { dbA, dbB, time } = await twoProcesses();
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
