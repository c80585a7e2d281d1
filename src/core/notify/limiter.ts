/**
 * Token buckets and a concurrency cap per channel, with pauses when a
 * provider says "429, retry after N seconds". In-process: two dispatchers
 * on one database each keep their own (documented in the README).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LimitSettings } from './types.ts';

interface Bucket {
  tokens: number;
  updatedAt: number;
  pausedUntil: number;
}

export class Limiter {
  private readonly buckets = new Map<string, Bucket>();
  private inFlight = 0;
  /** woken all at once when a slot frees: each re-checks its key's pause and tokens before taking it */
  private readonly waiting = new Set<() => void>();
  private readonly settings: LimitSettings;
  private readonly clock: () => number;

  constructor(settings: LimitSettings, clock: () => number = Date.now) {
    this.settings = settings;
    this.clock = clock;
  }

  private bucket(key: string): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.settings.burst, updatedAt: this.clock(), pausedUntil: 0 };
      this.buckets.set(key, b);
    }
    return b;
  }

  /**
   * Waits for a free slot and a token of `key`; returns the release function. Pause, token and
   * slot are checked together, right before the caller sends: a 429 that arrived while this
   * caller waited for a slot holds it back, and an aborted wait (shutdown) takes nothing.
   */
  async acquire(key = 'default', signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      signal?.throwIfAborted();
      const b = this.bucket(key);
      const now = this.clock();
      b.tokens = Math.min(this.settings.burst, b.tokens + ((now - b.updatedAt) / 1000) * this.settings.ratePerSecond);
      b.updatedAt = now;
      if (b.pausedUntil > now) {
        await sleep(b.pausedUntil - now, undefined, { signal });
        continue;
      }
      if (b.tokens < 1) {
        await sleep(Math.ceil(((1 - b.tokens) / this.settings.ratePerSecond) * 1000), undefined, { signal });
        continue;
      }
      if (this.inFlight >= this.settings.concurrency) {
        await this.slotFreed(signal);
        continue;
      }
      b.tokens -= 1;
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

  /** Nothing goes to this key's provider before `until` (ms since epoch). */
  pause(key: string, until: number): void {
    const b = this.bucket(key);
    b.pausedUntil = Math.max(b.pausedUntil, until);
    b.tokens = 0;
  }
}
