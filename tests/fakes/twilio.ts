/**
 * A loopback fake of the parts of Twilio's REST API Candor uses, for the `twilio` SDK (6.x)
 * driven through `TwilioBaseUrlHttpClient` (src/core/notify/channels/twilio-http-client.ts):
 *
 * - `POST /2010-04-01/Accounts/{Sid}/Messages.json`, form-encoded (`To`, `From` or
 *   `MessagingServiceSid`, `Body`, `StatusCallback`), Basic auth `sid:token` → 201 with the
 *   message resource (`sid` SM…, `status` `queued`, or `accepted` for a Messaging Service,
 *   `num_segments` as a string, dates in RFC 2822). `GET …/Messages/{Sid}.json` fetches one.
 * - `GET …/Messages.json` lists them as Twilio does: filters `To`, `From`, `DateSent`, `DateSent<`,
 *   `DateSent>` (by UTC date only: Twilio documents `YYYY-MM-DD`, and the SDK's date-time is read as
 *   its date), newest `date_sent` first, `PageSize` (default 50, at most 1000) with `next_page_uri`
 *   carrying `Page` and `PageToken`. `date_sent` is null until the message is `sent`; a DateSent filter
 *   leaves such messages out (the cautious reading: Twilio's docs do not say). A message is listed only
 *   `listingDelayMs` after it was created, as Twilio's list can lag behind a create.
 * - Errors as Twilio sends them, `{ code, message, more_info, status }`: 21211 invalid `To`,
 *   21610 unsubscribed recipient, 21602/21603/21617 body/from problems, 20003 auth, 20429 with
 *   `Retry-After`. The SDK turns them into a thrown `RestException` (`status`, `code`,
 *   `message`, `moreInfo`) WITHOUT the response headers.
 * - Status callbacks signed with `X-Twilio-Signature` (the SDK's own `getExpectedTwilioSignature`,
 *   so `twilio.validateRequest` accepts them) and signed inbound-SMS webhooks (`sendInbound`).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import twilio from 'twilio';
import {
  basicCredentials,
  type Clock,
  type FakeResponse,
  type FaultControls,
  Faults,
  faultControls,
  type IncomingFakeRequest,
  type RecordedRequest,
  RequestLog,
  reply,
  SlidingWindowLimiter,
  startLoopbackServer,
  systemClock,
} from './common.ts';

export type TwilioDeliveryFailure = { status: 'undelivered' | 'failed'; errorCode: number };

export interface TwilioFakeOptions {
  /** Default: a fixed test SID `AC…`. */
  accountSid?: string;
  /** Default: a fixed 32-hex test token. Used for Basic auth and to sign callbacks. */
  authToken?: string;
  clock?: Clock;
  /** Keep request bodies and message bodies. Default: true. */
  recordBodies?: boolean;
  /** Numbers that replied STOP: sending to them gives 400 / 21610. */
  unsubscribed?: string[];
  /** Numbers whose messages end `undelivered` (after `sent`) or `failed`, with that ErrorCode (e.g. 30003, 30005, 30008). */
  deliveryFailures?: Record<string, TwilioDeliveryFailure>;
  /** Valid `From` numbers; others get 21606. Default: any E.164 number. */
  senders?: string[];
  /** Number that Messaging Service sends appear to come from in callbacks. Default `+15005550006`. */
  messagingServiceFrom?: string;
  /** Messages per second per sender (`From` or `MessagingServiceSid`), sliding 1 s window → 429 / 20429. Default: unlimited. */
  messagesPerSecondPerSender?: number;
  /** POST status callbacks when `StatusCallback` was given. Default: true. */
  statusCallbacks?: boolean;
  /** Delay before each callback (`sent`, then the final status). Default: 10 ms. */
  statusCallbackDelayMs?: number;
  /** How long (clock time) after its creation a message first appears in `GET …/Messages.json`. Default: 0. */
  listingDelayMs?: number;
}

