/**
 * Sends what the outbox holds. Each channel has a loop that claims due
 * deliveries with a lease (one transaction: two dispatchers on one database
 * never hold the same delivery, src/stores/deliveries.ts), sends them outside
 * any transaction through the channel, and records every attempt in another.
 * A crashed dispatcher's leases expire and its deliveries return to the queue;
 * email retries resend the identical request under the same idempotency key,
 * so the provider does not send it twice.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Database } from '../../../db/engine/types.ts';
import {
  type AttemptInput,
  assignBatchKey,
  claimDue,
  deferDeliveries,
  insertAttempts,
  markFinished,
  markRetry,
  markSent,
  type NotificationRow,
  notificationsOf,
  releaseLeases,
  suppressRecipientsOf,
} from '../../stores/deliveries.ts';
import { OBJECTION_PLACEHOLDER } from '../changes/messages.ts';
import { defaultRetryPolicy, type RetryPolicy, retryDelay } from './backoff.ts';
import { Limiter } from './limiter.ts';
import { objectionUrl, recipientLinks } from './links.ts';
import { type Keys, openRecipient } from './recipients.ts';
import type { Channel, ChannelName, NotificationContent, SendJob, SendResult } from './types.ts';

export interface DispatcherOptions {
  database: Database;
  channels: Partial<Record<ChannelName, Channel>>;
  keys: Keys;
  publicUrl: URL;
  /** identifies this process's leases */
  owner?: string;
  leaseMs?: number;
  /** idle wait between empty rounds */
  pollMs?: number;
  retry?: RetryPolicy;
  log?: (line: string) => void;
  now?: () => number;
}

interface CachedNotification {
  content: NotificationContent;
  threadKey: string | null;
  /** the stored content as text, when it holds objection links to fill in per recipient */
  perRecipient: string | null;
}

function cachedContent(row: NotificationRow): CachedNotification {
  const text = JSON.stringify(row.content);
  return {
    content: row.content as unknown as NotificationContent,
    threadKey: row.threadKey,
    // only change notices carry objection links; the same text in anything else stays inert
    perRecipient: row.kind === 'change-notice' && text.includes('{{objection:') ? text : null,
  };
}

export class Dispatcher {
  private readonly o: Required<Omit<DispatcherOptions, 'log'>> & { log: (line: string) => void };
  private readonly limiters = new Map<ChannelName, Limiter>();
  private readonly contentCache = new Map<number, CachedNotification>();
  private abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly wakers = new Set<() => void>();

  constructor(options: DispatcherOptions) {
    this.o = {
      owner: `dispatcher-${randomUUID()}`,
      leaseMs: 5 * 60_000,
      pollMs: 500,
      retry: defaultRetryPolicy,
      log: () => {},
      now: Date.now,
      ...options,
    };
    for (const [name, channel] of Object.entries(this.o.channels) as [ChannelName, Channel][]) {
      this.limiters.set(name, new Limiter(channel.limits, { database: this.o.database, channel: name, clock: this.o.now }));
    }
  }

  get owner(): string {
    return this.o.owner;
  }

  start(): void {
    if (this.loops.length) return;
    this.abort = new AbortController();
    this.loops = [...this.limiters.keys()].map((name) => this.loop(name));
  }

  /** New work was enqueued: skip the idle wait. */
  wake(): void {
    for (const wake of this.wakers) wake();
  }

  /** Finishes sends in flight, hands back deliveries claimed but not started, and returns. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wake();
    await Promise.allSettled(this.loops);
    this.loops = [];
  }

  /** Runs rounds until nothing is due on any channel (tests, the CLI's one-shot mode). */
  async drain(maxRounds = 10_000): Promise<number> {
    let total = 0;
    for (let i = 0; i < maxRounds; i++) {
      let round = 0;
      for (const name of this.limiters.keys()) round += await this.round(name);
      total += round;
      if (round === 0) break;
    }
    return total;
  }

