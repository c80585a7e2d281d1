/**
 * Sends what the outbox holds. Each channel has a loop that claims due
 * deliveries with a lease (one UPDATE … RETURNING, so two dispatchers on
 * one database never hold the same delivery), sends them outside any
 * transaction through the channel, and records every attempt. A crashed
 * dispatcher's leases expire and its deliveries return to the queue; email
 * retries resend the identical request under the same idempotency key, so
 * the provider does not send it twice.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { deliveries } from '../../../db/schema.ts';
import { OBJECTION_PLACEHOLDER } from '../changes/messages.ts';
import { defaultRetryPolicy, type RetryPolicy, retryDelay } from './backoff.ts';
import { Limiter } from './limiter.ts';
import { objectionUrl, recipientLinks } from './links.ts';
import { type Keys, openRecipient } from './recipients.ts';
import type { Channel, ChannelName, NotificationContent, SendJob, SendResult } from './types.ts';

export interface DispatcherOptions {
  db: Db;
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

interface ClaimedRow {
  id: number;
  notification_id: number;
  recipient_id: number | null;
  attempts: number;
  batch_key: string | null;
  address: string | null;
  secret: string | null;
  recipient_channel: ChannelName | null;
  recipient_status: string | null;
  subscriber_id: number | null;
}

export class Dispatcher {
  private readonly o: Required<Omit<DispatcherOptions, 'log'>> & { log: (line: string) => void };
  private readonly limiters = new Map<ChannelName, Limiter>();
  private readonly contentCache = new Map<
    number,
    { content: NotificationContent; threadKey: string | null; perRecipient: string | null }
  >();
  private abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly wakers = new Set<() => void>();
  private readonly statements = new Map<string, Statement>();

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
      this.limiters.set(name, new Limiter(channel.limits, { db: this.o.db, channel: name, clock: this.o.now }));
    }
  }

  /** Prepared once per dispatcher: a round runs the same few statements thousands of times. */
  private stmt(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.o.db.$client.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
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
    const claimed = this.claim(name, channel.batchSize * channel.limits.concurrency * 2);
    if (claimed.length === 0) return 0;
    const units = this.units(channel, claimed);
    await Promise.all(units.map((jobs) => this.sendUnit(channel, limiter, jobs)));
    return claimed.length;
  }

  private claim(channel: ChannelName, limit: number): SendJob[] {
    const sqlite = this.o.db.$client;
    const now = this.o.now();
    const leaseUntil = now + this.o.leaseMs;
    const rows = sqlite
      .transaction(() => {
        // Due deliveries are read in index order and the reading stops at the limit: with one OR over both
        // statuses, SQLite gathered and sorted every due delivery of the channel (100,000 in a large fan-out)
        // to keep a few hundred, on every claim. Expired leases are few: only what dead dispatchers held.
        const ids = this.stmt(
          `UPDATE deliveries SET status = 'sending', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1
             WHERE id IN (
               SELECT id FROM (
                 SELECT id, next_attempt_at FROM (
                   SELECT id, next_attempt_at FROM deliveries
                   WHERE status = 'pending' AND channel = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?)
                 UNION ALL
                 SELECT id, next_attempt_at FROM deliveries WHERE status = 'sending' AND channel = ? AND lease_expires_at < ?)
               ORDER BY next_attempt_at, id LIMIT ?)
             RETURNING id, batch_key`,
        ).all(this.o.owner, leaseUntil, channel, now, limit, channel, now, limit) as { id: number; batch_key: string | null }[];
        // A batch is resent whole or not at all: its request, and so its idempotency key, must not change.
        const keys = [...new Set(ids.map((r) => r.batch_key).filter((k): k is string => k !== null))];
        if (keys.length) {
          const more = this.stmt(
            `UPDATE deliveries SET status = 'sending', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1
               WHERE batch_key IN (SELECT value FROM json_each(?)) AND (status = 'pending' OR (status = 'sending' AND lease_expires_at < ?))
               RETURNING id, batch_key`,
          ).all(this.o.owner, leaseUntil, JSON.stringify(keys), now) as { id: number; batch_key: string | null }[];
          ids.push(...more);
        }
        if (ids.length === 0) return [];
        return this.stmt(
          `SELECT d.id, d.notification_id, d.recipient_id, d.attempts, d.batch_key,
                    r.address, r.secret, r.channel AS recipient_channel, r.status AS recipient_status, r.subscriber_id
             FROM deliveries d LEFT JOIN recipients r ON r.id = d.recipient_id
             WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.id`,
        ).all(JSON.stringify(ids.map((r) => r.id))) as ClaimedRow[];
      })
      .immediate();
    const jobs: SendJob[] = [];
    const gone: SendResult[] = [];
    for (const row of rows) {
      // Suppressed or removed after the fan-out: nothing is sent.
      // Pending recipients only ever have messages addressed to them by name (their confirmation).
      const sendable = row.recipient_status === 'active' || row.recipient_status === 'pending';
      if (!row.address || !row.recipient_channel || !sendable || row.recipient_id === null) {
        gone.push({ deliveryId: row.id, outcome: 'suppressed', error: `recipient ${row.recipient_status ?? 'deleted'}`, durationMs: 0 });
        continue;
      }
      const { address, secret } = openRecipient(this.o.keys, { channel: row.recipient_channel, address: row.address, secret: row.secret });
      const notification = this.notification(row.notification_id);
      const content = notification.perRecipient ? this.personalise(notification.perRecipient, row) : notification.content;
      jobs.push({
        deliveryId: row.id,
        notificationId: row.notification_id,
        recipientId: row.recipient_id,
        address,
        secret,
        content,
        threadKey: notification.threadKey,
        batchKey: row.batch_key,
        attempt: row.attempts,
        links:
          row.subscriber_id === null
            ? { unsubscribe: null, manage: null }
            : recipientLinks(this.o.keys.secret, this.o.publicUrl, row.recipient_id),
      });
    }
    if (gone.length) this.record(gone, false);
    return jobs;
  }

  /**
   * A change notice's objection link is signed for each recipient: the placeholder in the stored
   * content becomes their link (or, for someone who is not a subscriber, the public changes page).
   */
  private personalise(template: string, row: { recipient_id: number | null; subscriber_id: number | null }): NotificationContent {
    const filled = template.replace(OBJECTION_PLACEHOLDER, (_whole, notice: string) =>
      row.subscriber_id === null || row.recipient_id === null
        ? new URL('changes', this.o.publicUrl).href
        : objectionUrl(this.o.keys.secret, this.o.publicUrl, Number(notice), row.recipient_id),
    );
    return JSON.parse(filled) as NotificationContent;
  }

  private notification(id: number): { content: NotificationContent; threadKey: string | null; perRecipient: string | null } {
    let cached = this.contentCache.get(id);
    if (!cached) {
      const row = this.stmt('SELECT kind, content, thread_key FROM notifications WHERE id = ?').get(id) as {
        kind: string;
        content: string;
        thread_key: string | null;
      };
      cached = {
        content: JSON.parse(row.content) as NotificationContent,
        threadKey: row.thread_key,
        // only change notices carry objection links; the same text in anything else stays inert
        perRecipient: row.kind === 'change-notice' && row.content.includes('{{objection:') ? row.content : null,
      };
      if (this.contentCache.size > 200) this.contentCache.clear();
      this.contentCache.set(id, cached);
    }
    return cached;
  }

  /** Splits claimed jobs into provider requests; new batches get a key recorded before anything is sent. */
  private units(channel: Channel, jobs: SendJob[]): SendJob[][] {
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
    const assign = this.stmt('UPDATE deliveries SET batch_key = ? WHERE id = ?');
    this.o.db.$client.transaction(() => {
      for (const group of fresh.values()) {
        for (let i = 0; i < group.length; i += channel.batchSize) {
          const unit = group.slice(i, i + channel.batchSize);
          const key = createHash('sha256')
            .update(`${unit[0]?.notificationId}:${unit.map((j) => j.deliveryId).join(',')}`)
            .digest('base64url')
            .slice(0, 32);
          for (const job of unit) {
            job.batchKey = key;
            assign.run(key, job.deliveryId);
          }
          units.push(unit);
        }
      }
    })();
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
      this.releaseLeases(jobs.map((j) => j.deliveryId));
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
    if (retryAfter > 0) limiter.pause(key, this.o.now() + retryAfter);
    this.record(results, true);
  }

  private releaseLeases(ids: number[]): void {
    this.o.db.$client
      .prepare(
        `UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - 1
         WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ? AND status = 'sending'`,
      )
      .run(JSON.stringify(ids), this.o.owner);
  }

  private record(results: SendResult[], attempted: boolean): void {
    const sqlite = this.o.db.$client;
    const now = this.o.now();
    const policy = this.o.retry;
    const attempt = this.stmt(
      'INSERT INTO delivery_attempts (delivery_id, at, outcome, http_status, provider_code, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const sent = this.stmt(
      `UPDATE deliveries SET status = 'sent', provider_message_id = ?, sent_at = ?, lease_owner = NULL, lease_expires_at = NULL, last_error = NULL
       WHERE id = ? AND lease_owner = ?`,
    );
    const final = this.stmt(
      `UPDATE deliveries SET status = ?, finished_at = ?, lease_owner = NULL, lease_expires_at = NULL, last_error = ?, batch_key = NULL
       WHERE id = ? AND lease_owner = ?`,
    );
    const again = this.stmt(
      `UPDATE deliveries SET status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END,
         finished_at = CASE WHEN attempts >= ? THEN ? ELSE NULL END,
         next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL, last_error = ?
       WHERE id = ? AND lease_owner = ? RETURNING attempts`,
    );
    const suppress = this.stmt(
      `UPDATE recipients SET status = 'suppressed', suppressed_at = ?, suppressed_reason = ?
       WHERE id = (SELECT recipient_id FROM deliveries WHERE id = ?) AND status = 'active'`,
    );
    const attemptsOf = this.stmt('SELECT attempts FROM deliveries WHERE id = ?');
    sqlite
      .transaction(() => {
        for (const r of results) {
          if (r.outcome === 'deferred') {
            // waits for another dispatcher's work: back to the queue soon, not an attempt
            this.o.db
              .update(deliveries)
              .set({
                status: 'pending',
                nextAttemptAt: new Date(now + (r.deferMs ?? 1000)),
                leaseOwner: null,
                leaseExpiresAt: null,
                attempts: sql`${deliveries.attempts} - 1`,
              })
              .where(and(eq(deliveries.id, r.deliveryId), eq(deliveries.leaseOwner, this.o.owner)))
              .run();
            continue;
          }
          const error = r.error ? r.error.slice(0, 500) : null;
          if (attempted)
            attempt.run(r.deliveryId, now, r.outcome, r.httpStatus ?? null, r.providerCode ?? null, Math.round(r.durationMs), error);
          if (r.outcome === 'sent') sent.run(r.providerMessageId ?? null, now, r.deliveryId, this.o.owner);
          else if (r.outcome === 'retry') {
            const { attempts } = (attemptsOf.get(r.deliveryId) as { attempts: number } | undefined) ?? { attempts: 1 };
            const next = now + retryDelay(attempts, policy, r.retryAfterMs);
            again.run(policy.maxAttempts, policy.maxAttempts, now, next, error, r.deliveryId, this.o.owner);
          } else {
            final.run(r.outcome, now, error, r.deliveryId, this.o.owner);
            if (r.outcome === 'suppressed' && attempted) suppress.run(now, error ?? 'suppressed by provider', r.deliveryId);
          }
        }
      })
      .immediate();
  }
}