export type TwilioMessageStatus = 'accepted' | 'queued' | 'sending' | 'sent' | 'delivered' | 'undelivered' | 'failed';

export interface TwilioMessageRecord {
  sid: string;
  accountSid: string;
  to: string;
  /** `null` when sent through a Messaging Service, as in Twilio's create response. */
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  statusCallback: string | undefined;
  numSegments: number;
  /** Current lifecycle status; moves on as callbacks are (or would be) sent. */
  status: TwilioMessageStatus;
  errorCode: number | null;
  requestSeq: number;
  time: number;
  /** Clock time the message became `sent` (Twilio's `date_sent`); null before. */
  dateSent: number | null;
}

export interface TwilioCallbackRecord {
  url: string;
  messageSid: string;
  messageStatus: TwilioMessageStatus;
  params: Record<string, string>;
  signature: string;
  /** HTTP status the receiver answered; 0 when the request itself failed. */
  responseStatus: number;
  error: string | undefined;
  time: number;
}

export interface TwilioRateLimitedRecord {
  time: number;
  sender: string;
  retryAfterSeconds: number;
  reason: 'rate-limit' | 'storm';
}

export interface InboundSmsParams {
  From: string;
  To: string;
  Body: string;
  [param: string]: string;
}

export interface InboundOptions {
  /** `valid` (default) signs like Twilio; `invalid` sends a wrong signature; `none` omits the header. */
  signature?: 'valid' | 'invalid' | 'none';
  /** URL to sign if it differs from the one posted to (Twilio signs the URL it was configured with). */
  signatureUrl?: string;
}

export interface InboundResult {
  status: number;
  body: string;
  contentType: string | null;
  headers: Record<string, string>;
  params: Record<string, string>;
}

export interface TwilioFake extends FaultControls {
  url: string;
  accountSid: string;
  authToken: string;
  clock: Clock;
  messages: TwilioMessageRecord[];
  requests: RecordedRequest[];
  rateLimited: TwilioRateLimitedRecord[];
  callbacks: TwilioCallbackRecord[];
  inbound: (InboundResult & { url: string; time: number })[];
  messagesTo(number: string): TwilioMessageRecord[];
  unsubscribe(number: string): void;
  resubscribe(number: string): void;
  failDelivery(number: string, failure: TwilioDeliveryFailure): void;
  rateLimitStorm(ms: number, retryAfterSeconds: number): void;
  setMessagesPerSecondPerSender(limit: number | undefined): void;
  setStatusCallbacks(enabled: boolean): void;
  /** Messages appear in the list `ms` of clock time after their creation. */
  setListingDelay(ms: number): void;
  /** Resolves when every scheduled status callback has been posted. */
  callbacksSettled(): Promise<void>;
  /** Posts a signed inbound-SMS webhook to `url` and returns the answer (e.g. TwiML). */
  sendInbound(url: string, params: InboundSmsParams, options?: InboundOptions): Promise<InboundResult>;
  reset(): void;
  close(): Promise<void>;
}

const API_VERSION = '2010-04-01';
const E164 = /^\+[1-9]\d{1,14}$/;
const GSM7_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM7_EXTENDED = new Set('\f^{}\\[~]|€');

