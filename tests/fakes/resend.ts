/**
 * A loopback fake of the parts of the Resend API Candor uses, answering exactly what the
 * `resend` SDK (6.x) sends and parses:
 *
 * - `POST /emails` → `{ id }`; `POST /emails/batch` (JSON array, ≤ 100, header
 *   `x-batch-validation: strict|permissive`) → `{ data: [{ id }] }` (+ `errors` when permissive);
 *   `GET /emails/:id`.
 * - Errors are JSON `{ statusCode, name, message }`; the SDK returns that object verbatim as
 *   `error` (it does not throw) together with the response headers (lower-cased).
 * - `Idempotency-Key` with Resend's documented semantics (24 h, per key): same key and same body
 *   replays the first answer without sending; different body → 409 `invalid_idempotent_request`;
 *   first still in flight → 409 `concurrent_idempotent_requests`; longer than 256 → 400
 *   `invalid_idempotency_key`. Only successful sends are remembered, as Resend checks "has an
 *   email with this key already been sent".
 * - Rate limit with `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` and
 *   `retry-after` headers, 429 `rate_limit_exceeded`.
 * - Svix-signed webhooks (`svix-id`, `svix-timestamp`, `svix-signature`) that
 *   `resend.webhooks.verify` accepts.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type {
  EmailBouncedEvent,
  EmailComplainedEvent,
  EmailDeliveredEvent,
  EmailDeliveryDelayedEvent,
  EmailFailedEvent,
  EmailSentEvent,
} from 'resend';
import {
  bearerToken,
  type Clock,
  type FakeResponse,
  type FaultControls,
  Faults,
  faultControls,
  headerValue,
  type IncomingFakeRequest,
  isRecord,
  parseJson,
  type RecordedRequest,
  RequestLog,
  reply,
  SlidingWindowLimiter,
  startLoopbackServer,
  systemClock,
} from './common.ts';

export interface ResendFakeOptions {
  /** Keys accepted as `Authorization: Bearer …`. Default: any key starting with `re_`. */
  apiKeys?: string[];
  /** Requests per second over a sliding 1 s window (Resend's default is 2). Default: unlimited. */
  requestsPerSecond?: number;
  /** Time source for timestamps, windows and idempotency expiry. Default: real time. */
  clock?: Clock;
  /** How long an idempotency key is remembered. Default: 24 h, as Resend documents. */
  idempotencyWindowMs?: number;
  /** Keep request bodies and email html/text. Turn off for benchmarks of 100 000 emails. Default: true. */
  recordBodies?: boolean;
}

export interface ResendTag {
  name: string;
  value: string;
}

/** One accepted email; a batch of 100 gives 100 of these. */
export interface ResendEmailRecord {
  id: string;
  from: string;
  /** Always an array, as the API normalises it; addresses as given (possibly `Name <a@b>`). */
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo: string[];
  subject: string;
  html: string | undefined;
  text: string | undefined;
  headers: Record<string, string>;
  tags: ResendTag[];
  idempotencyKey: string | undefined;
  /** True when it came through `POST /emails/batch`; `batchIndex` is its place in the array. */
  batch: boolean;
  batchIndex: number | undefined;
  /** `seq` of the request in `requests` that sent it. */
  requestSeq: number;
  /** Clock time of the request (ms since epoch). */
  time: number;
}

export interface RateLimitedRecord {
  time: number;
  path: string;
  retryAfterSeconds: number;
  reason: 'rate-limit' | 'storm';
}

export type ResendEmailWebhookEvent =
  | EmailSentEvent
  | EmailDeliveredEvent
  | EmailDeliveryDelayedEvent
  | EmailBouncedEvent
  | EmailComplainedEvent
  | EmailFailedEvent;

export type ResendEmailEventType = ResendEmailWebhookEvent['type'];

/** Shorthand for building an event from an email the fake accepted. */
export interface ResendEmailEventInput {
  type: ResendEmailEventType;
  email: Pick<ResendEmailRecord, 'id' | 'from' | 'to' | 'subject'> & { tags?: ResendTag[]; time?: number };
  /** For `email.bounced`; default a permanent general bounce. */
  bounce?: { message: string; subType: string; type: string };
  /** For `email.failed`. */
  reason?: string;
}

