/**
 * A receiver of Candor's outgoing Standard Webhooks: records every request (headers, raw body,
 * time) and verifies them with the `standardwebhooks` package, the same library a subscriber
 * would use. Its answers are configurable (status, latency, fail-next, outage, lost responses),
 * so retry, timeout and "webhook gone" handling can be exercised.
 */
import { Webhook } from 'standardwebhooks';
import {
  type Clock,
  type FakeResponse,
  type FaultControls,
  Faults,
  faultControls,
  type IncomingFakeRequest,
  type RecordedRequest,
  RequestLog,
  reply,
  startLoopbackServer,
  systemClock,
  waitUntil,
} from './common.ts';

export interface WebhookReceiverOptions {
  /** `whsec_<base64>`; when given, each request's `verified` flag is set on arrival. */
  secret?: string;
  /** Status answered to requests (default 200); 410 tells a sender the endpoint is gone. */
  status?: number;
  /** Body answered with that status. Default `''`. */
  responseBody?: string;
  clock?: Clock;
}

export interface ReceivedWebhook {
  method: string;
  path: string;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** Raw body exactly as received; signatures are over these bytes. */
  body: string;
  time: number;
  /** Status this receiver answered (0 if it dropped the connection). */
  status: number;
  /** Verification result with the configured secret, or undefined when none is configured. */
  verified: boolean | undefined;
}

export interface WebhookReceiver extends FaultControls {
  url: string;
  clock: Clock;
  received: ReceivedWebhook[];
  requests: RecordedRequest[];
  /** Requests that verify with `secret` (default: the configured one), with their parsed payloads. */
  verified(secret?: string): { request: ReceivedWebhook; payload: unknown }[];
  /** Change the answer for later requests. */
  respondWith(status: number, body?: string): void;
  /** Answer 429 with `retry-after: retryAfterSeconds` to every request for `ms`, as a receiver shedding load would. */
  rateLimitStorm(ms: number, retryAfterSeconds: number): void;
  /** Resolves once at least `count` requests have arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

function flatHeaders(headers: IncomingFakeRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Verifies one request with `secret`; returns the parsed payload or undefined. */
export function verifyStandardWebhook(secret: string, request: Pick<ReceivedWebhook, 'headers' | 'body'>): unknown {
  try {
    return new Webhook(secret).verify(request.body, request.headers) ?? null;
  } catch {
    return undefined;
  }
}

export async function startWebhookReceiver(options: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const clock = options.clock ?? systemClock;
  const log = new RequestLog(clock, true);
  const faults = new Faults(clock);
  let status = options.status ?? 200;
  let responseBody = options.responseBody ?? '';
  const received: ReceivedWebhook[] = [];

  async function handle(request: IncomingFakeRequest): Promise<FakeResponse> {
    const entry: ReceivedWebhook = {
      method: request.method,
      path: request.path,
      headers: flatHeaders(request.headers),
      body: request.rawBody,
      time: request.record.time,
      status: 0,
      verified: undefined,
    };
    if (options.secret) entry.verified = verifyStandardWebhook(options.secret, entry) !== undefined;
    received.push(entry);
    const fault = faults.take();
    let response: FakeResponse;
    if (fault?.kind === 'fail') response = reply(fault.status, 'injected failure', `fault:${fault.reason}`);
    else if (fault?.kind === 'rate-limit-storm') {
      response = reply(429, 'slow down', 'rate-limited', { 'retry-after': String(fault.retryAfterSeconds) });
    } else if (faults.takeLostResponse()) response = { kind: 'drop', outcome: 'fault:lost-response' };
    else response = reply(status, responseBody, status < 300 ? 'ok' : `status:${status}`);
    response.finalize = () => {
      entry.status = response.kind === 'reply' ? response.status : 0;
    };
    return response;
  }

  const server = await startLoopbackServer(handle, log, () => faults.latencyMs);

  return {
    url: server.url,
    clock,
    received,
    requests: log.entries,
    ...faultControls(faults),
    verified(secret = options.secret) {
      if (!secret) throw new Error('verified() needs a secret: none was configured');
      return received.flatMap((request) => {
        const payload = verifyStandardWebhook(secret, request);
        return payload === undefined ? [] : [{ request, payload }];
      });
    },
    rateLimitStorm: (ms, retryAfterSeconds) => faults.rateLimitStorm(ms, retryAfterSeconds),
    respondWith(nextStatus, body = '') {
      status = nextStatus;
      responseBody = body;
    },
    waitFor: (count, timeoutMs = 5000) => waitUntil(() => received.length >= count, timeoutMs, `${count} webhook(s)`),
    reset() {
      received.length = 0;
      log.clear();
      faults.reset();
      status = options.status ?? 200;
      responseBody = options.responseBody ?? '';
    },
    close: () => server.close(),
  };
}