/** Segments Twilio bills for `body`: GSM-7 160/153 per segment (extension chars count 2), otherwise UCS-2 70/67. */
export function countSmsSegments(body: string): number {
  let septets = 0;
  let gsm = true;
  for (const ch of body) {
    if (GSM7_BASIC.has(ch)) septets += 1;
    else if (GSM7_EXTENDED.has(ch)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) return septets <= 160 ? 1 : Math.ceil(septets / 153);
  // UCS-2 counts UTF-16 code units; a character outside the BMP takes two.
  const units = body.length;
  return units <= 70 ? 1 : Math.ceil(units / 67);
}

function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

function sid(prefix: string): string {
  return prefix + randomBytes(16).toString('hex');
}

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

/** The UTC date (`YYYY-MM-DD`) of a DateSent filter value, as Twilio reads it; undefined when unreadable. */
function filterDate(value: string): string | undefined {
  const match = /^(\d{4}-\d{2}-\d{2})/.exec(value.trim());
  if (match?.[1]) return match[1];
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString().slice(0, 10);
}

function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function twilioError(status: number, code: number, message: string): FakeResponse {
  return reply(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, String(code));
}

export async function startFakeTwilio(options: TwilioFakeOptions = {}): Promise<TwilioFake> {
  const clock = options.clock ?? systemClock;
  const recordBodies = options.recordBodies ?? true;
  const accountSid = options.accountSid ?? 'AC00000000000000000000000000000001';
  const authToken = options.authToken ?? '0123456789abcdef0123456789abcdef';
  const serviceFrom = options.messagingServiceFrom ?? '+15005550006';
  const callbackDelay = options.statusCallbackDelayMs ?? 10;
  const log = new RequestLog(clock, recordBodies);
  const faults = new Faults(clock);

  let unsubscribed = new Set(options.unsubscribed ?? []);
  let deliveryFailures = new Map(Object.entries(options.deliveryFailures ?? {}));
  let limiter = options.messagesPerSecondPerSender ? new SlidingWindowLimiter(clock, options.messagesPerSecondPerSender) : undefined;
  let callbacksEnabled = options.statusCallbacks ?? true;
  let listingDelayMs = options.listingDelayMs ?? 0;
  const senders = options.senders ? new Set(options.senders) : undefined;

  const messages: TwilioMessageRecord[] = [];
  const bySid = new Map<string, TwilioMessageRecord>();
  const rateLimited: TwilioRateLimitedRecord[] = [];
  const callbacks: TwilioCallbackRecord[] = [];
  const inbound: (InboundResult & { url: string; time: number })[] = [];
  const pending = new Set<Promise<void>>();
  let closed = false;

  function resource(m: TwilioMessageRecord): object {
    const uri = `/${API_VERSION}/Accounts/${m.accountSid}/Messages/${m.sid}.json`;
    return {
      account_sid: m.accountSid,
      api_version: API_VERSION,
      body: m.body,
      date_created: rfc2822(m.time),
      date_sent: m.dateSent === null ? null : rfc2822(m.dateSent),
      date_updated: rfc2822(m.time),
      direction: 'outbound-api',
      error_code: m.errorCode,
      error_message: null,
      from: m.from,
      messaging_service_sid: m.messagingServiceSid,
      num_media: '0',
      num_segments: String(m.numSegments),
      price: null,
      price_unit: 'USD',
      sid: m.sid,
      status: m.status,
      subresource_uris: { media: uri.replace(/\.json$/, '/Media.json') },
      to: m.to,
      uri,
    };
  }

  function tooMany(sender: string, retryAfterSeconds: number, reason: TwilioRateLimitedRecord['reason']): FakeResponse {
    rateLimited.push({ time: clock.now(), sender, retryAfterSeconds, reason });
    const response = twilioError(429, 20429, 'Too Many Requests');
    if (response.kind === 'reply') response.headers = { 'retry-after': String(retryAfterSeconds) };
    return response;
  }

  async function postCallback(message: TwilioMessageRecord, status: TwilioMessageStatus, errorCode?: number): Promise<void> {
    const url = message.statusCallback;
    message.status = status;
    if (status === 'sent' && message.dateSent === null) message.dateSent = clock.now();
    if (errorCode !== undefined) message.errorCode = errorCode;
    if (!url || !callbacksEnabled || closed) return;
    const params: Record<string, string> = {
      SmsSid: message.sid,
      SmsStatus: status,
      MessageStatus: status,
      To: message.to,
      MessageSid: message.sid,
      AccountSid: message.accountSid,
      From: message.from ?? serviceFrom,
      ApiVersion: API_VERSION,
    };
    if (message.messagingServiceSid) params.MessagingServiceSid = message.messagingServiceSid;
    if (errorCode !== undefined) params.ErrorCode = String(errorCode);
    const signature = twilio.getExpectedTwilioSignature(authToken, url, params);
    const record: TwilioCallbackRecord = {
      url,
      messageSid: message.sid,
      messageStatus: status,
      params,
      signature,
      responseStatus: 0,
      error: undefined,
      time: clock.now(),
    };
    callbacks.push(record);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': signature,
          'i-twilio-idempotency-token': randomUUID(),
          'user-agent': 'TwilioProxy/1.1',
        },
        body: new URLSearchParams(params).toString(),
      });
      record.responseStatus = res.status;
      await res.arrayBuffer();
    } catch (error) {
      // Twilio does not retry a failed status callback by default; the record says what happened.
      record.error = error instanceof Error ? error.message : String(error);
    }
  }

  function scheduleLifecycle(message: TwilioMessageRecord): void {
    const failure = deliveryFailures.get(message.to);
    const run = async () => {
      await sleep(callbackDelay);
      if (failure?.status === 'failed') {
        await postCallback(message, 'failed', failure.errorCode);
        return;
      }
      await postCallback(message, 'sent');
      await sleep(callbackDelay);
      if (failure) await postCallback(message, 'undelivered', failure.errorCode);
      else await postCallback(message, 'delivered');
    };
    const task: Promise<void> = run().finally(() => pending.delete(task));
    pending.add(task);
  }

  /** `GET …/Messages.json`: Twilio's filters, order and paging over the messages listed by now. */
  function list(path: string, query: URLSearchParams): FakeResponse {
    const to = query.get('To');
    const from = query.get('From');
    const dates: [op: '=' | '<' | '>', value: string][] = [];
    for (const [op, name] of [
      ['=', 'DateSent'],
      ['<', 'DateSent<'],
      ['>', 'DateSent>'],
    ] as const) {
      const raw = query.get(name);
      if (raw === null) continue;
      const date = filterDate(raw);
      if (!date) return twilioError(400, 20001, `Invalid value for ${name}`);
      dates.push([op, date]);
    }
    const sizeParam = query.get('PageSize');
    const pageSize = sizeParam === null ? DEFAULT_PAGE_SIZE : Number(sizeParam);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
      return twilioError(400, 20001, 'PageSize must be between 1 and 1000');
    }
    const page = Math.max(0, Number(query.get('Page') ?? 0) || 0);
    const now = clock.now();
    const matching = messages
      .filter((m) => m.time + listingDelayMs <= now)
      .filter((m) => (to === null || m.to === to) && (from === null || m.from === from))
      .filter((m) => {
        if (dates.length === 0) return true;
        if (m.dateSent === null) return false;
        const sent = utcDate(m.dateSent);
        return dates.every(([op, date]) => (op === '=' ? sent === date : op === '<' ? sent <= date : sent >= date));
      })
      // newest first; not yet sent (no date_sent) before any sent one, then by creation
      .sort((a, b) => (b.dateSent ?? Number.POSITIVE_INFINITY) - (a.dateSent ?? Number.POSITIVE_INFINITY) || b.requestSeq - a.requestSeq);
    // PageToken `PA<sid>`: the page starts after that message, so paging is stable while messages arrive.
    const token = query.get('PageToken');
    let start = page * pageSize;
    if (token) {
      const after = matching.findIndex((m) => `PA${m.sid}` === token);
      if (after < 0) return twilioError(400, 20001, 'Invalid PageToken');
      start = after + 1;
    }
    const slice = matching.slice(start, start + pageSize);
    const params = new URLSearchParams();
    for (const name of ['To', 'From', 'DateSent', 'DateSent<', 'DateSent>']) {
      const value = query.get(name);
      if (value !== null) params.set(name, value);
    }
    params.set('PageSize', String(pageSize));
    const uriOf = (extra: Record<string, string>) => {
      const q = new URLSearchParams(params);
      for (const [k, v] of Object.entries(extra)) q.set(k, v);
      return `${path}?${q.toString()}`;
    };
    const last = slice.at(-1);
    const more = last !== undefined && start + slice.length < matching.length;
    return reply(
      200,
      {
        messages: slice.map(resource),
        end: start + Math.max(0, slice.length - 1),
        first_page_uri: uriOf({ Page: '0' }),
        next_page_uri: more ? uriOf({ Page: String(page + 1), PageToken: `PA${last.sid}` }) : null,
        page,
        page_size: pageSize,
        previous_page_uri: page > 0 ? uriOf({ Page: String(page - 1) }) : null,
        start,
        uri: uriOf(token ? { Page: String(page), PageToken: token } : { Page: String(page) }),
      },
      'ok',
    );
  }

  async function handle(request: IncomingFakeRequest): Promise<FakeResponse> {
    const fault = faults.take();
    if (fault?.kind === 'rate-limit-storm') return tooMany('*', fault.retryAfterSeconds, 'storm');
    if (fault?.kind === 'fail') {
      const response = twilioError(
        fault.status,
        fault.status === 503 ? 20503 : 20500,
        fault.status === 503 ? 'Service Unavailable' : 'Internal Server Error',
      );
      response.outcome = `fault:${fault.reason}`;
      return response;
    }

    const credentials = basicCredentials(request.headers);
    if (!credentials || credentials.user !== accountSid || credentials.password !== authToken) {
      const response = twilioError(401, 20003, 'Authenticate');
      if (response.kind === 'reply') response.headers = { 'www-authenticate': 'Basic realm="Twilio API"' };
      return response;
    }

    const create = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(request.path);
    const fetchOne = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/.exec(request.path);
    const pathSid = create?.[1] ?? fetchOne?.[1];
    if (!pathSid || pathSid !== accountSid) {
      return twilioError(404, 20404, `The requested resource ${request.path} was not found`);
    }
    if (fetchOne?.[2] && request.method === 'GET') {
      const message = bySid.get(fetchOne[2]);
      return message
        ? reply(200, resource(message), 'ok')
        : twilioError(404, 20404, `The requested resource ${request.path} was not found`);
    }
    if (create && request.method === 'GET') return list(request.path, request.query);
    if (!create || request.method !== 'POST') return twilioError(405, 20004, 'Method not allowed');

    const form = new URLSearchParams(request.rawBody);
    const to = form.get('To') ?? '';
    const from = form.get('From');
    const serviceSid = form.get('MessagingServiceSid');
    const body = form.get('Body') ?? '';
    const statusCallback = form.get('StatusCallback') ?? undefined;

    if (!to) return twilioError(400, 21604, "A 'To' phone number is required.");
    if (!E164.test(to)) return twilioError(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (!from && !serviceSid) return twilioError(400, 21603, "A 'From' phone number is required.");
    if (from && (!E164.test(from) || (senders && !senders.has(from)))) {
      return twilioError(
        400,
        21606,
        `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`,
      );
    }
    if (serviceSid && !/^MG[0-9a-f]{32}$/.test(serviceSid)) {
      return twilioError(400, 21701, `The Messaging Service Sid ${serviceSid} is invalid.`);
    }
    if (!body && !form.has('MediaUrl') && !form.has('ContentSid')) return twilioError(400, 21602, 'Message body is required.');
    if (body.length > 1600) return twilioError(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');

    const sender = from ?? serviceSid ?? '';
    if (limiter) {
      const state = limiter.hit(sender);
      if (!state.allowed) return tooMany(sender, state.retryAfterSeconds, 'rate-limit');
    }
    if (unsubscribed.has(to)) return twilioError(400, 21610, 'Attempt to send to unsubscribed recipient');

    const message: TwilioMessageRecord = {
      sid: sid('SM'),
      accountSid,
      to,
      from: from ?? null,
      messagingServiceSid: serviceSid,
      body: recordBodies ? body : '',
      statusCallback,
      numSegments: countSmsSegments(body),
      // A Messaging Service send is `accepted` until a sender is chosen; a direct send is `queued`.
      status: from ? 'queued' : 'accepted',
      errorCode: null,
      requestSeq: request.record.seq,
      time: request.record.time,
      dateSent: null,
    };
    messages.push(message);
    bySid.set(message.sid, message);
    const response = reply(201, resource(message), 'ok');
    // Callbacks start once the answer has left, as Twilio reports status after accepting.
    response.finalize = () => scheduleLifecycle(message);
    if (faults.takeLostResponse()) return { kind: 'drop', outcome: 'fault:lost-response', finalize: response.finalize };
    return response;
  }

  const server = await startLoopbackServer(handle, log, () => faults.latencyMs);

  return {
    url: server.url,
    accountSid,
    authToken,
    clock,
    messages,
    requests: log.entries,
    rateLimited,
    callbacks,
    inbound,
    ...faultControls(faults),
    messagesTo: (number) => messages.filter((m) => m.to === number),
    unsubscribe: (number) => unsubscribed.add(number),
    resubscribe: (number) => unsubscribed.delete(number),
    failDelivery: (number, failure) => deliveryFailures.set(number, failure),
    rateLimitStorm: (ms, retryAfterSeconds) => faults.rateLimitStorm(ms, retryAfterSeconds),
    setMessagesPerSecondPerSender(limit) {
      limiter = limit ? new SlidingWindowLimiter(clock, limit) : undefined;
    },
    setStatusCallbacks(enabled) {
      callbacksEnabled = enabled;
    },
    setListingDelay(ms) {
      listingDelayMs = ms;
    },
    async callbacksSettled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    async sendInbound(url, params, inboundOptions = {}) {
      const messageSid = sid('SM');
      const full: Record<string, string> = {
        ToCountry: 'US',
        ToState: '',
        SmsMessageSid: messageSid,
        NumMedia: '0',
        ToCity: '',
        FromZip: '',
        SmsSid: messageSid,
        FromState: '',
        SmsStatus: 'received',
        FromCity: '',
        FromCountry: 'US',
        ToZip: '',
        NumSegments: String(countSmsSegments(params.Body)),
        MessageSid: messageSid,
        AccountSid: accountSid,
        ApiVersion: API_VERSION,
        ...params,
      };
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        'i-twilio-idempotency-token': randomUUID(),
        'user-agent': 'TwilioProxy/1.1',
      };
      const mode = inboundOptions.signature ?? 'valid';
      if (mode !== 'none') {
        // A forged request is one signed with some other token.
        const token = mode === 'valid' ? authToken : `${authToken}-forged`;
        headers['x-twilio-signature'] = twilio.getExpectedTwilioSignature(token, inboundOptions.signatureUrl ?? url, full);
      }
      const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(full).toString() });
      const result: InboundResult = {
        status: res.status,
        body: await res.text(),
        contentType: res.headers.get('content-type'),
        headers: Object.fromEntries(res.headers.entries()),
        params: full,
      };
      inbound.push({ ...result, url, time: clock.now() });
      return result;
    },
    reset() {
      messages.length = 0;
      bySid.clear();
      rateLimited.length = 0;
      callbacks.length = 0;
      inbound.length = 0;
      log.clear();
      faults.reset();
      unsubscribed = new Set(options.unsubscribed ?? []);
      deliveryFailures = new Map(Object.entries(options.deliveryFailures ?? {}));
      limiter = options.messagesPerSecondPerSender ? new SlidingWindowLimiter(clock, options.messagesPerSecondPerSender) : undefined;
      callbacksEnabled = options.statusCallbacks ?? true;
      listingDelayMs = options.listingDelayMs ?? 0;
    },
    async close() {
      closed = true;
      await server.close();
    },
  };
}