export interface SignedWebhook {
  /** The exact raw body to POST; verify against this string, not a re-serialisation. */
  body: string;
  headers: { 'content-type': string; 'svix-id': string; 'svix-timestamp': string; 'svix-signature': string };
  event: ResendEmailWebhookEvent;
}

export interface ResendFake extends FaultControls {
  url: string;
  /** A key the fake accepts, for `new Resend(fake.apiKey, { baseUrl: fake.url })`. */
  apiKey: string;
  clock: Clock;
  /** Accepted emails, in order. */
  emails: ResendEmailRecord[];
  /** Every request, including refused ones, with the status answered. */
  requests: RecordedRequest[];
  /** Every 429 answered, with its time. */
  rateLimited: RateLimitedRecord[];
  emailsTo(address: string): ResendEmailRecord[];
  /** Addresses that received more than one email with the same subject. */
  duplicates(): { address: string; subject: string; count: number }[];
  /** Answer 429 with `retry-after: retryAfterSeconds` to every request for `ms`. */
  rateLimitStorm(ms: number, retryAfterSeconds: number): void;
  /** Change the rate limit at run time (`undefined` = unlimited). */
  setRequestsPerSecond(limit: number | undefined): void;
  /** Makes a Svix-signed webhook as Resend would send it. */
  signedWebhook(secret: string, event: ResendEmailWebhookEvent | ResendEmailEventInput, options?: SignOptions): SignedWebhook;
  /** Signs `event` and POSTs it to `url`; returns the receiver's answer. */
  postWebhook(
    url: string,
    secret: string,
    event: ResendEmailWebhookEvent | ResendEmailEventInput,
    options?: SignOptions,
  ): Promise<{ status: number; body: string }>;
  /** Clears captures, idempotency keys, rate windows and faults; keeps the constructor options. */
  reset(): void;
  close(): Promise<void>;
}

