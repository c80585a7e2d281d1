/**
 * Slack through @slack/web-api. A recipient is either an installed app
 * (address = channel id, secret = bot token from OAuth), which gets
 * threads: the first message of a thread key becomes the root, later ones
 * are replies, and the root is edited to show the current state; or an
 * incoming-webhook URL (address), which gets plain messages.
 *
 * A thread's root is posted once however many dispatchers share the database: the one that posts it
 * first claims the thread's `slack_threads` row (no `ts` yet); another that finds the claim defers its
 * message (back to the queue in a second, not an attempt) until the root's `ts` is recorded. A claim
 * whose poster crashed is taken over once it expires; if that poster had already posted the root, the
 * thread splits in two (the crash window: Slack takes no idempotency key to ask it).
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';
import type { Database } from '../../../../db/engine/types.ts';
import { claimThread, recordRoot, releaseClaim, takeExpiredClaim, threadRow } from '../../../stores/slack-threads.ts';
import type { Channel, LimitSettings, SendJob, SendResult } from '../types.ts';
import { postChatWebhook } from './chat-webhook.ts';

export interface SlackSettings {
  /** SLACK_API_URL: default Slack itself */
  apiUrl?: string | undefined;
  limits?: Partial<LimitSettings>;
  /** how long a claim to post a thread's root holds before another dispatcher may take it over */
  rootClaimMs?: number;
  /** when a message waiting for another dispatcher's root is tried again */
  rootWaitMs?: number;
  now?: () => number;
}

/** Longer than one postMessage may take (15 s timeout) with room to record its answer. */
export const ROOT_CLAIM_MS = 60_000;

type ThreadPlace = { kind: 'root'; channelId: string; ts: string } | { kind: 'claimed' } | { kind: 'wait' };

/** About one message per second per channel (Slack's chat.postMessage guidance). */
export const SLACK_DEFAULT_LIMITS: LimitSettings = { ratePerSecond: 1, burst: 1, concurrency: 4 };

/** Errors after which this workspace or channel will not take our messages until someone acts. */
const SUPPRESS = new Set([
  'invalid_auth',
  'token_revoked',
  'account_inactive',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'missing_scope',
  'no_service',
]);
const PERMANENT = new Set(['invalid_blocks', 'msg_too_long', 'invalid_arguments', 'no_text', 'too_many_attachments']);

export function classifySlackError(code: string): 'retry' | 'failed' | 'suppressed' {
  if (SUPPRESS.has(code)) return 'suppressed';
  if (PERMANENT.has(code)) return 'failed';
  return 'retry';
}

interface SlackFailure {
  code?: string;
  retryAfter?: number;
  statusCode?: number;
  data?: { error?: string };
  message?: string;
}

export class SlackChannel implements Channel {
  readonly name = 'slack' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits: LimitSettings;
  private readonly database: Database;
  private readonly apiUrl: string | undefined;
  private readonly clients = new Map<string, WebClient>();
  /** per recipient and thread: the root must exist before a reply is sent, so one thread's messages go one at a time */
  private readonly threadLocks = new Map<string, Promise<unknown>>();
  /** names this instance's claims on thread roots */
  private readonly owner = `slack-${randomUUID()}`;
  private readonly rootClaimMs: number;
  private readonly rootWaitMs: number;
  private readonly now: () => number;

  constructor(database: Database, settings: SlackSettings = {}) {
    this.database = database;
    this.rootClaimMs = settings.rootClaimMs ?? ROOT_CLAIM_MS;
    this.rootWaitMs = settings.rootWaitMs ?? 1000;
    this.now = settings.now ?? Date.now;
    this.apiUrl = settings.apiUrl ? `${settings.apiUrl.replace(/\/+$/, '')}/api/` : undefined;
    this.limits = { ...SLACK_DEFAULT_LIMITS, ...settings.limits };
  }

  /** Slack limits per channel: one bucket per destination. */
  limitKey(job: SendJob): string {
    return job.address;
  }

  private client(token: string): WebClient {
    let client = this.clients.get(token);
    if (!client) {
      // Retries and rate-limit waits are the dispatcher's: the SDK must report them, not hide them in its own queue.
      client = new WebClient(token, {
        ...(this.apiUrl ? { slackApiUrl: this.apiUrl } : {}),
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        logLevel: LogLevel.ERROR,
        timeout: 15_000,
      });
      this.clients.set(token, client);
    }
    return client;
  }

  async send(jobs: SendJob[]): Promise<SendResult[]> {
    return Promise.all(
      jobs.map((job) =>
        job.threadKey ? this.inThreadOrder(`${job.recipientId}:${job.threadKey}`, () => this.sendOne(job)) : this.sendOne(job),
      ),
    );
  }

