/**
 * Provider limits for the whole cluster: a token bucket per channel and key (the email account,
 * a Twilio sender, a Slack channel, a webhook host) and the pause a provider asks for with
 * "429, retry after N seconds", kept in the database (`provider_limits`, store below) so that every
 * dispatcher on it shares them. A dispatcher takes tokens in small batches (up to a quarter of the
 * burst, refilled by elapsed time × rate in the same statement) and uses them for at most
 * `holdMs`; before each send it reads the key's pause, so a 429 recorded by one process holds
 * back every other process's next send. The concurrency cap is per process.
 *
 * Worst cases (README, Notifications): requests already decided when another process records a 429
 * still go out (at most the concurrency of each process); tokens held locally let the cluster exceed
 * the bucket by at most one batch per process within `holdMs` (nothing for a burst below 8, where a
 * batch is one token, taken right before it is used).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Database } from '../../../db/engine/types.ts';
import { pausedUntil, pauseKey, takeTokens } from '../../stores/provider-limits.ts';
import type { LimitSettings } from './types.ts';

export interface LimiterOptions {
  /** shares buckets and pauses with every process on this database */
  database: Database;
  /** the channel the limits belong to: part of each bucket's key */
  channel: string;
  clock?: () => number;
  /** waits; tests pass a fake scheduler */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** how long tokens taken from the shared bucket may be used locally */
  holdMs?: number;
}

/** What this process holds of one key: tokens taken from the shared bucket and the last pause it saw. */
interface Held {
  tokens: number;
  heldUntil: number;
  pausedUntil: number;
}

export const DEFAULT_HOLD_MS = 500;

export class Limiter {
  private readonly held = new Map<string, Held>();
  private inFlight = 0;
  /** woken all at once when a slot frees: each re-checks its key's pause and tokens before taking it */
  private readonly waiting = new Set<() => void>();
  private readonly settings: LimitSettings;
  private readonly clock: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly database: Database;
  private readonly channel: string;
  private readonly holdMs: number;
  /** tokens taken from the shared bucket at once */
  private readonly batch: number;

  constructor(settings: LimitSettings, options: LimiterOptions) {
    this.settings = settings;
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.database = options.database;
    this.channel = options.channel;
    this.holdMs = options.holdMs ?? DEFAULT_HOLD_MS;
    this.batch = Math.max(1, Math.floor(settings.burst / 4));
  }

  private local(key: string): Held {
    let h = this.held.get(key);
    if (!h) {
      h = { tokens: 0, heldUntil: 0, pausedUntil: 0 };
      this.held.set(key, h);
    }
    return h;
  }

  /** The shared row's key: the channel and a hash of the limiter key (an incoming-webhook URL is a secret). */
  private rowKey(key: string): string {
    return `${this.channel}:${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`;
  }

  /**
   * Waits for a free slot and a token of `key`; returns the release function. Pause, token and
   * slot are checked together, right before the caller sends: a 429 recorded (by any process) while
   * this caller waited holds it back, and an aborted wait (shutdown) takes nothing.
   */
  async acquire(key = 'default', signal?: AbortSignal): Promise<() => void> {
    const rowKey = this.rowKey(key);
    for (;;) {
      signal?.throwIfAborted();
      const h = this.local(key);
      const now = this.clock();
      if (h.pausedUntil > now) {
        await this.sleep(h.pausedUntil - now, signal);
        continue;
      }
      if (this.inFlight >= this.settings.concurrency) {
        await this.slotFreed(signal);
        continue;
      }
      // The slot is reserved before the shared row is read, so that of the callers woken when a slot
      // frees only one reads the row (each read cost a transaction; every waiter reading it made about
      // three reads per send at a concurrency of 16); the others find no slot and wait again. The row is
      // read (or tokens taken) last: from its answer to the send nothing awaits, so the pause read is
      // the one this send obeys.
      this.inFlight++;
      let wait = 0;
      try {
        if (h.tokens >= 1 && now < h.heldUntil) {
          const paused = (await this.database.read((r) => pausedUntil(r, rowKey)))?.getTime() ?? 0;
          if (paused > now) {
            h.pausedUntil = Math.max(h.pausedUntil, paused);
            h.tokens = 0;
          }
        } else {
          const taken = await this.database.transaction((tx) => takeTokens(tx, rowKey, this.batch, this.settings, new Date(now)));
          const paused = taken.pausedUntil?.getTime() ?? 0;
          // what this process still held stands with the new grant, unless it was held too long
          h.tokens = (now < h.heldUntil ? h.tokens : 0) + taken.granted;
          h.heldUntil = now + this.holdMs;
          h.pausedUntil = Math.max(h.pausedUntil, paused);
          if (paused > now) h.tokens = 0;
          else if (h.tokens < 1) wait = Math.max(1, Math.ceil(((1 - taken.tokens) / this.settings.ratePerSecond) * 1000));
        }
      } catch (error) {
        this.freeSlot();
        throw error;
      }
      // While the row was read another caller of this process may have used the tokens or seen a pause.
      if (!signal?.aborted && h.pausedUntil <= now && h.tokens >= 1 && wait === 0) {
        h.tokens -= 1;
        break;
      }
      this.freeSlot();
      if (wait > 0) await this.sleep(wait, signal);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.freeSlot();
    };
  }

  /** Gives a slot back and wakes every caller waiting for one: each re-checks its key before taking it. */
  private freeSlot(): void {
    this.inFlight--;
    const waiters = [...this.waiting];
    this.waiting.clear();
    for (const wake of waiters) wake();
  }

  private slotFreed(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        this.waiting.delete(done);
        reject(signal?.reason);
      };
      this.waiting.add(done);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  /** Nothing goes to this key's provider before `until` (ms since epoch), from any process. */
  async pause(key: string, until: number): Promise<void> {
    const h = this.local(key);
    h.tokens = 0;
    h.pausedUntil = Math.max(h.pausedUntil, until);
    const rowKey = this.rowKey(key);
    const now = new Date(this.clock());
    const stands = await this.database.transaction((tx) => pauseKey(tx, rowKey, new Date(until), now));
    h.pausedUntil = Math.max(h.pausedUntil, stands.getTime());
    h.tokens = 0;
  }
}