export interface SignOptions {
  /** Default: a fresh `msg_…`. Resend re-sends a failed delivery with the same id. */
  id?: string;
  /** Seconds since epoch. Default: the fake's clock; the SDK refuses anything more than 5 min off real time. */
  timestamp?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_BATCH = 100;
const MAX_RECIPIENTS = 50;
const MAX_IDEMPOTENCY_KEY = 256;
const ADDRESS_FORMAT = 'The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.';

interface ResendError {
  statusCode: number;
  name: string;
  message: string;
}

interface IdempotencyEntry {
  fingerprint: string;
  state: 'in-flight' | 'done';
  status: number;
  body: object;
  expiresAt: number;
}

/** Extracts the bare, lower-cased address from `a@b` or `Name <a@b>`; undefined when malformed. */
export function bareAddress(address: string): string | undefined {
  const trimmed = address.trim();
  const named = /^[^<>]*<([^<>\s]+)>$/.exec(trimmed);
  const candidate = named?.[1] ?? trimmed;
  return /^[^\s@<>",;]+@[^\s@<>",;]+\.[^\s@<>",;]+$/.test(candidate) ? candidate.toLowerCase() : undefined;
}

/** Signs a raw body the way Resend (Svix) does: HMAC-SHA256 with the base64-decoded part of `whsec_…`. */
export function signResendPayload(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** A fresh webhook secret in Resend's format. */
export function newResendWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** Builds an email event payload shaped like Resend's (`type`, `created_at`, `data.email_id`, …). */
export function resendEmailEvent(input: ResendEmailEventInput, now: number = Date.now()): ResendEmailWebhookEvent {
  const { email } = input;
  const data = {
    created_at: new Date(email.time ?? now).toISOString(),
    email_id: email.id,
    message_id: `<${email.id}@email.amazonses.com>`,
    from: email.from,
    to: [...email.to],
    subject: email.subject,
    ...(email.tags && email.tags.length > 0 ? { tags: Object.fromEntries(email.tags.map((t) => [t.name, t.value])) } : {}),
  };
  const created_at = new Date(now).toISOString();
  switch (input.type) {
    case 'email.bounced':
      return {
        type: input.type,
        created_at,
        data: {
          ...data,
          bounce: input.bounce ?? {
            message: "The recipient's email provider sent a hard bounce message.",
            subType: 'General',
            type: 'Permanent',
          },
        },
      };
    case 'email.failed':
      return { type: input.type, created_at, data: { ...data, failed: { reason: input.reason ?? 'reached_daily_quota' } } };
    case 'email.sent':
    case 'email.delivered':
    case 'email.delivery_delayed':
    case 'email.complained':
      return { type: input.type, created_at, data };
  }
}

function isEventPayload(event: ResendEmailWebhookEvent | ResendEmailEventInput): event is ResendEmailWebhookEvent {
  return 'data' in event;
}

function stringList(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  return undefined;
}

/** Stable serialisation so that key order does not make "the same payload" look different. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isRecord(value)) {
    return `{${Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

type ParsedEmail = Omit<ResendEmailRecord, 'id' | 'idempotencyKey' | 'batch' | 'batchIndex' | 'requestSeq' | 'time'>;

function validateEmail(input: unknown, inBatch: boolean): ParsedEmail | ResendError {
  const invalid = (message: string): ResendError => ({ statusCode: 422, name: 'validation_error', message });
  const missing = (field: string): ResendError => ({
    statusCode: 422,
    name: 'missing_required_field',
    message: `Missing \`${field}\` field.`,
  });
  if (!isRecord(input)) return invalid('The email must be an object.');
  if (input.from === undefined || input.from === '') return missing('from');
  if (typeof input.from !== 'string' || !bareAddress(input.from)) {
    return { statusCode: 422, name: 'invalid_from_address', message: `Invalid \`from\` field. ${ADDRESS_FORMAT}` };
  }
  if (input.to === undefined || input.to === '' || (Array.isArray(input.to) && input.to.length === 0)) return missing('to');
  const lists: Record<'to' | 'cc' | 'bcc' | 'reply_to', string[]> = { to: [], cc: [], bcc: [], reply_to: [] };
  for (const field of ['to', 'cc', 'bcc', 'reply_to'] as const) {
    const list = stringList(input[field]);
    if (!list || list.some((a) => !bareAddress(a))) return invalid(`Invalid \`${field}\` field. ${ADDRESS_FORMAT}`);
    lists[field] = list;
  }
  if (lists.to.length > MAX_RECIPIENTS) return invalid(`Too many recipients in \`to\`. The maximum is ${MAX_RECIPIENTS}.`);
  if (typeof input.subject !== 'string' || input.subject === '') return missing('subject');
  if (input.html !== undefined && typeof input.html !== 'string') return invalid('Invalid `html` field.');
  if (input.text !== undefined && typeof input.text !== 'string') return invalid('Invalid `text` field.');
  if (input.html === undefined && input.text === undefined && input.template === undefined) {
    return missing('html` or `text');
  }
  const headers: Record<string, string> = {};
  if (input.headers !== undefined) {
    if (!isRecord(input.headers)) return invalid('Invalid `headers` field. It must be an object of strings.');
    for (const [name, value] of Object.entries(input.headers)) {
      if (typeof value !== 'string') return invalid(`Invalid \`headers\` field: the value of ${name} must be a string.`);
      headers[name] = value;
    }
  }
  const tags: ResendTag[] = [];
  if (input.tags !== undefined) {
    if (!Array.isArray(input.tags)) return invalid('Invalid `tags` field.');
    for (const tag of input.tags) {
      if (!isRecord(tag) || typeof tag.name !== 'string' || typeof tag.value !== 'string') return invalid('Invalid `tags` field.');
      if (!/^[A-Za-z0-9_-]{1,256}$/.test(tag.name) || !/^[A-Za-z0-9_-]{0,256}$/.test(tag.value)) {
        return invalid('Tags should only contain ASCII letters, numbers, underscores, or dashes.');
      }
      tags.push({ name: tag.name, value: tag.value });
    }
  }
  if (inBatch && input.attachments !== undefined) return invalid('Attachments are not supported in batch emails.');
  if (inBatch && input.scheduled_at !== undefined) return invalid('`scheduled_at` is not supported in batch emails.');
  return {
    from: input.from,
    to: lists.to,
    cc: lists.cc,
    bcc: lists.bcc,
    replyTo: lists.reply_to,
    subject: input.subject,
    html: typeof input.html === 'string' ? input.html : undefined,
    text: typeof input.text === 'string' ? input.text : undefined,
    headers,
    tags,
  };
}

function isError(value: ParsedEmail | ResendError): value is ResendError {
  return 'statusCode' in value;
}

export async function startFakeResend(options: ResendFakeOptions = {}): Promise<ResendFake> {
  const clock = options.clock ?? systemClock;
  const recordBodies = options.recordBodies ?? true;
  const windowMs = options.idempotencyWindowMs ?? DAY_MS;
  const log = new RequestLog(clock, recordBodies);
  const faults = new Faults(clock);
  const acceptedKeys = options.apiKeys ? new Set(options.apiKeys) : undefined;
  const apiKey = options.apiKeys?.[0] ?? `re_test_${randomBytes(12).toString('hex')}`;

  let limiter = options.requestsPerSecond ? new SlidingWindowLimiter(clock, options.requestsPerSecond) : undefined;
  const emails: ResendEmailRecord[] = [];
  const byId = new Map<string, ResendEmailRecord>();
  const byAddress = new Map<string, ResendEmailRecord[]>();
  const rateLimited: RateLimitedRecord[] = [];
  const idempotency = new Map<string, IdempotencyEntry>();

  const error = (e: ResendError, headers?: Record<string, string>): FakeResponse => reply(e.statusCode, e, e.name, headers);

  function rateLimitResponse(path: string, retryAfterSeconds: number, reason: RateLimitedRecord['reason'], limit: number): FakeResponse {
    rateLimited.push({ time: clock.now(), path, retryAfterSeconds, reason });
    return error(
      {
        statusCode: 429,
        name: 'rate_limit_exceeded',
        message: `Too many requests. You can only make ${limit} requests per second. See rate limit response headers for more information. Or contact support to increase rate limit.`,
      },
      {
        'retry-after': String(retryAfterSeconds),
        'ratelimit-limit': String(limit),
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(retryAfterSeconds),
      },
    );
  }

  function store(
    parsed: ParsedEmail,
    request: IncomingFakeRequest,
    key: string | undefined,
    batchIndex: number | undefined,
  ): ResendEmailRecord {
    const record: ResendEmailRecord = {
      ...parsed,
      html: recordBodies ? parsed.html : undefined,
      text: recordBodies ? parsed.text : undefined,
      id: randomUUID(),
      idempotencyKey: key,
      batch: batchIndex !== undefined,
      batchIndex,
      requestSeq: request.record.seq,
      time: request.record.time,
    };
    emails.push(record);
    byId.set(record.id, record);
    for (const address of [...record.to, ...record.cc, ...record.bcc]) {
      const bare = bareAddress(address) ?? address;
      const list = byAddress.get(bare);
      if (list) list.push(record);
      else byAddress.set(bare, [record]);
    }
    return record;
  }

  async function handle(request: IncomingFakeRequest): Promise<FakeResponse> {
    const { path, method } = request;
    const fault = faults.take();
    if (fault?.kind === 'rate-limit-storm') return rateLimitResponse(path, fault.retryAfterSeconds, 'storm', limiter?.limit ?? 2);
    if (fault?.kind === 'fail') {
      // Resend names its own 500s `internal_server_error`; other injected statuses stand for a proxy or gateway.
      const name = fault.status === 500 ? 'internal_server_error' : 'application_error';
      const response = error({ statusCode: fault.status, name, message: 'An unexpected error occurred.' });
      response.outcome = `fault:${fault.reason}`;
      return response;
    }

    const token = bearerToken(request.headers);
    if (!token) {
      return error({
        statusCode: 401,
        name: 'missing_api_key',
        message:
          'Missing API key in the authorization header. Include the following header Authorization: Bearer YOUR_API_KEY in the request.',
      });
    }
    if (acceptedKeys ? !acceptedKeys.has(token) : !token.startsWith('re_')) {
      return error({ statusCode: 403, name: 'invalid_api_key', message: 'API key is invalid' });
    }

    const rateHeaders: Record<string, string> = {};
    if (limiter) {
      const state = limiter.hit('account');
      if (!state.allowed) return rateLimitResponse(path, state.retryAfterSeconds, 'rate-limit', limiter.limit);
      rateHeaders['ratelimit-limit'] = String(limiter.limit);
      rateHeaders['ratelimit-remaining'] = String(state.remaining);
      rateHeaders['ratelimit-reset'] = String(state.resetSeconds);
    }

    const getMatch = /^\/emails\/([^/]+)$/.exec(path);
    if (method === 'GET' && getMatch?.[1] && getMatch[1] !== 'batch') {
      const email = byId.get(getMatch[1]);
      if (!email) return error({ statusCode: 404, name: 'not_found', message: 'Email not found' }, rateHeaders);
      return reply(
        200,
        {
          object: 'email',
          id: email.id,
          to: email.to,
          from: email.from,
          created_at: new Date(email.time).toISOString(),
          subject: email.subject,
          html: email.html ?? null,
          text: email.text ?? null,
          bcc: email.bcc,
          cc: email.cc,
          reply_to: email.replyTo,
          last_event: 'sent',
          tags: email.tags,
        },
        'ok',
        rateHeaders,
      );
    }
    if (path !== '/emails' && path !== '/emails/batch') {
      return error({ statusCode: 404, name: 'not_found', message: 'The requested endpoint does not exist.' }, rateHeaders);
    }
    if (method !== 'POST') return error({ statusCode: 405, name: 'method_not_allowed', message: 'Method not allowed' }, rateHeaders);

    const key = headerValue(request.headers, 'idempotency-key');
    if (key !== undefined && (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY)) {
      return error(
        {
          statusCode: 400,
          name: 'invalid_idempotency_key',
          message: `The key must be between 1-${MAX_IDEMPOTENCY_KEY} chars. Retry with a valid key or without supplying an idempotency key.`,
        },
        rateHeaders,
      );
    }

    const parsed = parseJson(request.rawBody);
    // A digest, not the payload itself: 1 000 remembered batches of 100 would otherwise hold ~150 MB.
    const fingerprint = createHash('sha256')
      .update(`${path}\n${canonical(parsed)}`)
      .digest('base64');
    if (key !== undefined) {
      const existing = idempotency.get(key);
      if (existing && existing.expiresAt <= clock.now()) idempotency.delete(key);
      else if (existing?.state === 'in-flight') {
        return error(
          {
            statusCode: 409,
            name: 'concurrent_idempotent_requests',
            message: 'Same idempotency key used while original request is still in progress. Retry later if needed.',
          },
          rateHeaders,
        );
      } else if (existing && existing.fingerprint !== fingerprint) {
        return error(
          {
            statusCode: 409,
            name: 'invalid_idempotent_request',
            message: 'Same idempotency key used with a different request payload. Change your idempotency key or payload.',
          },
          rateHeaders,
        );
      } else if (existing) {
        return reply(existing.status, existing.body, 'idempotent-replay', rateHeaders);
      }
    }

    if (parsed === undefined) return error({ statusCode: 422, name: 'validation_error', message: 'Invalid JSON body.' }, rateHeaders);

    const status = 200;
    let body: object;
    if (path === '/emails') {
      const email = validateEmail(parsed, false);
      if (isError(email)) return error(email, rateHeaders);
      body = { id: store(email, request, key, undefined).id };
    } else {
      if (!Array.isArray(parsed))
        return error({ statusCode: 422, name: 'validation_error', message: 'The batch must be an array of emails.' }, rateHeaders);
      if (parsed.length === 0)
        return error({ statusCode: 422, name: 'validation_error', message: 'The batch must contain at least 1 email.' }, rateHeaders);
      if (parsed.length > MAX_BATCH) {
        return error(
          {
            statusCode: 422,
            name: 'validation_error',
            message: `Too many emails in the batch. The maximum is ${MAX_BATCH}, got ${parsed.length}.`,
          },
          rateHeaders,
        );
      }
      const permissive = headerValue(request.headers, 'x-batch-validation') === 'permissive';
      const checked = parsed.map((item) => validateEmail(item, true));
      if (!permissive) {
        const index = checked.findIndex(isError);
        const first = checked[index];
        if (first && isError(first)) return error({ ...first, message: `emails[${index}]: ${first.message}` }, rateHeaders);
      }
      const data: { id: string }[] = [];
      const errors: { index: number; message: string }[] = [];
      checked.forEach((email, index) => {
        if (isError(email)) errors.push({ index, message: email.message });
        else data.push({ id: store(email, request, key, index).id });
      });
      body = permissive ? { data, errors } : { data };
    }

    const response = reply(status, body, 'ok', rateHeaders);
    if (key !== undefined) {
      const entry: IdempotencyEntry = { fingerprint, state: 'in-flight', status, body, expiresAt: request.record.time + windowMs };
      idempotency.set(key, entry);
      // The key stays "in progress" until the answer leaves, so a racing duplicate gets 409.
      response.finalize = () => {
        entry.state = 'done';
      };
    }
    if (faults.takeLostResponse()) return { kind: 'drop', outcome: 'fault:lost-response', finalize: response.finalize };
    return response;
  }

  const server = await startLoopbackServer(handle, log, () => faults.latencyMs);

  function signedWebhook(secret: string, event: ResendEmailWebhookEvent | ResendEmailEventInput, sign: SignOptions = {}): SignedWebhook {
    const payload = isEventPayload(event) ? event : resendEmailEvent(event, clock.now());
    const body = JSON.stringify(payload);
    const id = sign.id ?? `msg_${randomBytes(14).toString('base64url')}`;
    const timestamp = sign.timestamp ?? Math.floor(clock.now() / 1000);
    return {
      body,
      event: payload,
      headers: {
        'content-type': 'application/json',
        'svix-id': id,
        'svix-timestamp': String(timestamp),
        'svix-signature': signResendPayload(secret, id, timestamp, body),
      },
    };
  }

  return {
    url: server.url,
    apiKey,
    clock,
    emails,
    requests: log.entries,
    rateLimited,
    ...faultControls(faults),
    emailsTo: (address) => byAddress.get(bareAddress(address) ?? address) ?? [],
    duplicates() {
      const counts = new Map<string, { address: string; subject: string; count: number }>();
      for (const [address, list] of byAddress) {
        for (const email of list) {
          const k = `${address}\n${email.subject}`;
          const entry = counts.get(k);
          if (entry) entry.count += 1;
          else counts.set(k, { address, subject: email.subject, count: 1 });
        }
      }
      return [...counts.values()].filter((c) => c.count > 1);
    },
    rateLimitStorm: (ms, retryAfterSeconds) => faults.rateLimitStorm(ms, retryAfterSeconds),
    setRequestsPerSecond(limit) {
      limiter = limit ? new SlidingWindowLimiter(clock, limit) : undefined;
    },
    signedWebhook,
    async postWebhook(url, secret, event, sign) {
      const signed = signedWebhook(secret, event, sign);
      const res = await fetch(url, { method: 'POST', headers: signed.headers, body: signed.body });
      return { status: res.status, body: await res.text() };
    },
    reset() {
      emails.length = 0;
      byId.clear();
      byAddress.clear();
      rateLimited.length = 0;
      idempotency.clear();
      log.clear();
      faults.reset();
      limiter = options.requestsPerSecond ? new SlidingWindowLimiter(clock, options.requestsPerSecond) : undefined;
    },
    close: () => server.close(),
  };
}
