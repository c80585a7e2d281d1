/**
 * Shared machinery of the provider fakes: a loopback HTTP server with a request log,
 * an injectable clock, fault injection and sliding-window rate limits.
 *
 * Every fake answers through `respond()`, so latency and the request log behave the
 * same way for Resend, Twilio and Slack; each fake only shapes its provider's bodies.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Time source; inject a `ManualClock` to test the 24 h idempotency window without waiting a day. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. Delays (latency) still use real timers. */
export class ManualClock implements Clock {
  private current: number;
  constructor(start = Date.UTC(2023, 10, 14, 22, 13, 20)) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  set(ms: number): void {
    this.current = ms;
  }
}

/** One HTTP request as the fake saw it, refused or accepted. */
export interface RecordedRequest {
  /** Sequence number within this fake since start/reset. */
  seq: number;
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Raw body text, or `undefined` when the fake was started with `recordBodies: false`. */
  body: string | undefined;
  bodyBytes: number;
  /** Clock time the request arrived (ms since epoch). */
  time: number;
  /** HTTP status answered; 0 while in flight or when the connection was dropped on purpose. */
  status: number;
  /** Clock time the answer was written. */
  respondedAt: number | undefined;
  /** Why the fake answered the way it did: 'ok', 'fault:fail-next', 'rate-limited', 'auth', provider error code, … */
  outcome: string;
}

/** What a handler returns; `drop` destroys the socket without an answer (a lost response). */
export type FakeResponse = (
  | { kind: 'reply'; status: number; headers?: Record<string, string>; body?: string | object }
  | { kind: 'drop' }
) & {
  outcome: string;
  /**
   * Runs after the latency, just before the answer is written (or the socket dropped):
   * the request counts as "in flight" until then, which is what Resend's
   * `concurrent_idempotent_requests` needs.
   */
  finalize?: () => void;
};

export function reply(status: number, body: string | object | undefined, outcome: string, headers?: Record<string, string>): FakeResponse {
  return { kind: 'reply', status, body, outcome, headers };
}

export interface IncomingFakeRequest {
  record: RecordedRequest;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: string;
}

