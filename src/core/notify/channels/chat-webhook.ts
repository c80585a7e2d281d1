/**
 * What Teams and Discord webhooks and Slack's incoming webhooks share (all three post through here):
 * one POST of JSON to a URL that is itself the credential, and what its answer means. 2xx sent; 429
 * and 5xx retried, obeying Retry-After; 401, 403, 404 and 410 mean the webhook was deleted or its
 * token revoked, so the address is suppressed; any other 4xx is a message the provider refuses,
 * failed without retry. The answer's body is kept short in the attempt (it may echo the message,
 * never the URL). A retry says whether the provider may have posted it (`mayHaveSent`: a 5xx, a
 * timeout, a connection lost after it was made). And how a pasted URL is checked (`checkChatWebhookUrl`).
 */
import { parseRetryAfter } from '../backoff.ts';
import { answerMayHaveSent, errorMayHaveSent } from '../may-have-sent.ts';
import { checkUrlShape, type UrlPolicy } from '../safe-url.ts';
import type { Channel, ChannelName, LimitSettings, SendJob, SendResult } from '../types.ts';
import { type ChatMessage, chatMessageFromSlack, withManageLink } from './chat-from-slack.ts';

export type Answer = Omit<SendResult, 'deliveryId' | 'durationMs'>;

const GONE = new Set([401, 403, 404, 410]);

export async function postChatWebhook(
  url: string,
  payload: unknown,
  provider: string,
  readId?: (body: string) => string | null,
  retryAfterFromBody?: (body: string) => number | null,
): Promise<Answer> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      redirect: 'error',
      signal: AbortSignal.timeout(15_000),
    });
    const body = await res.text();
    const short = body.slice(0, 200);
    if (res.ok) return { outcome: 'sent', httpStatus: res.status, providerMessageId: readId?.(body) ?? null };
    if (res.status === 429 || res.status >= 500) {
      return {
        outcome: 'retry',
        httpStatus: res.status,
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), Date.now()) ?? retryAfterFromBody?.(body) ?? null,
        error: `${provider} answered ${res.status} ${short}`,
        mayHaveSent: answerMayHaveSent(res.status),
      };
    }
    return {
      outcome: GONE.has(res.status) ? 'suppressed' : 'failed',
      httpStatus: res.status,
      providerCode: short.slice(0, 100) || null,
      error: `${provider} webhook answered ${res.status} ${short}`,
    };
  } catch (err) {
    // fetch's TypeError names the socket's error as its cause; a timeout is an AbortSignal's TimeoutError
    const cause = (err as { cause?: { code?: unknown } }).cause;
    const code = typeof cause?.code === 'string' ? cause.code : '';
    return { outcome: 'retry', error: `${provider} request failed: ${(err as Error).message}`, mayHaveSent: errorMayHaveSent(code) };
  }
}

/** What a subscriber pasted as a chat webhook URL: the URL to keep, or the message saying what to paste. */
export function checkChatWebhookUrl(
  raw: string,
  policy: UrlPolicy,
  accepts: (url: URL, allowHosts: readonly string[]) => boolean,
  message: string,
): { ok: true; value: string } | { ok: false; message: string } {
  const input = raw.trim();
  const shape = checkUrlShape(input, policy);
  if (input.length > 2048 || !shape.ok || !accepts(shape.url, policy.allowHosts)) return { ok: false, message };
  return { ok: true, value: shape.url.href };
}

/** The token-bucket key of a webhook: its host and path hashed by the limiter, never stored as is. */
export const webhookLimitKey = (address: string) => {
  try {
    const u = new URL(address);
    return `${u.host}${u.pathname}`;
  } catch {
    return address;
  }
};

/**
 * A chat channel posting one message per delivery to its recipient's webhook URL (Teams, Discord):
 * what differs is which URLs it accepts, the payload, and how it reads the answer.
 */
export abstract class ChatWebhookChannel implements Channel {
  abstract readonly name: ChannelName;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits: LimitSettings;
  protected readonly allowHosts: readonly string[];
  /** the provider's name in errors */
  protected abstract readonly provider: string;

  constructor(allowHosts: readonly string[], defaults: LimitSettings, limits: Partial<LimitSettings> = {}) {
    this.allowHosts = allowHosts;
    this.limits = { ...defaults, ...limits };
  }

  /** whether the address is one of this provider's webhook URLs (or on a host allowed for tests) */
  protected abstract accepts(url: URL): boolean;
  protected abstract payload(message: ChatMessage): Record<string, unknown>;
  /** the URL to post to (Discord adds `wait=true`) */
  protected target(url: URL): URL {
    return url;
  }
  protected readId(_body: string): string | null {
    return null;
  }
  protected retryAfterFromBody(_body: string): number | null {
    return null;
  }

  limitKey(job: SendJob): string {
    return webhookLimitKey(job.address);
  }

  send(jobs: SendJob[]): Promise<SendResult[]> {
    return Promise.all(jobs.map((job) => this.sendOne(job)));
  }

  private async sendOne(job: SendJob): Promise<SendResult> {
    const started = performance.now();
    const done = (r: Answer): SendResult => ({ deliveryId: job.deliveryId, durationMs: performance.now() - started, ...r });
    const content = job.content.slack;
    if (!content) return done({ outcome: 'failed', error: 'no chat content' });
    let url: URL;
    try {
      url = new URL(job.address);
    } catch {
      return done({ outcome: 'suppressed', providerCode: 'bad_url', error: 'the address is not a URL' });
    }
    if (!this.accepts(url)) return done({ outcome: 'suppressed', providerCode: 'bad_url', error: `not a ${this.provider} webhook URL` });
    const message = withManageLink(chatMessageFromSlack(content), job.links.manage);
    return done(
      await postChatWebhook(
        this.target(url).href,
        this.payload(message),
        this.provider,
        (body) => this.readId(body),
        (body) => this.retryAfterFromBody(body),
      ),
    );
  }
}