  private async loop(name: ChannelName): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      let sent = 0;
      try {
        sent = await this.round(name);
      } catch (err) {
        this.o.log(`dispatcher: ${name} round failed: ${(err as Error).message}`);
      }
      if (sent === 0 && !signal.aborted) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.wakers.delete(done);
            resolve();
          };
          const timer = setTimeout(done, this.o.pollMs);
          this.wakers.add(done);
        });
      }
    }
  }

  /** One round on one channel: claim, send, record. Returns how many deliveries it handled. */
  async round(name: ChannelName): Promise<number> {
    const channel = this.o.channels[name];
    const limiter = this.limiters.get(name);
    if (!channel || !limiter) return 0;
    // Two requests' worth per slot: enough to keep every slot busy, little held in memory.
    const claimed = await this.claim(name, channel.batchSize * channel.limits.concurrency * 2);
    if (claimed.length === 0) return 0;
    const units = await this.units(channel, claimed);
    await Promise.all(units.map((jobs) => this.sendUnit(channel, limiter, jobs)));
    return claimed.length;
  }

  private async claim(channel: ChannelName, limit: number): Promise<SendJob[]> {
    const now = this.o.now();
    const { database } = this.o;
    // One transaction: the due deliveries are read and leased (src/stores/deliveries.ts says how two
    // dispatchers on PostgreSQL never claim one delivery, nor split a batch).
    const rows = await database.transaction((tx) =>
      claimDue(tx, channel, this.o.owner, new Date(now), new Date(now + this.o.leaseMs), limit),
    );
    if (rows.length === 0) return [];
    const missing = [...new Set(rows.map((row) => row.notificationId))].filter((id) => !this.contentCache.has(id));
    if (missing.length) {
      const found = await database.read((r) => notificationsOf(r, missing));
      if (this.contentCache.size + found.length > 200) this.contentCache.clear();
      for (const n of found) this.contentCache.set(n.id, cachedContent(n));
    }
    const jobs: SendJob[] = [];
    const gone: SendResult[] = [];
    for (const row of rows) {
      // Suppressed or removed after the fan-out: nothing is sent.
      // Pending recipients only ever have messages addressed to them by name (their confirmation).
      const sendable = row.recipientStatus === 'active' || row.recipientStatus === 'pending';
      const notification = this.contentCache.get(row.notificationId);
      if (!row.address || !row.recipientChannel || !sendable || row.recipientId === null || !notification) {
        const why = notification ? `recipient ${row.recipientStatus ?? 'deleted'}` : 'notification deleted';
        gone.push({ deliveryId: row.id, outcome: 'suppressed', error: why, durationMs: 0 });
        continue;
      }
      const { address, secret } = openRecipient(this.o.keys, { channel: row.recipientChannel, address: row.address, secret: row.secret });
      const content = notification.perRecipient ? this.personalise(notification.perRecipient, row) : notification.content;
      jobs.push({
        deliveryId: row.id,
        notificationId: row.notificationId,
        recipientId: row.recipientId,
        address,
        secret,
        content,
        threadKey: notification.threadKey,
        batchKey: row.batchKey,
        attempt: row.attempts,
        links:
          row.subscriberId === null
            ? { unsubscribe: null, manage: null }
            : recipientLinks(this.o.keys.secret, this.o.publicUrl, row.recipientId),
      });
    }
    if (gone.length) await this.record(gone, false, new Map());
    return jobs;
  }

  /**
   * A change notice's objection link is signed for each recipient: the placeholder in the stored
   * content becomes their link (or, for someone who is not a subscriber, the public changes page).
   */
  private personalise(template: string, row: { recipientId: number | null; subscriberId: number | null }): NotificationContent {
    const filled = template.replace(OBJECTION_PLACEHOLDER, (_whole, notice: string) =>
      row.subscriberId === null || row.recipientId === null
        ? new URL('changes', this.o.publicUrl).href
        : objectionUrl(this.o.keys.secret, this.o.publicUrl, Number(notice), row.recipientId),
    );
    return JSON.parse(filled) as NotificationContent;
  }

  /** Splits claimed jobs into provider requests; new batches get a key recorded before anything is sent. */
  private async units(channel: Channel, jobs: SendJob[]): Promise<SendJob[][]> {
    if (channel.batchSize <= 1) return jobs.map((j) => [j]);
    const units: SendJob[][] = [];
    const byKey = new Map<string, SendJob[]>();
    const fresh = new Map<number, SendJob[]>();
    // In place: copying a group for every job it gains made a round of 800 jobs cost 320,000 copies.
    const add = <K>(groups: Map<K, SendJob[]>, key: K, job: SendJob) => {
      const group = groups.get(key);
      if (group) group.push(job);
      else groups.set(key, [job]);
    };
    for (const job of jobs) {
      if (job.batchKey) add(byKey, job.batchKey, job);
      else add(fresh, job.notificationId, job);
    }
    units.push(...byKey.values());
    const assigned: { key: string; ids: number[] }[] = [];
    for (const group of fresh.values()) {
      for (let i = 0; i < group.length; i += channel.batchSize) {
        const unit = group.slice(i, i + channel.batchSize);
        const key = createHash('sha256')
          .update(`${unit[0]?.notificationId}:${unit.map((j) => j.deliveryId).join(',')}`)
          .digest('base64url')
          .slice(0, 32);
        for (const job of unit) job.batchKey = key;
        assigned.push({ key, ids: unit.map((j) => j.deliveryId) });
        units.push(unit);
      }
    }
    // One statement per batch, all in one transaction, committed before any of them is sent.
    if (assigned.length) {
      await this.o.database.transaction(async (tx) => {
        for (const batch of assigned) await assignBatchKey(tx, batch.key, batch.ids);
      });
    }
    return units;
  }

  private async sendUnit(channel: Channel, limiter: Limiter, jobs: SendJob[]): Promise<void> {
    const first = jobs[0];
    if (!first) return;
    const key = channel.limitKey?.(first) ?? 'default';
    let release: (() => void) | undefined;
    try {
      release = await limiter.acquire(key, this.abort.signal);
    } catch {
      const ids = jobs.map((j) => j.deliveryId);
      await this.o.database.transaction((tx) => releaseLeases(tx, this.o.owner, ids));
      return;
    }
    let results: SendResult[];
    try {
      results = await channel.send(jobs);
    } catch (err) {
      // Channels do not throw; if one does, treat it as a provider blip rather than lose the deliveries.
      results = jobs.map((j) => ({
        deliveryId: j.deliveryId,
        outcome: 'retry',
        error: `channel error: ${(err as Error).message}`,
        durationMs: 0,
      }));
    } finally {
      release();
    }
    const retryAfter = Math.max(0, ...results.map((r) => r.retryAfterMs ?? 0));
    if (retryAfter > 0) await limiter.pause(key, this.o.now() + retryAfter);
    await this.record(results, true, new Map(jobs.map((j) => [j.deliveryId, j.attempt])));
  }

  /**
   * Records what became of each delivery, in one transaction with a statement per kind of outcome (per
   * delivery only for retries, whose next attempt each has its own). `attempts` is each delivery's
   * attempt number as claimed: while this dispatcher holds the lease, no one else changes it.
   */
  private async record(results: SendResult[], attempted: boolean, attempts: Map<number, number>): Promise<void> {
    const now = this.o.now();
    const at = new Date(now);
    const policy = this.o.retry;
    const owner = this.o.owner;
    const deferred = new Map<number, number[]>();
    const logged: AttemptInput[] = [];
    const sent: { deliveryId: number; providerMessageId: string | null }[] = [];
    const finished = new Map<string, { status: 'failed' | 'suppressed'; error: string | null; ids: number[] }>();
    const suppress = new Map<string, number[]>();
    const retries: {
      deliveryId: number;
      status: 'pending' | 'failed';
      nextAttemptAt: Date;
      finishedAt: Date | null;
      error: string | null;
    }[] = [];
    for (const r of results) {
      if (r.outcome === 'deferred') {
        // waits for another dispatcher's work: back to the queue soon, not an attempt
        const when = now + (r.deferMs ?? 1000);
        deferred.set(when, [...(deferred.get(when) ?? []), r.deliveryId]);
        continue;
      }
      const error = r.error ? r.error.slice(0, 500) : null;
      if (attempted) {
        logged.push({
          deliveryId: r.deliveryId,
          outcome: r.outcome,
          httpStatus: r.httpStatus ?? null,
          providerCode: r.providerCode ?? null,
          durationMs: Math.round(r.durationMs),
          error,
        });
      }
      if (r.outcome === 'sent') sent.push({ deliveryId: r.deliveryId, providerMessageId: r.providerMessageId ?? null });
      else if (r.outcome === 'retry') {
        const attempt = attempts.get(r.deliveryId) ?? 1;
        const last = attempt >= policy.maxAttempts;
        retries.push({
          deliveryId: r.deliveryId,
          status: last ? 'failed' : 'pending',
          finishedAt: last ? at : null,
          nextAttemptAt: new Date(now + retryDelay(attempt, policy, r.retryAfterMs)),
          error,
        });
      } else {
        const group = `${r.outcome}\u0000${error ?? ''}\u0000${error === null}`;
        const entry = finished.get(group) ?? { status: r.outcome, error, ids: [] };
        entry.ids.push(r.deliveryId);
        finished.set(group, entry);
        if (r.outcome === 'suppressed' && attempted) {
          const reason = error ?? 'suppressed by provider';
          suppress.set(reason, [...(suppress.get(reason) ?? []), r.deliveryId]);
        }
      }
    }
    await this.o.database.transaction(async (tx) => {
      for (const [when, ids] of deferred) await deferDeliveries(tx, owner, ids, new Date(when));
      await insertAttempts(tx, at, logged);
      await markSent(tx, owner, at, sent);
      for (const retry of retries) await markRetry(tx, owner, retry.deliveryId, retry);
      for (const f of finished.values()) await markFinished(tx, owner, f.status, at, f.error, f.ids);
      for (const [reason, ids] of suppress) await suppressRecipientsOf(tx, ids, at, reason);
    });
  }
}
