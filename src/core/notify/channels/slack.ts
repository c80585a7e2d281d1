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
 * whose poster crashed is taken over once it expires.
 *
 * Exactly once without an idempotency key (chat.postMessage takes none): every message carries
 * message metadata `candor_delivery` naming its delivery, so when a send's outcome is unknown (a
 * crash mid-request, a lost answer: `mayHaveSent`), `reconcile` looks for it in the channel's
 * history (a reply: in its thread's replies) around the time the send began, and answers `found`
 * (recorded sent with that `ts`; a found root is recorded as its thread's root), `unknown` while
 * Slack's listing may still lag (`RECONCILE_SETTLE_MS`), or `absent` after that. What it cannot
 * settle, and so may still duplicate:
 * - incoming-webhook addresses: Slack gives no way to read back what a webhook posted; `absent`
 *   at once, the message is posted again.
 * - an installation that cannot read its channel's history (installed before the `channels:history`
 *   and `groups:history` scopes were asked for: `missing_scope`; the bot left the channel:
 *   `not_in_channel`; a listing too busy to read to the end in `RECONCILE_MAX_PAGES` pages):
 *   `unknown` until the settle time has passed, then `absent`: sent again, possibly a second time.
 *   Not knowing must not hold an incident update back for ever.
 * - a root whose poster crashed or lost the answer, when another dispatcher took the thread's claim
 *   over (after `ROOT_CLAIM_MS`) and posted a root before the lost one was found: the found root stays
 *   a thread of its own (the thread splits in two, as before), though it is not posted a third time.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, LogLevel, type MessageMetadata, WebClient } from '@slack/web-api';
import type { Database } from '../../../../db/engine/types.ts';
import { claimThread, recordRoot, releaseClaim, takeExpiredClaim, threadRow } from '../../../stores/slack-threads.ts';
import { answerMayHaveSent, errorMayHaveSent } from '../may-have-sent.ts';
import type { Channel, LimitSettings, Reconciliation, SendJob, SendResult } from '../types.ts';
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
  /** how long after a send began Slack's listing may still lack its message (`RECONCILE_SETTLE_MS`) */
  reconcileSettleMs?: number;
  /** when a lookup that could not yet tell is asked again (`RECONCILE_POLL_MS`) */
  reconcilePollMs?: number;
}

/** One request's timeout: a send that began at `unknownSince` reached Slack before this had passed, or never. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Longer than one postMessage may take (15 s timeout) with room to record its answer. */
export const ROOT_CLAIM_MS = 60_000;

/** The metadata event type every message carries; its payload names the delivery. */
export const DELIVERY_EVENT_TYPE = 'candor_delivery';
/**
 * How long after a send began a lookup that does not find its message may still be Slack's listing
 * lagging rather than proof: until then `unknown`, after it `absent`. Slack shows a posted message in
 * conversations.history at once in practice; two minutes leaves room for its slow days.
 */
export const RECONCILE_SETTLE_MS = 120_000;
/**
 * When a lookup that could not tell is asked again: Slack allows commercially distributed apps
 * outside its Marketplace one conversations.history or .replies request a minute.
 */
export const RECONCILE_POLL_MS = 60_000;
/**
 * Our clock against Slack's: the window looked in is widened by this on both sides. The window's end
 * (send start + request timeout + skew, 45 s) comes before a claim on a root can be taken over
 * (`ROOT_CLAIM_MS`, 60 s), so a root recorded after the window cannot be the one a lost reply went to.
 */
const CLOCK_SKEW_MS = 30_000;
/** Slack's page size for apps outside the Marketplace (at most 15 a page). */
const RECONCILE_PAGE_SIZE = 15;
/** pages read per lookup; a window fuller than this cannot be read to the end (counted as unable to look) */
const RECONCILE_MAX_PAGES = 4;
/** Lookup errors that will not go away by asking again: we cannot know, so after the settle time we send. */
const CANNOT_LOOK = new Set([
  'missing_scope',
  'not_in_channel',
  'channel_not_found',
  'is_archived',
  'invalid_auth',
  'token_revoked',
  'account_inactive',
  'not_allowed_token_type',
  'thread_not_found',
]);
/**
 * Platform errors Slack answers after it may have done part of the work ("it's possible some aspect
 * of the operation succeeded before the error was raised"): the message may be posted.
 */
