/**
 * Sends what the outbox holds. Each channel has a loop that claims due
 * deliveries with a lease (one transaction: two dispatchers on one database
 * never hold the same delivery, src/stores/deliveries.ts), sends them outside
 * any transaction through the channel, and records every attempt in another.
 * While a round is in flight its leases are renewed, so a send slower than the
 * lease is not taken over and sent again by another dispatcher. A crashed
 * dispatcher's leases expire and its deliveries return to the queue;
 * email retries resend the identical request under the same idempotency key,
 * so the provider does not send it twice.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Database } from '../../../db/engine/types.ts';
import {
  type AttemptInput,
  assignBatchKey,
  type ClaimedDelivery,
  claimDue,
  deferDeliveries,
  insertAttempts,
  markFinished,
  markRetry,
  markSent,
  type NotificationRow,
  notificationsOf,
  releaseLeases,
  renewLeases,
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
  /** counts `wake()` calls, so that a loop woken while its round ran does not then wait */
  private wakes = 0;
  /** outcomes waiting for the record being written (`record`) */
  private readonly toRecord: { outcomes: Outcome[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private recording: Promise<void> | null = null;
  /** rounds holding leases, and the timer renewing them while there are any */
  private holding = 0;
  private renewal: NodeJS.Timeout | null = null;
  private renewing = false;

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

  /**
   * New work may have been enqueued: skip the idle wait. A loop in the middle of a round when woken
   * claims again when the round ends (its claim may have been read before the work was committed).
   */
  wake(): void {
    this.wakes++;
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
      const wakesBefore = this.wakes;
      try {
        sent = await this.round(name);
      } catch (err) {
        this.o.log(`dispatcher: ${name} round failed: ${(err as Error).message}`);
      }
      if (sent === 0 && !signal.aborted && this.wakes === wakesBefore) {
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
    const { units, claimed } = await this.claim(name, channel.batchSize, channel.batchSize * channel.limits.concurrency * 2);
    if (claimed === 0) return 0;
    this.holdLeases();
    try {
      await Promise.all(units.map((jobs) => this.sendUnit(channel, limiter, jobs)));
    } finally {
      this.releaseHold();
    }
    return claimed;
  }

  /** From a claim until its outcomes are recorded, this dispatcher's leases are renewed (one statement for all). */
  private holdLeases(): void {
    if (this.holding++ > 0) return;
    this.renewal = setInterval(() => void this.renewLeases(), Math.max(50, Math.floor(this.o.leaseMs / 3)));
    this.renewal.unref();
  }

  private releaseHold(): void {
    if (--this.holding > 0 || !this.renewal) return;
    clearInterval(this.renewal);
    this.renewal = null;
  }

  private async renewLeases(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      await this.o.database.transaction((tx) => renewLeases(tx, this.o.owner, new Date(this.o.now() + this.o.leaseMs)));
    } catch (err) {
      this.o.log(`dispatcher: renewing leases failed: ${(err as Error).message}`);
    } finally {
      this.renewing = false;
    }
  }

  /**
   * Claims due deliveries and splits them into provider requests (units). One transaction leases them
   * and records the key of each new batch, so a batch is fixed before anything of it is sent (src/stores/
   * deliveries.ts says how two dispatchers on PostgreSQL never claim one delivery, nor split a batch).
   */
  private async claim(channel: ChannelName, batchSize: number, limit: number): Promise<{ units: SendJob[][]; claimed: number }> {
    const now = this.o.now();
    const { database } = this.o;
    const rows = await database.transaction(async (tx) => {
      const claimed = await claimDue(tx, channel, this.o.owner, new Date(now), new Date(now + this.o.leaseMs), limit);
      if (batchSize > 1) {
        for (const batch of newBatches(claimed.filter(sendable), batchSize)) {
          await assignBatchKey(tx, batch.key, batch.ids);
          for (const row of batch.rows) row.batchKey = batch.key;
        }
      }
      return claimed;
    });
    if (rows.length === 0) return { units: [], claimed: 0 };
    const missing = [...new Set(rows.map((row) => row.notificationId))].filter((id) => !this.contentCache.has(id));
    if (missing.length) {
      const found = await database.read((r) => notificationsOf(r, missing));
      if (this.contentCache.size + found.length > 200) this.contentCache.clear();
      for (const n of found) this.contentCache.set(n.id, cachedContent(n));
    }
    const jobs: SendJob[] = [];
    const gone: Outcome[] = [];
    for (const row of rows) {
      const notification = this.contentCache.get(row.notificationId);
      if (!sendable(row) || !notification) {
        const why = notification ? `recipient ${row.recipientStatus ?? 'deleted'}` : 'notification deleted';
        gone.push({
          result: { deliveryId: row.id, outcome: 'suppressed', error: why, durationMs: 0 },
          attempted: false,
          attempt: row.attempts,
        });
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
        unknownSince: null,
        links:
          row.subscriberId === null
            ? { unsubscribe: null, manage: null }
            : recipientLinks(this.o.keys.secret, this.o.publicUrl, row.recipientId),
      });
    }
    if (gone.length) await this.record(gone);
    return { units: batchSize <= 1 ? jobs.map((j) => [j]) : groupBy(jobs, (j) => j.batchKey ?? `${j.deliveryId}`), claimed: rows.length };
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
    const attempts = new Map(jobs.map((j) => [j.deliveryId, j.attempt]));
    await this.record(results.map((result) => ({ result, attempted: true, attempt: attempts.get(result.deliveryId) ?? 1 })));
  }

  /**
   * Records what became of deliveries. Outcomes that arrive while a record is being written wait and
   * go together in the next transaction (a group commit: a round's requests end at about the same
   * time, and each transaction's commit costs more than its statements); each caller's promise
   * settles when its own outcomes are committed. The first write waits for the end of the event
   * loop's turn (setImmediate): the answers that arrived in that turn go with it. On SQLite a
   * transaction ends before the next answer is read, so without the wait each request (each
   * message, on channels that send one per request) cost a transaction of its own.
   */
  private record(outcomes: Outcome[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.toRecord.push({ outcomes, resolve, reject });
      this.recording ??= new Promise<void>((turnEnded) => setImmediate(turnEnded)).then(() => this.writeRecorded());
    });
  }

  private async writeRecorded(): Promise<void> {
    try {
      for (let waiting = this.toRecord.splice(0); waiting.length > 0; waiting = this.toRecord.splice(0)) {
        try {
          await this.writeOutcomes(waiting.flatMap((w) => w.outcomes));
          for (const w of waiting) w.resolve();
        } catch (error) {
          for (const w of waiting) w.reject(error);
        }
      }
    } finally {
      this.recording = null;
    }
  }

  /**
   * Writes outcomes in one transaction with a statement per kind of outcome (per delivery only for
   * retries, whose next attempt each has its own). Each outcome's `attempt` is the delivery's attempt
   * number as claimed: while this dispatcher holds the lease, no one else changes it.
   */
  private async writeOutcomes(outcomes: readonly Outcome[]): Promise<void> {
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
    for (const { result: r, attempted, attempt } of outcomes) {
      if (r.outcome === 'deferred') {
        // waits for another dispatcher's work: back to the queue soon, not an attempt
        pushTo(deferred, now + (r.deferMs ?? 1000), r.deliveryId);
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
        if (r.outcome === 'suppressed' && attempted) pushTo(suppress, error ?? 'suppressed by provider', r.deliveryId);
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

/** What became of one delivery: the channel's result, whether it was an attempt, and its attempt number. */
interface Outcome {
  result: SendResult;
  /** false for deliveries found unsendable before any request (no attempt row) */
  attempted: boolean;
  attempt: number;
}

/** A claimed delivery that can be sent: its recipient exists, is active (or pending, for its confirmation) and has an address. */
function sendable(row: ClaimedDelivery): row is ClaimedDelivery & { address: string; recipientChannel: ChannelName; recipientId: number } {
  // Suppressed or removed after the fan-out: nothing is sent.
  // Pending recipients only ever have messages addressed to them by name (their confirmation).
  return (
    row.address !== null &&
    row.recipientChannel !== null &&
    row.recipientId !== null &&
    (row.recipientStatus === 'active' || row.recipientStatus === 'pending')
  );
}

/**
 * New provider requests for claimed deliveries not yet in one: per notification, runs of `size` in id
 * order, each keyed by a hash of its notification and delivery ids (the key is the request's
 * idempotency key, so a retry of the same batch is the same request).
 */
function newBatches(rows: readonly ClaimedDelivery[], size: number): { key: string; ids: number[]; rows: ClaimedDelivery[] }[] {
  const fresh = groupBy(
    rows.filter((row) => row.batchKey === null),
    (row) => row.notificationId,
  );
  const batches: { key: string; ids: number[]; rows: ClaimedDelivery[] }[] = [];
  for (const group of fresh) {
    for (let i = 0; i < group.length; i += size) {
      const unit = group.slice(i, i + size);
      const ids = unit.map((row) => row.id);
      const key = createHash('sha256')
        .update(`${unit[0]?.notificationId}:${ids.join(',')}`)
        .digest('base64url')
        .slice(0, 32);
      batches.push({ key, ids, rows: unit });
    }
  }
  return batches;
}

/** Items grouped by key, groups in order of first appearance (in place: no copy per item added). */
function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K): T[][] {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return [...groups.values()];
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
