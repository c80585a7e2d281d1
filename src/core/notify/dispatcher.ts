/**
 * Sends what the outbox holds. Each channel has a loop that claims due
 * deliveries with a lease (one transaction: two dispatchers on one database
 * never hold the same delivery, src/stores/deliveries.ts), sends them outside
 * any transaction through the channel, and records every attempt in another.
 * While a round is in flight its leases are renewed, so a send slower than the
 * lease is not taken over and sent again by another dispatcher. A crashed
 * dispatcher's leases expire and its deliveries return to the queue.
 *
 * Exactly once after a crash: a claim marks each delivery `unknown_since` (a
 * send may be at the provider from now on) until an outcome is recorded, and
 * hands back the mark an earlier claim left (its sender died mid-request, or a
 * retry's answer said the provider may have acted: `mayHaveSent`). Before
 * sending such a job again, a channel with `reconcile()` asks its provider,
 * through the channel's limiter like a send (SMS, Slack): `found` records the
 * delivery sent with the provider's id, not sent again; `absent` sends it in
 * the same round; `unknown` puts it back in the queue after the provider's
 * delay, unsent and still marked. Each question is an attempt row of kind
 * `reconcile`; it does not count as an attempt for retries and backoff.
 * Channels without `reconcile()` send again as before, the same request:
 * email under the same idempotency key (batches fixed by `batch_key`), so the
 * provider does not send it twice; webhooks under the same `webhook-id`, so a
 * receiver deduplicating by it drops the repeat.
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
  restartUnknown,
  suppressRecipientsOf,
  type UnknownBefore,
  uncountClaims,
} from '../../stores/deliveries.ts';
import { OBJECTION_PLACEHOLDER } from '../changes/messages.ts';
import { defaultRetryPolicy, type RetryPolicy, retryDelay } from './backoff.ts';
import { Limiter } from './limiter.ts';
import { objectionUrl, recipientLinks } from './links.ts';
import { type Keys, openRecipient } from './recipients.ts';
import type { Channel, ChannelName, NotificationContent, Reconciliation, SendJob, SendResult } from './types.ts';

/** How long a send of unknown outcome waits for its provider to say whether it arrived before it is sent anyway. */
export const RECONCILE_GIVE_UP_MS = 3_600_000;

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
          unknownBefore: row.unknownSince,
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
        unknownSince: row.unknownSince,
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
    // An earlier send of this job may have reached the provider: ask it first (one delivery per request only).
    let asked: Outcome | null = null;
    if (jobs.length === 1 && first.unknownSince !== null && channel.reconcile) {
      const answer = await this.reconcile(channel, limiter, key, first);
      if (answer === null) return;
      if (answer.reconcile !== 'absent') {
        await this.record([answer]);
        return;
      }
      asked = answer;
      // sent again now: a lost outcome of this send is looked for from now on
      const restartedAt = new Date(this.o.now());
      await this.o.database.transaction((tx) => restartUnknown(tx, this.o.owner, first.deliveryId, restartedAt));
    }
    let release: (() => void) | undefined;
    try {
      release = await limiter.acquire(key, this.abort.signal);
    } catch {
      await this.releaseUnsent(jobs);
      if (asked) await this.record([asked]);
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
        // whether the request left is not known: the next claim asks a channel that can
        mayHaveSent: true,
        durationMs: 0,
      }));
    } finally {
      release();
    }
    const retryAfter = Math.max(0, ...results.map((r) => r.retryAfterMs ?? 0));
    if (retryAfter > 0) await limiter.pause(key, this.o.now() + retryAfter);
    const byId = new Map(jobs.map((j) => [j.deliveryId, j]));
    const outcomes = results.map(
      (result): Outcome => ({
        result,
        attempted: true,
        attempt: byId.get(result.deliveryId)?.attempt ?? 1,
        unknownBefore: byId.get(result.deliveryId)?.unknownSince ?? null,
      }),
    );
    await this.record(asked ? [asked, ...outcomes] : outcomes);
  }

  /** Hands back claimed jobs not sent (this dispatcher stopping), each with the unknown_since its claim found. */
  private async releaseUnsent(jobs: readonly SendJob[]): Promise<void> {
    const fresh = jobs.filter((j) => j.unknownSince === null).map((j) => j.deliveryId);
    const marked = jobs.filter((j) => j.unknownSince !== null).map((j) => j.deliveryId);
    await this.o.database.transaction(async (tx) => {
      await releaseLeases(tx, this.o.owner, fresh, 'clear');
      await releaseLeases(tx, this.o.owner, marked, 'keep');
    });
  }

  /**
   * Asks the channel's provider whether an earlier send of `job` reached it, as one request through the
   * limiter. The outcome to record (`reconcile` set: an attempt row of kind reconcile), or null when
   * this dispatcher is stopping (the job is handed back, still marked).
   */
  private async reconcile(channel: Channel, limiter: Limiter, key: string, job: SendJob): Promise<Outcome | null> {
    const reconcile = channel.reconcile?.bind(channel);
    if (!reconcile) return null;
    let release: () => void;
    try {
      release = await limiter.acquire(key, this.abort.signal);
    } catch {
      await this.releaseUnsent([job]);
      return null;
    }
    let answer: Reconciliation;
    try {
      answer = await reconcile(job);
    } catch (err) {
      answer = { outcome: 'unknown', error: `channel error: ${(err as Error).message}`, retryAfterMs: 60_000, durationMs: 0 };
    } finally {
      release();
    }
    // A provider that cannot say for an hour (its lookups keep failing) must not hold the message back
    // for ever: it is sent again, at the risk of a duplicate, and the attempt says why.
    if (answer.outcome === 'unknown' && job.unknownSince && this.o.now() - job.unknownSince.getTime() >= RECONCILE_GIVE_UP_MS)
      answer = {
        outcome: 'absent',
        durationMs: answer.durationMs,
        unverified: `could not be verified for an hour (${answer.error}); sent again`,
      };
    const base = { deliveryId: job.deliveryId, durationMs: answer.durationMs };
    const result: SendResult =
      answer.outcome === 'found'
        ? { ...base, outcome: 'sent', providerMessageId: answer.providerMessageId }
        : answer.outcome === 'absent'
          ? { ...base, outcome: 'retry', providerCode: answer.unverified ? 'unverified' : 'absent', error: answer.unverified ?? null }
          : { ...base, outcome: 'retry', error: answer.error, retryAfterMs: answer.retryAfterMs };
    return { result, attempted: true, attempt: job.attempt, unknownBefore: job.unknownSince, reconcile: answer.outcome };
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
    const deferred = new Map<string, { when: number; before: UnknownBefore; ids: number[] }>();
    const defer = (when: number, before: UnknownBefore, id: number) => {
      const group = `${when}:${before}`;
      const entry = deferred.get(group) ?? { when, before, ids: [] };
      entry.ids.push(id);
      deferred.set(group, entry);
    };
    const reconciledSent: number[] = [];
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
      mayHaveSent: Date | null;
    }[] = [];
    for (const { result: r, attempted, attempt, unknownBefore, reconcile } of outcomes) {
      if (r.outcome === 'deferred') {
        // waits for another dispatcher's work: back to the queue soon, not an attempt, unknown_since as it was
        defer(now + (r.deferMs ?? 1000), unknownBefore === null ? 'clear' : 'keep', r.deliveryId);
        continue;
      }
      const error = r.error ? r.error.slice(0, 500) : null;
      if (attempted) {
        logged.push({
          deliveryId: r.deliveryId,
          kind: reconcile ? 'reconcile' : 'send',
          outcome: r.outcome,
          httpStatus: r.httpStatus ?? null,
          providerCode: r.providerCode ?? null,
          durationMs: Math.round(r.durationMs),
          error,
        });
      }
      if (reconcile === 'absent') continue; // the send that followed has its own outcome
      if (reconcile === 'unknown') {
        // the provider could not say: ask again after its delay, nothing sent, still unknown, not a send
        defer(now + Math.max(r.retryAfterMs ?? 0, 1000), 'keep', r.deliveryId);
        continue;
      }
      if (reconcile === 'found') reconciledSent.push(r.deliveryId);
      if (r.outcome === 'sent') sent.push({ deliveryId: r.deliveryId, providerMessageId: r.providerMessageId ?? null });
      else if (r.outcome === 'retry') {
        const last = attempt >= policy.maxAttempts;
        retries.push({
          deliveryId: r.deliveryId,
          status: last ? 'failed' : 'pending',
          finishedAt: last ? at : null,
          nextAttemptAt: new Date(now + retryDelay(attempt, policy, r.retryAfterMs)),
          error,
          // when the send that may have reached the provider began (its answer came durationMs after)
          mayHaveSent: r.mayHaveSent === true ? new Date(now - Math.max(0, r.durationMs)) : null,
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
      for (const { when, before, ids } of deferred.values()) await deferDeliveries(tx, owner, ids, new Date(when), before);
      await insertAttempts(tx, at, logged);
      await uncountClaims(tx, owner, reconciledSent);
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
  /** `unknown_since` as the claim found it (a deferred delivery gets it back) */
  unknownBefore: Date | null;
  /** set when the request was a reconciliation, not a send: what the provider said */
  reconcile?: Reconciliation['outcome'];
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