  private inThreadOrder<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.threadLocks.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.catch(() => undefined);
    this.threadLocks.set(key, settled);
    void settled.then(() => {
      if (this.threadLocks.get(key) === settled) this.threadLocks.delete(key);
    });
    return run;
  }

  private async sendOne(job: SendJob): Promise<SendResult> {
    const started = performance.now();
    const done = (r: Omit<SendResult, 'deliveryId' | 'durationMs'>): SendResult => ({
      deliveryId: job.deliveryId,
      durationMs: performance.now() - started,
      ...r,
    });
    const content = job.content.slack;
    if (!content) return done({ outcome: 'failed', error: 'no Slack content' });
    // An incoming-webhook URL (only https is accepted at sign-up; tests use loopback http) rather than a channel id.
    if (/^https?:\/\//.test(job.address)) return this.sendToIncomingWebhook(job, done);
    if (!job.secret) return done({ outcome: 'suppressed', error: 'Slack installation has no token' });
    const client = this.client(job.secret);
    const place: ThreadPlace | undefined = job.threadKey ? await this.threadPlace(job.recipientId, job.threadKey) : undefined;
    if (place?.kind === 'wait') {
      return done({ outcome: 'deferred', deferMs: this.rootWaitMs, error: 'waiting for the thread root another dispatcher is posting' });
    }
    const root = place?.kind === 'root' ? place : undefined;
    let ts: string | null = null;
    try {
      const posted = await client.chat.postMessage({
        channel: job.address,
        text: content.text,
        blocks: content.blocks,
        unfurl_links: false,
        ...(root ? { thread_ts: root.ts } : {}),
      });
      ts = posted.ts ?? null;
      if (job.threadKey && place?.kind === 'claimed' && ts) {
        const { threadKey } = job;
        const root = { channelId: posted.channel ?? job.address, ts };
        await this.database.transaction((tx) => recordRoot(tx, job.recipientId, threadKey, root.channelId, root.ts));
      }
      if (root && content.root) {
        // The root shows the current state; a failed edit does not undo the reply that went out.
        await client.chat
          .update({ channel: root.channelId, ts: root.ts, text: content.root.text, blocks: content.root.blocks })
          .catch(() => undefined);
      }
      return done({ outcome: 'sent', providerMessageId: ts, httpStatus: 200 });
    } catch (err) {
      if (job.threadKey && place?.kind === 'claimed' && ts === null) {
        const { threadKey } = job;
        await this.database.transaction((tx) => releaseClaim(tx, job.recipientId, threadKey, this.owner));
      }
      const e = err as SlackFailure;
      if (e.code === ErrorCode.RateLimitedError) {
        return done({
          outcome: 'retry',
          httpStatus: 429,
          providerCode: 'ratelimited',
          retryAfterMs: (e.retryAfter ?? 1) * 1000,
          error: 'rate limited by Slack',
        });
      }
      if (e.code === ErrorCode.PlatformError) {
        const code = e.data?.error ?? 'unknown_error';
        return done({ outcome: classifySlackError(code), httpStatus: 200, providerCode: code, error: `Slack said ${code}` });
      }
      return done({
        outcome: 'retry',
        httpStatus: e.statusCode ?? null,
        providerCode: e.code ?? null,
        error: e.message ?? 'Slack request failed',
      });
    }
  }

  private async sendToIncomingWebhook(
    job: SendJob,
    done: (r: Omit<SendResult, 'deliveryId' | 'durationMs'>) => SendResult,
  ): Promise<SendResult> {
    const content = job.content.slack;
    // 404 no_service, 410 channel_is_archived, 403 invalid_token: the webhook is gone (chat-webhook.ts)
    return done(await postChatWebhook(job.address, { text: content?.text, blocks: content?.blocks }, 'Slack'));
  }

  /**
   * Where this message goes in its thread: into the recorded root's thread; as the root, once this
   * instance holds the thread's claim (a new row, or an expired claim taken over); or nowhere yet,
   * while another dispatcher's claim stands. One transaction; each step that decides is one statement
   * whose condition only one claimer meets (src/stores/slack-threads.ts), so of two dispatchers on one
   * database only one gets the claim.
   */
  private threadPlace(recipientId: number, threadKey: string): Promise<ThreadPlace> {
    const now = new Date(this.now());
    const expiresAt = new Date(now.getTime() + this.rootClaimMs);
    return this.database.transaction(async (tx): Promise<ThreadPlace> => {
      let row = await threadRow(tx, recipientId, threadKey);
      if (!row) {
        if (await claimThread(tx, recipientId, threadKey, this.owner, expiresAt)) return { kind: 'claimed' };
        // another claimer's row (on PostgreSQL committed by the time the insert gave way): read it
        row = await threadRow(tx, recipientId, threadKey);
        if (!row) return { kind: 'wait' };
      }
      if (row.ts !== null && row.channelId !== null) return { kind: 'root', channelId: row.channelId, ts: row.ts };
      // Unrecorded root: ours from a post that failed (this instance's thread order runs one at a time), or a
      // claim whose poster crashed (expired). Either is taken; a standing claim of another dispatcher is waited for.
      if (await takeExpiredClaim(tx, recipientId, threadKey, this.owner, expiresAt, now)) return { kind: 'claimed' };
      return row.claimedBy === this.owner ? { kind: 'claimed' } : { kind: 'wait' };
    });
  }
}
