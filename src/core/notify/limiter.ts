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
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { providerLimits } from '../../../db/schema.ts';
import type { LimitSettings } from './types.ts';

export interface LimiterOptions {
  /** shares buckets and pauses with every process on this database */
  db: Db;
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
  private readonly store: ProviderLimitStore;
  private readonly channel: string;
  private readonly holdMs: number;
  /** tokens taken from the shared bucket at once */
  private readonly batch: number;

  constructor(settings: LimitSettings, options: LimiterOptions) {
    this.settings = settings;
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.store = new ProviderLimitStore(options.db);
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
      // From here to taking the token nothing awaits: the pause read is the one this send obeys.
      if (h.tokens >= 1 && now < h.heldUntil) {
        const pausedUntil = this.store.pausedUntil(rowKey);
        if (pausedUntil > now) {
          h.pausedUntil = pausedUntil;
          h.tokens = 0;
          continue;
        }
      } else {
        const taken = this.store.take(rowKey, this.batch, this.settings, now);
        h.tokens = taken.granted;
        h.heldUntil = now + this.holdMs;
        h.pausedUntil = taken.pausedUntil;
        if (taken.pausedUntil > now) {
          h.tokens = 0;
          continue;
        }
        if (h.tokens < 1) {
          await this.sleep(Math.max(1, Math.ceil(((1 - taken.tokens) / this.settings.ratePerSecond) * 1000)), signal);
          continue;
        }
      }
      h.tokens -= 1;
      break;
    }
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      const waiters = [...this.waiting];
      this.waiting.clear();
      for (const wake of waiters) wake();
    };
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
  pause(key: string, until: number): void {
    const h = this.local(key);
    h.pausedUntil = Math.max(h.pausedUntil, this.store.pause(this.rowKey(key), until, this.clock()));
    h.tokens = 0;
  }
}

/**
 * The `provider_limits` rows. Synchronous on today's SQLite `Db`; each operation is one statement,
 * so two processes taking tokens from one bucket never both get the same ones. The arithmetic is
 * SQLite's (scalar `max`/`min`, milliseconds in integer columns); PostgreSQL's store will say it with
 * `greatest`/`least` and timestamps, the statement otherwise the same (an upsert locks the row).
 * The statements are built once (drizzle's prepared queries with placeholders): building one per
 * send cost about ten times running it.
 */
export class ProviderLimitStore {
  private readonly takeQuery;
  private readonly pausedQuery;
  private readonly pauseQuery;

  constructor(db: Db) {
    const t = providerLimits;
    const now = sql.placeholder('now');
    const want = sql.placeholder('want');
    const burst = sql.placeholder('burst');
    const from = sql`max(${t.updatedAt}, coalesce(${t.pausedUntil}, 0))`;
    const refilled = sql`min(${burst}, ${t.tokens} + max(0, ${now} - ${from}) * ${sql.placeholder('ratePerMs')})`;
    const grant = sql`CASE WHEN coalesce(${t.pausedUntil}, 0) > ${now} THEN 0 ELSE min(${want}, floor(${refilled})) END`;
    this.takeQuery = db
      .insert(t)
      .values({
        key: sql.placeholder('key'),
        tokens: sql`${burst} - min(${want}, floor(${burst}))`,
        granted: sql`min(${want}, floor(${burst}))`,
        updatedAt: sql`${now}`,
        pausedUntil: null,
      })
      .onConflictDoUpdate({
        target: t.key,
        // every expression reads the row as it was before this statement
        set: { granted: grant, tokens: sql`${refilled} - ${grant}`, updatedAt: sql`max(${t.updatedAt}, ${now})` },
      })
      .returning({ granted: t.granted, tokens: t.tokens, pausedUntil: t.pausedUntil })
      .prepare();
    this.pausedQuery = db
      .select({ pausedUntil: t.pausedUntil })
      .from(t)
      .where(eq(t.key, sql.placeholder('key')))
      .prepare();
    const until = sql.placeholder('until');
    this.pauseQuery = db
      .insert(t)
      .values({ key: sql.placeholder('key'), tokens: 1, granted: 0, updatedAt: sql`${now}`, pausedUntil: sql`${until}` })
      .onConflictDoUpdate({
        target: t.key,
        set: { tokens: 1, pausedUntil: sql`max(coalesce(${t.pausedUntil}, 0), ${until})`, updatedAt: sql`max(${t.updatedAt}, ${now})` },
      })
      .returning({ pausedUntil: t.pausedUntil })
      .prepare();
  }

  /**
   * Takes up to `want` whole tokens from the bucket `key` at `now`, creating it full. Returns what was
   * granted, the tokens left (to tell how long until the next one) and the pause, if any (nothing is
   * granted while paused; the bucket refills from the pause's end).
   */
  take(key: string, want: number, limits: LimitSettings, now: number): { granted: number; tokens: number; pausedUntil: number } {
    const row = this.takeQuery.get({ key, want, burst: limits.burst, ratePerMs: limits.ratePerSecond / 1000, now });
    if (!row) throw new Error(`provider limit ${key}: the upsert returned no row`);
    return { granted: row.granted, tokens: row.tokens, pausedUntil: row.pausedUntil?.getTime() ?? 0 };
  }

  /** The moment the key's provider may be asked again (0: not paused). */
  pausedUntil(key: string): number {
    return this.pausedQuery.get({ key })?.pausedUntil?.getTime() ?? 0;
  }

  /**
   * Pauses the key until `until` (a later pause already recorded stands) and empties its bucket but for
   * the one request the provider's Retry-After allows when it ends; returns the pause.
   */
  pause(key: string, until: number, now: number): number {
    return this.pauseQuery.get({ key, until, now })?.pausedUntil?.getTime() ?? until;
  }
}