const MAYBE_DONE = new Set(['internal_error', 'fatal_error', 'service_unavailable']);
/** Connection errors raised before any byte of the request left: nothing can have been posted. */
/** The metadata naming a delivery, carried by every message Candor posts. */
export function deliveryMetadata(deliveryId: number): MessageMetadata {
  return { event_type: DELIVERY_EVENT_TYPE, event_payload: { delivery_id: deliveryId } };
}

/** Slack's `ts` form (seconds, six decimals) of an instant. */
const slackTs = (ms: number) => (ms / 1000).toFixed(6);

interface ListedMessage {
  ts?: string;
  metadata?: { event_type?: string; event_payload?: Record<string, unknown> };
}

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
  /** the WebClient's fetch error; its `cause` says why (ECONNREFUSED…) */
  original?: { code?: string; cause?: { code?: string } };
}

/**
 * Whether a failed chat.postMessage may have posted: yes when the answer never came (timeout,
 * connection lost after the request went), a 5xx, or Slack's own "maybe partly done" errors; no
 * for a rate limit, any other error Slack answered, or a connection that was never made.
 */
export function slackMayHaveSent(err: unknown): boolean {
  const e = err as SlackFailure;
  if (e.code === ErrorCode.RateLimitedError) return false;
  if (e.code === ErrorCode.PlatformError) return MAYBE_DONE.has(e.data?.error ?? '');
  if (e.code === ErrorCode.HTTPError) return answerMayHaveSent(e.statusCode ?? 500);
  if (e.code === ErrorCode.RequestError) return errorMayHaveSent(e.original?.cause?.code ?? e.original?.code);
  // not a Slack error: thrown after the post answered (recording the root), so it went
  return true;
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
  private readonly settleMs: number;
  private readonly pollMs: number;
  /**
   * Roots this instance claimed whose post may have gone without its answer (per recipient and thread
   * key: the delivery): other messages of the thread wait, as another instance's would behind the
   * claim, until that delivery is reconciled or posted, or the claim expires.
   */
  private readonly uncertainRoots = new Map<string, number>();

  constructor(database: Database, settings: SlackSettings = {}) {
    this.database = database;
    this.rootClaimMs = settings.rootClaimMs ?? ROOT_CLAIM_MS;
    this.rootWaitMs = settings.rootWaitMs ?? 1000;
    this.now = settings.now ?? Date.now;
    this.settleMs = settings.reconcileSettleMs ?? RECONCILE_SETTLE_MS;
    this.pollMs = settings.reconcilePollMs ?? RECONCILE_POLL_MS;
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
        timeout: REQUEST_TIMEOUT_MS,
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
    const place: ThreadPlace | undefined = job.threadKey
      ? await this.threadPlace(job.recipientId, job.threadKey, job.deliveryId)
      : undefined;
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
        metadata: deliveryMetadata(job.deliveryId),
        ...(root ? { thread_ts: root.ts } : {}),
      });
      ts = posted.ts ?? null;
      if (job.threadKey && place?.kind === 'claimed' && ts) {
        const { threadKey } = job;
        const root = { channelId: posted.channel ?? job.address, ts };
        await this.database.transaction((tx) => recordRoot(tx, job.recipientId, threadKey, root.channelId, root.ts));
        this.uncertainRoots.delete(`${job.recipientId}:${threadKey}`);
      }
      if (root && content.root) {
        // The root shows the current state; a failed edit does not undo the reply that went out.
        await client.chat
          .update({ channel: root.channelId, ts: root.ts, text: content.root.text, blocks: content.root.blocks })
          .catch(() => undefined);
      }
      return done({ outcome: 'sent', providerMessageId: ts, httpStatus: 200 });
    } catch (err) {
      const mayHaveSent = slackMayHaveSent(err);
      if (job.threadKey && place?.kind === 'claimed' && ts === null) {
        const { threadKey } = job;
        // A root that may be in the channel keeps its claim: the next message of the thread must not
        // start a second thread before this one is reconciled (or the claim expires).
        if (mayHaveSent) this.uncertainRoots.set(`${job.recipientId}:${threadKey}`, job.deliveryId);
        else await this.database.transaction((tx) => releaseClaim(tx, job.recipientId, threadKey, this.owner));
      }
      const e = err as SlackFailure;
      if (e.code === ErrorCode.RateLimitedError) {
        return done({
          outcome: 'retry',
          httpStatus: 429,
          providerCode: 'ratelimited',
          retryAfterMs: (e.retryAfter ?? 1) * 1000,
          error: 'rate limited by Slack',
          mayHaveSent: false,
        });
      }
      if (e.code === ErrorCode.PlatformError) {
        const code = e.data?.error ?? 'unknown_error';
        const outcome = classifySlackError(code);
        return done({
          outcome,
          httpStatus: 200,
          providerCode: code,
          error: `Slack said ${code}`,
          ...(outcome === 'retry' ? { mayHaveSent } : {}),
        });
      }
      return done({
        outcome: 'retry',
        httpStatus: e.statusCode ?? null,
        providerCode: e.code ?? null,
        error: e.message ?? 'Slack request failed',
        mayHaveSent,
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
   * Whether a send of `job` that began at `job.unknownSince` is in Slack (the module comment says
   * what each answer means and what it cannot settle). Never throws.
   */
  async reconcile(job: SendJob): Promise<Reconciliation> {
    const started = performance.now();
    const took = () => performance.now() - started;
    // Incoming webhooks cannot be read back, and a job without token or content is not sent anyway.
    if (/^https?:\/\//.test(job.address) || !job.secret || !job.content.slack || !job.unknownSince) {
      // nothing to read back (an incoming webhook) or nothing to look for: sent again, unverified
      return { outcome: 'absent', durationMs: took(), unverified: 'Slack cannot be asked about this address (incoming webhook)' };
    }
    const since = job.unknownSince.getTime();
    const settled = this.now() >= since + this.settleMs;
    const later = (error: string, retryAfterMs?: number): Reconciliation => ({
      outcome: 'unknown',
      error,
      // inside the settle time, asked again no later than when it ends; after it (a lookup error), every poll
      retryAfterMs: retryAfterMs ?? (settled ? this.pollMs : Math.max(1, Math.min(this.pollMs, since + this.settleMs - this.now()))),
      durationMs: took(),
    });
    const key = job.threadKey ? `${job.recipientId}:${job.threadKey}` : undefined;
    try {
      const thread = job.threadKey ? await this.database.read((r) => threadRow(r, job.recipientId, job.threadKey as string)) : undefined;
      // A lost reply went into the recorded root's thread; a root recorded after the send's window was
      // posted by another dispatcher that took the claim over, so the lost message was a root itself.
      const latest = since + REQUEST_TIMEOUT_MS + CLOCK_SKEW_MS;
      const root =
        thread?.ts && thread.channelId && Number(thread.ts) * 1000 <= latest ? { channelId: thread.channelId, ts: thread.ts } : undefined;
      const looked = await this.lookFor(job, root);
      if (looked.kind === 'found') {
        if (job.threadKey && !root) {
          const { threadKey } = job;
          const channelId = job.address;
          // The lost message was the thread's root: record it, so later messages reply to it.
          await this.database.transaction(async (tx) => {
            if (!(await threadRow(tx, job.recipientId, threadKey))) {
              await claimThread(tx, job.recipientId, threadKey, this.owner, new Date(this.now() + this.rootClaimMs));
            }
            await recordRoot(tx, job.recipientId, threadKey, channelId, looked.ts);
          });
        }
        if (key) this.uncertainRoots.delete(key);
        return { outcome: 'found', providerMessageId: looked.ts, durationMs: took() };
      }
      if (looked.kind === 'absent') return settled ? { outcome: 'absent', durationMs: took() } : later('not in Slack yet');
      // cannot look (no history scope, not in the channel, a listing too full): after the settle time, send
      return settled
        ? { outcome: 'absent', durationMs: took(), unverified: `Slack could not be read: ${looked.error}` }
        : later(looked.error);
    } catch (err) {
      const e = err as SlackFailure;
      if (e.code === ErrorCode.RateLimitedError) return later('rate limited by Slack', (e.retryAfter ?? 60) * 1000);
      if (e.code === ErrorCode.PlatformError) {
        const code = e.data?.error ?? 'unknown_error';
        if (CANNOT_LOOK.has(code) && settled) return { outcome: 'absent', durationMs: took(), unverified: `Slack said ${code}` };
        return later(`Slack said ${code}`);
      }
      return later(e.message ?? 'Slack lookup failed');
    }
  }

  /**
   * Reads the messages posted while a send that began at `unknownSince` could have reached Slack
   * (from then, less the clock skew, to the request timeout after it, plus the skew): the channel's
   * top-level messages, or the replies of `root`'s thread (the root itself included).
   */
  private async lookFor(
    job: SendJob,
    root: { channelId: string; ts: string } | undefined,
  ): Promise<{ kind: 'found'; ts: string } | { kind: 'absent' } | { kind: 'cannot'; error: string }> {
    const client = this.client(job.secret as string);
    const since = (job.unknownSince as Date).getTime();
    const window = {
      oldest: slackTs(since - CLOCK_SKEW_MS),
      latest: slackTs(since + REQUEST_TIMEOUT_MS + CLOCK_SKEW_MS),
      inclusive: true,
      include_all_metadata: true,
      limit: RECONCILE_PAGE_SIZE,
    };
    const ours = (m: ListedMessage) =>
      m.metadata?.event_type === DELIVERY_EVENT_TYPE && String(m.metadata.event_payload?.delivery_id) === String(job.deliveryId);
    let cursor: string | undefined;
    for (let page = 0; page < RECONCILE_MAX_PAGES; page++) {
      const args = { ...window, ...(cursor ? { cursor } : {}) };
      const listed = root
        ? await client.conversations.replies({ channel: root.channelId, ts: root.ts, ...args })
        : await client.conversations.history({ channel: job.address, ...args });
      const found = (listed.messages as ListedMessage[] | undefined)?.find(ours);
      if (found?.ts) return { kind: 'found', ts: found.ts };
      cursor = listed.response_metadata?.next_cursor || undefined;
      if (!cursor) return { kind: 'absent' };
    }
    return { kind: 'cannot', error: `more than ${RECONCILE_MAX_PAGES * RECONCILE_PAGE_SIZE} messages to look through` };
  }

  /**
   * Where this message goes in its thread: into the recorded root's thread; as the root, once this
   * instance holds the thread's claim (a new row, or an expired claim taken over); or nowhere yet,
   * while another dispatcher's claim stands. One transaction; each step that decides is one statement
   * whose condition only one claimer meets (src/stores/slack-threads.ts), so of two dispatchers on one
   * database only one gets the claim.
   */
  private threadPlace(recipientId: number, threadKey: string, deliveryId: number): Promise<ThreadPlace> {
    const key = `${recipientId}:${threadKey}`;
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
      if (await takeExpiredClaim(tx, recipientId, threadKey, this.owner, expiresAt, now)) {
        this.uncertainRoots.delete(key);
        return { kind: 'claimed' };
      }
      if (row.claimedBy !== this.owner) return { kind: 'wait' };
      // our root may be in the channel already: only its own delivery (reconciled absent) posts it again
      const uncertain = this.uncertainRoots.get(key);
      return uncertain === undefined || uncertain === deliveryId ? { kind: 'claimed' } : { kind: 'wait' };
    });
  }
}