export interface ServerHandle {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts `handler` on 127.0.0.1 with an ephemeral port. Handler exceptions become a 500 naming the bug. */
export async function startLoopbackServer(
  handler: (request: IncomingFakeRequest) => Promise<FakeResponse>,
  log: RequestLog,
  latency: () => number,
): Promise<ServerHandle> {
  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      // A bug in a fake must fail the test loudly, not look like a provider blip.
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`fake crashed: ${message}`);
      } else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record = log.add({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: raw.toString('utf8'),
      bodyBytes: raw.length,
    });
    const result = await handler({
      record,
      method: record.method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      rawBody: raw.toString('utf8'),
    });
    // Latency applies to every answer, so timeouts can be exercised on errors as well as successes.
    const delay = latency();
    if (delay > 0) await sleep(delay);
    result.finalize?.();
    record.outcome = result.outcome;
    record.respondedAt = log.clock.now();
    if (result.kind === 'drop') {
      record.status = 0;
      res.destroy();
      return;
    }
    record.status = result.status;
    const headers: Record<string, string> = { ...result.headers };
    let payload = '';
    if (typeof result.body === 'string') {
      payload = result.body;
      headers['content-type'] ??= 'text/plain; charset=utf-8';
    } else if (result.body !== undefined) {
      payload = JSON.stringify(result.body);
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    res.writeHead(result.status, headers);
    res.end(payload);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      // Keep-alive sockets from fetch/axios would otherwise hold close() open.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Append-only log of requests, with the option of not keeping bodies (benchmarks send 100 000 emails). */
export class RequestLog {
  readonly entries: RecordedRequest[] = [];
  private seq = 0;
  readonly clock: Clock;
  private readonly keepBodies: boolean;
  constructor(clock: Clock, keepBodies: boolean) {
    this.clock = clock;
    this.keepBodies = keepBodies;
  }
  add(input: Pick<RecordedRequest, 'method' | 'path' | 'query' | 'headers' | 'body' | 'bodyBytes'>): RecordedRequest {
    this.seq += 1;
    const record: RecordedRequest = {
      ...input,
      body: this.keepBodies ? input.body : undefined,
      seq: this.seq,
      time: this.clock.now(),
      status: 0,
      respondedAt: undefined,
      outcome: 'in-flight',
    };
    this.entries.push(record);
    return record;
  }
  clear(): void {
    this.entries.length = 0;
    this.seq = 0;
  }
}

/** A fault decided before the provider logic runs. */
export type Fault =
  | { kind: 'fail'; status: number; reason: 'fail-next' | 'outage' }
  | { kind: 'rate-limit-storm'; retryAfterSeconds: number }
  | { kind: 'lose-response' };

/**
 * Fault injection shared by all fakes. Order of precedence: rate-limit storm, outage,
 * fail-next. `loseResponseNext` is different: the request IS processed (emails recorded,
 * idempotency stored) and only the answer is lost, like a crash after the provider acted.
 */
export class Faults {
  private failQueue: number[] = [];
  private outageUntil = 0;
  private outageStatus = 503;
  private stormUntil = 0;
  private stormRetryAfter = 1;
  private lostResponses = 0;
  latencyMs = 0;
  private readonly clock: Clock;
  constructor(clock: Clock) {
    this.clock = clock;
  }
  failNext(n: number, status = 500): void {
    for (let i = 0; i < n; i += 1) this.failQueue.push(status);
  }
  outage(ms: number, status = 503): void {
    this.outageUntil = this.clock.now() + ms;
    this.outageStatus = status;
  }
  rateLimitStorm(ms: number, retryAfterSeconds: number): void {
    this.stormUntil = this.clock.now() + ms;
    this.stormRetryAfter = retryAfterSeconds;
  }
  loseResponseNext(n = 1): void {
    this.lostResponses += n;
  }
  latency(ms: number): void {
    this.latencyMs = ms;
  }
  /** Consumes and returns the fault for the request arriving now, if any. */
  take(): Fault | undefined {
    const now = this.clock.now();
    if (now < this.stormUntil) return { kind: 'rate-limit-storm', retryAfterSeconds: this.stormRetryAfter };
    if (now < this.outageUntil) return { kind: 'fail', status: this.outageStatus, reason: 'outage' };
    const status = this.failQueue.shift();
    if (status !== undefined) return { kind: 'fail', status, reason: 'fail-next' };
    return undefined;
  }
  /** Whether this (processed) request's answer should be lost; consumes one. */
  takeLostResponse(): boolean {
    if (this.lostResponses <= 0) return false;
    this.lostResponses -= 1;
    return true;
  }
  reset(): void {
    this.failQueue = [];
    this.outageUntil = 0;
    this.stormUntil = 0;
    this.lostResponses = 0;
    this.latencyMs = 0;
  }
}

/** The controls every fake exposes, delegated to its `Faults`. */
export interface FaultControls {
  /** The next `n` requests fail with `status` (default 500) before any processing. */
  failNext(n: number, status?: number): void;
  /** Every request fails with `status` (default 503) for `ms` of clock time. */
  outage(ms: number, status?: number): void;
  /** Delay every answer by `ms` (0 turns it off). */
  latency(ms: number): void;
  /** The next `n` requests are processed but their connection is destroyed before the answer. */
  loseResponseNext(n?: number): void;
}

export function faultControls(faults: Faults): FaultControls {
  return {
    failNext: (n, status) => faults.failNext(n, status),
    outage: (ms, status) => faults.outage(ms, status),
    latency: (ms) => faults.latency(ms),
    loseResponseNext: (n) => faults.loseResponseNext(n),
  };
}

/**
 * Sliding one-second windows per key (a sender number, a channel, or one global key).
 * `limit` requests are allowed in any window of 1000 ms; the next is refused.
 */
export class SlidingWindowLimiter {
  private readonly windows = new Map<string, number[]>();
  private readonly clock: Clock;
  readonly limit: number;
  readonly windowMs: number;
  constructor(clock: Clock, limit: number, windowMs = 1000) {
    this.clock = clock;
    this.limit = limit;
    this.windowMs = windowMs;
  }
  private window(key: string): number[] {
    const now = this.clock.now();
    let times = this.windows.get(key);
    if (!times) {
      times = [];
      this.windows.set(key, times);
    }
    while (times.length > 0 && (times[0] ?? 0) <= now - this.windowMs) times.shift();
    return times;
  }
  /** Records a hit when allowed. Returns the state either way. */
  hit(key: string): { allowed: boolean; remaining: number; resetSeconds: number; retryAfterSeconds: number } {
    const now = this.clock.now();
    const times = this.window(key);
    const oldest = times[0];
    const resetMs = oldest === undefined ? this.windowMs : oldest + this.windowMs - now;
    // Whole seconds, never 0: a client told "retry after 0" would spin.
    const resetSeconds = Math.max(1, Math.ceil(resetMs / 1000));
    if (times.length >= this.limit) return { allowed: false, remaining: 0, resetSeconds, retryAfterSeconds: resetSeconds };
    times.push(now);
    return { allowed: true, remaining: this.limit - times.length, resetSeconds, retryAfterSeconds: 0 };
  }
  reset(): void {
    this.windows.clear();
  }
}

/** Polls `predicate` until true or throws after `timeoutMs`; for waiting on callbacks and webhooks in tests. */
export async function waitUntil(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const auth = headerValue(headers, 'authorization');
  const match = auth ? /^Bearer\s+(.+)$/i.exec(auth) : null;
  return match?.[1]?.trim();
}

export function basicCredentials(headers: IncomingHttpHeaders): { user: string; password: string } | undefined {
  const auth = headerValue(headers, 'authorization');
  const match = auth ? /^Basic\s+(.+)$/i.exec(auth) : null;
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses JSON without throwing; `undefined` marks unparsable input. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
