/**
 * A loopback fake of the parts of Slack Candor uses, for `@slack/web-api` (8.x) configured with
 * `new WebClient(token, { slackApiUrl: fake.apiUrl })`, plus incoming webhooks:
 *
 * - `POST /api/chat.postMessage` → `{ ok, channel, ts, message }`; `ts` unique and increasing
 *   (`1700000000.000100` style); `thread_ts` replies; `blocks` (JSON or the JSON string the
 *   WebClient's form encoding produces).
 *   `metadata` (`{ event_type, event_payload }`, JSON or a JSON string) is kept with the message.
 * - `POST /api/chat.update` → `{ ok, channel, ts, text, message }` or `message_not_found`.
 * - `POST /api/conversations.history` (top-level messages, newest first) and
 *   `POST /api/conversations.replies` (a thread: its root first, then replies oldest first), with
 *   `oldest`/`latest` (exclusive unless `inclusive`), `limit` and `cursor`
 *   (`response_metadata.next_cursor`, `has_more`); a message's `metadata` only with
 *   `include_all_metadata`. A message appears in them `listingDelayMs` after it was posted (Slack's
 *   listing lag). `setHistoryError` makes both answer an error (`missing_scope`, `not_in_channel`).
 * - `POST /api/oauth.v2.access` (client credentials in Basic auth or the form) for codes
 *   registered with `issueCode`, returning a bot token the fake then accepts and an
 *   `incoming_webhook.url` on this fake.
 * - `POST /api/auth.test`.
 * - `POST /services/T…/B…/…` → `ok`, 404 `no_service`, 403 `invalid_token`, 400 `no_text`…
 *
 * Like Slack, API errors are HTTP 200 with `{ ok: false, error }` (the WebClient throws a
 * `WebAPIPlatformError` with `code: 'slack_webapi_platform_error'` and `data.error`), except
 * rate limits: HTTP 429 + `Retry-After` + `{ ok: false, error: 'ratelimited' }`.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  basicCredentials,
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

export type SlackTokenError = 'invalid_auth' | 'account_inactive' | 'token_revoked' | 'not_authed';
export type SlackChannelError = 'channel_not_found' | 'not_in_channel' | 'is_archived';

export interface SlackFakeOptions {
  /** Bot/user tokens accepted. Default: any token starting with `xox`. Tokens from `oauth.v2.access` are always accepted. */
  tokens?: string[];
  /** Tokens that fail with the given error. */
  tokenErrors?: Record<string, SlackTokenError>;
  /** Channels (ID or `#name`) that fail with the given error. */
  channelErrors?: Record<string, SlackChannelError>;
  clientId?: string;
  clientSecret?: string;
  /** chat.postMessage / webhook posts per channel per sliding second → 429. Default: unlimited. */
  messagesPerSecondPerChannel?: number;
  team?: { id: string; name: string };
  clock?: Clock;
  /** Keep request bodies and message text/blocks. Default: true. */
  recordBodies?: boolean;
  /** How long after it was posted a message appears in conversations.history/replies. Default 0. */
  listingDelayMs?: number;
}

export interface SlackMetadata {
  event_type: string;
  event_payload: Record<string, unknown>;
}

export type SlackHistoryError = 'missing_scope' | 'not_in_channel' | 'channel_not_found' | 'ratelimited';

export interface SlackMessageRecord {
  /** Channel ID (a `#name` given by the caller is resolved to a stable fake ID). */
  channel: string;
  ts: string;
  /** Root `ts` when this is a reply, else undefined. */
  threadTs: string | undefined;
  /** Current text; `chat.update` changes it (history in `updates`). */
  text: string | undefined;
  blocks: unknown[] | undefined;
  /** message metadata given to chat.postMessage */
  metadata: SlackMetadata | undefined;
  replyBroadcast: boolean;
  token: string;
  edits: number;
  requestSeq: number;
  time: number;
}

export interface SlackUpdateRecord {
  channel: string;
  ts: string;
  text: string | undefined;
  blocks: unknown[] | undefined;
  requestSeq: number;
  time: number;
}

export interface SlackWebhookPostRecord {
  url: string;
  channel: string;
  text: string | undefined;
  blocks: unknown[] | undefined;
  body: unknown;
  time: number;
}

export interface SlackRateLimitedRecord {
  time: number;
  channel: string;
  retryAfterSeconds: number;
  reason: 'rate-limit' | 'storm';
}

export interface IssueCodeOptions {
  /** Default: a fresh random code. */
  code?: string;
  /** Default `chat:write,incoming-webhook`. */
  scope?: string;
  /** When set, the exchange must present the same `redirect_uri` (else `bad_redirect_uri`). */
  redirectUri?: string;
  /** Channel chosen for the incoming webhook. Default `#incidents`. */
  channel?: string;
  team?: { id: string; name: string };
}

export interface SlackFake extends FaultControls {
  url: string;
  /** `url + '/api/'`, for `slackApiUrl`. */
  apiUrl: string;
  clock: Clock;
  clientId: string;
  clientSecret: string;
  /** A token the fake accepts. */
  botToken: string;
  team: { id: string; name: string };
  botUserId: string;
  appId: string;
  messages: SlackMessageRecord[];
  updates: SlackUpdateRecord[];
  webhookPosts: SlackWebhookPostRecord[];
  requests: RecordedRequest[];
  rateLimited: SlackRateLimitedRecord[];
  /** Channel ID for an ID or `#name`. */
  channelId(channel: string): string;
  /** Threads in a channel: each root with its replies, in order. */
  threads(channel: string): { root: SlackMessageRecord; replies: SlackMessageRecord[] }[];
  /** Current state of one message. */
  message(channel: string, ts: string): SlackMessageRecord | undefined;
  /** Registers an OAuth code for `oauth.v2.access`; returns it. */
  issueCode(options?: IssueCodeOptions): string;
  /** Registers an incoming webhook for `channel`; returns its URL on this fake. */
  registerIncomingWebhook(channel: string): string;
  revokeIncomingWebhook(url: string): void;
  setTokenError(token: string, error: SlackTokenError | undefined): void;
  setChannelError(channel: string, error: SlackChannelError | undefined): void;
  rateLimitStorm(ms: number, retryAfterSeconds: number): void;
  setMessagesPerSecondPerChannel(limit: number | undefined): void;
  /** How long after it was posted a message appears in listings. */
  setListingDelay(ms: number): void;
  /** conversations.history/replies answer this error (rate limits as HTTP 429), until cleared. */
  setHistoryError(error: SlackHistoryError | undefined): void;
  reset(): void;
  close(): Promise<void>;
}

interface Webhook {
  channel: string;
  revoked: boolean;
}

function randomId(prefix: string, length = 10): string {
  return prefix + randomBytes(length).toString('hex').toUpperCase().slice(0, length);
}

/** Decodes a WebClient body: form-encoded with JSON-stringified objects, or a JSON body. */
function parseArgs(request: IncomingFakeRequest): Record<string, unknown> | undefined {
  const type = headerValue(request.headers, 'content-type') ?? '';
  if (type.includes('application/json')) {
    const parsed = parseJson(request.rawBody);
    return isRecord(parsed) ? parsed : undefined;
  }
  const args: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(request.rawBody)) args[key] = value;
  return args;
}

/** `blocks` may arrive as an array (JSON body) or a JSON string (form body); `false` marks invalid. */
function parseBlocks(value: unknown): unknown[] | undefined | false {
  if (value === undefined || value === null || value === '') return undefined;
  const parsed = typeof value === 'string' ? parseJson(value) : value;
  if (!Array.isArray(parsed) || parsed.some((b) => !isRecord(b) || typeof b.type !== 'string')) return false;
  return parsed;
}

/** `metadata` as an object or a JSON string; `false` marks invalid (Slack's `invalid_metadata_format`). */
function parseMetadata(value: unknown): SlackMetadata | undefined | false {
  if (value === undefined || value === null || value === '') return undefined;
  const parsed = typeof value === 'string' ? parseJson(value) : value;
  if (!isRecord(parsed) || typeof parsed.event_type !== 'string' || !isRecord(parsed.event_payload)) return false;
  return { event_type: parsed.event_type, event_payload: parsed.event_payload };
}

const truthy = (value: unknown) => value === true || value === 'true' || value === '1' || value === 1;

function optionalString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

export async function startFakeSlack(options: SlackFakeOptions = {}): Promise<SlackFake> {
  const clock = options.clock ?? systemClock;
  const recordBodies = options.recordBodies ?? true;
  const log = new RequestLog(clock, recordBodies);
  const faults = new Faults(clock);
  const team = options.team ?? { id: 'T0FAKE0001', name: 'Candor Test' };
  const clientId = options.clientId ?? '1111111111.2222222222';
  const clientSecret = options.clientSecret ?? 'fake-client-secret';
  const botUserId = 'U0FAKEBOT1';
  const botId = 'B0FAKEBOT1';
  const appId = 'A0FAKEAPP1';
  const botToken = options.tokens?.[0] ?? `xoxb-${randomBytes(6).toString('hex')}-fake`;

  const configuredTokens = options.tokens ? new Set(options.tokens) : undefined;
  const issuedTokens = new Set<string>();
  let tokenErrors = new Map(Object.entries(options.tokenErrors ?? {}));
  let channelErrors = new Map<string, SlackChannelError>();
  let listingDelayMs = options.listingDelayMs ?? 0;
  let historyError: SlackHistoryError | undefined;
  let limiter = options.messagesPerSecondPerChannel ? new SlidingWindowLimiter(clock, options.messagesPerSecondPerChannel) : undefined;

  const messages: SlackMessageRecord[] = [];
  const byKey = new Map<string, SlackMessageRecord>();
  const updates: SlackUpdateRecord[] = [];
  const webhookPosts: SlackWebhookPostRecord[] = [];
  const rateLimited: SlackRateLimitedRecord[] = [];
  const codes = new Map<string, Required<Omit<IssueCodeOptions, 'redirectUri'>> & { redirectUri: string | undefined }>();
  const webhooks = new Map<string, Webhook>();
  let lastMicros = 0;

  const channelId = (channel: string): string => {
    if (!channel.startsWith('#')) return channel;
    // Stable per name, so tests can predict the ID a `#name` resolves to.
    return `C${createHash('sha256').update(channel.slice(1)).digest('hex').slice(0, 10).toUpperCase()}`;
  };
  const setChannelErrors = (entries: Record<string, SlackChannelError>) => {
    channelErrors = new Map(Object.entries(entries).map(([c, e]) => [channelId(c), e]));
  };
  setChannelErrors(options.channelErrors ?? {});

  /** Slack's `ts`: seconds.microseconds, unique and strictly increasing within the fake. */
  function nextTs(): string {
    const micros = Math.max(clock.now() * 1000, lastMicros + 100);
    lastMicros = micros;
    const seconds = Math.floor(micros / 1e6);
    return `${seconds}.${String(micros % 1e6).padStart(6, '0')}`;
  }

  const platformError = (error: string, extra: Record<string, unknown> = {}): FakeResponse =>
    reply(200, { ok: false, error, ...extra, response_metadata: {} }, error);

  function rateLimit(channel: string, retryAfterSeconds: number, reason: SlackRateLimitedRecord['reason'], webhook: boolean): FakeResponse {
    rateLimited.push({ time: clock.now(), channel, retryAfterSeconds, reason });
    return reply(429, webhook ? 'rate_limited' : { ok: false, error: 'ratelimited' }, 'ratelimited', {
      'retry-after': String(retryAfterSeconds),
    });
  }

  function authorise(request: IncomingFakeRequest, args: Record<string, unknown>): { token: string } | FakeResponse {
    const token = bearerToken(request.headers) ?? optionalString(args.token);
    if (!token) return platformError('not_authed');
    const configured = tokenErrors.get(token);
    if (configured) return platformError(configured);
    const known = issuedTokens.has(token) || (configuredTokens ? configuredTokens.has(token) : token.startsWith('xox'));
    if (!known) return platformError('invalid_auth');
    return { token };
  }

  function messageObject(m: SlackMessageRecord, withMetadata = true): Record<string, unknown> {
    return {
      user: botUserId,
      type: 'message',
      ts: m.ts,
      bot_id: botId,
      app_id: appId,
      text: m.text ?? '',
      team: team.id,
      ...(m.blocks ? { blocks: m.blocks } : {}),
      ...(m.threadTs ? { thread_ts: m.threadTs, parent_user_id: botUserId } : {}),
      ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
    };
  }

  function postMessage(request: IncomingFakeRequest, args: Record<string, unknown>, token: string): FakeResponse {
    const given = optionalString(args.channel);
    if (!given) return platformError('channel_not_found');
    const channel = channelId(given);
    const channelError = channelErrors.get(channel);
    if (channelError) return platformError(channelError);
    const blocks = parseBlocks(args.blocks);
    if (blocks === false) return platformError('invalid_blocks');
    const text = optionalString(args.text);
    if (!text && !blocks && !args.attachments) return platformError('no_text');
    if (text && text.length > 40_000) return platformError('msg_too_long');
    const threadTs = optionalString(args.thread_ts);
    if (threadTs !== undefined && !/^\d+\.\d+$/.test(threadTs)) return platformError('invalid_thread_ts');
    const metadata = parseMetadata(args.metadata);
    if (metadata === false) return platformError('invalid_metadata_format');
    if (limiter) {
      const state = limiter.hit(channel);
      if (!state.allowed) return rateLimit(channel, state.retryAfterSeconds, 'rate-limit', false);
    }
    // A reply to a reply lands in the root's thread, as in Slack.
    const parent = threadTs ? byKey.get(`${channel}\n${threadTs}`) : undefined;
    const record: SlackMessageRecord = {
      channel,
      ts: nextTs(),
      threadTs: threadTs ? (parent?.threadTs ?? threadTs) : undefined,
      text: recordBodies ? text : undefined,
      blocks: recordBodies ? blocks : undefined,
      metadata,
      replyBroadcast: args.reply_broadcast === true || args.reply_broadcast === 'true',
      token,
      edits: 0,
      requestSeq: request.record.seq,
      time: request.record.time,
    };
    messages.push(record);
    byKey.set(`${channel}\n${record.ts}`, record);
    return reply(200, { ok: true, channel, ts: record.ts, message: messageObject(record), response_metadata: {} }, 'ok');
  }

  function update(request: IncomingFakeRequest, args: Record<string, unknown>): FakeResponse {
    const given = optionalString(args.channel);
    if (!given) return platformError('channel_not_found');
    const channel = channelId(given);
    const channelError = channelErrors.get(channel);
    if (channelError) return platformError(channelError);
    const ts = optionalString(args.ts);
    const blocks = parseBlocks(args.blocks);
    if (blocks === false) return platformError('invalid_blocks');
    const text = optionalString(args.text);
    if (!ts) return platformError('message_not_found');
    const record = byKey.get(`${channel}\n${ts}`);
    if (!record) return platformError('message_not_found');
    if (text === undefined && blocks === undefined && !args.attachments) return platformError('no_text');
    if (recordBodies) {
      if (text !== undefined) record.text = text;
      if (blocks !== undefined) record.blocks = blocks;
    }
    record.edits += 1;
    updates.push({
      channel,
      ts,
      text: recordBodies ? text : undefined,
      blocks: recordBodies ? blocks : undefined,
      requestSeq: request.record.seq,
      time: request.record.time,
    });
    return reply(200, { ok: true, channel, ts, text: record.text ?? '', message: messageObject(record), response_metadata: {} }, 'ok');
  }

  /** The messages of one listing page: `oldest`/`latest` (exclusive unless `inclusive`), `limit`, `cursor` (an offset). */
  function listing(args: Record<string, unknown>, candidates: SlackMessageRecord[], fixedFirst?: SlackMessageRecord): FakeResponse {
    const inclusive = truthy(args.inclusive);
    const oldest = Number(optionalString(args.oldest) ?? '0');
    const latestGiven = optionalString(args.latest);
    const latest = latestGiven === undefined ? Number.POSITIVE_INFINITY : Number(latestGiven);
    if (Number.isNaN(oldest) || Number.isNaN(latest)) return platformError('invalid_ts_oldest');
    const limit = Math.min(999, Math.max(1, Number(optionalString(args.limit) ?? '100') || 100));
    const cursor = optionalString(args.cursor);
    const offset = cursor
      ? Number(
          Buffer.from(cursor, 'base64url')
            .toString()
            .replace(/^offset:/, ''),
        )
      : 0;
    if (!Number.isInteger(offset) || offset < 0) return platformError('invalid_cursor');
    const visible = (m: SlackMessageRecord) => clock.now() >= m.time + listingDelayMs;
    const inRange = (m: SlackMessageRecord) => {
      const ts = Number(m.ts);
      return (inclusive ? ts >= oldest : ts > oldest) && (inclusive ? ts <= latest : ts < latest);
    };
    const all = [...(fixedFirst && visible(fixedFirst) ? [fixedFirst] : []), ...candidates.filter((m) => visible(m) && inRange(m))];
    const page = all.slice(offset, offset + limit);
    const more = offset + limit < all.length;
    const withMetadata = truthy(args.include_all_metadata);
    return reply(
      200,
      {
        ok: true,
        messages: page.map((m) => messageObject(m, withMetadata)),
        has_more: more,
        response_metadata: { next_cursor: more ? Buffer.from(`offset:${offset + limit}`).toString('base64url') : '' },
      },
      'ok',
    );
  }

  function listingRefusal(args: Record<string, unknown>): { channel: string } | FakeResponse {
    if (historyError === 'ratelimited') return rateLimit('*', 60, 'rate-limit', false);
    if (historyError) return platformError(historyError);
    const given = optionalString(args.channel);
    if (!given) return platformError('channel_not_found');
    const channel = channelId(given);
    const channelError = channelErrors.get(channel);
    if (channelError) return platformError(channelError);
    return { channel };
  }

  function history(args: Record<string, unknown>): FakeResponse {
    const refused = listingRefusal(args);
    if (!('channel' in refused)) return refused;
    const top = messages.filter((m) => m.channel === refused.channel && (m.threadTs === undefined || m.replyBroadcast));
    return listing(args, top.reverse());
  }

  function replies(args: Record<string, unknown>): FakeResponse {
    const refused = listingRefusal(args);
    if (!('channel' in refused)) return refused;
    const ts = optionalString(args.ts);
    const parent = ts ? byKey.get(`${refused.channel}\n${ts}`) : undefined;
    if (!parent) return platformError('thread_not_found');
    const root = parent.threadTs ? byKey.get(`${refused.channel}\n${parent.threadTs}`) : parent;
    if (!root) return platformError('thread_not_found');
    // the root comes first on the first page, whatever oldest/latest say
    const inThread = messages.filter((m) => m.channel === refused.channel && m.threadTs === root.ts);
    return listing(args, inThread, root);
  }

  function oauthAccess(request: IncomingFakeRequest, args: Record<string, unknown>): FakeResponse {
    const basic = basicCredentials(request.headers);
    const id = basic?.user ?? optionalString(args.client_id);
    const secret = basic?.password ?? optionalString(args.client_secret);
    if (!id || id !== clientId) return platformError('invalid_client_id');
    if (secret !== clientSecret) return platformError('bad_client_secret');
    const code = optionalString(args.code);
    const issued = code ? codes.get(code) : undefined;
    if (!code || !issued) return platformError('invalid_code');
    if (issued.redirectUri !== undefined && optionalString(args.redirect_uri) !== issued.redirectUri)
      return platformError('bad_redirect_uri');
    // Codes are single use, as in Slack.
    codes.delete(code);
    const accessToken = `xoxb-${randomBytes(6).toString('hex')}-${randomBytes(12).toString('hex')}`;
    issuedTokens.add(accessToken);
    const webhookUrl = registerIncomingWebhook(issued.channel, issued.team.id);
    return reply(
      200,
      {
        ok: true,
        app_id: appId,
        authed_user: { id: 'U0FAKEUSER' },
        scope: issued.scope,
        token_type: 'bot',
        access_token: accessToken,
        bot_user_id: botUserId,
        team: issued.team,
        enterprise: null,
        is_enterprise_install: false,
        incoming_webhook: {
          channel: issued.channel,
          channel_id: channelId(issued.channel),
          configuration_url: `https://${issued.team.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.slack.com/services/${botId}`,
          url: webhookUrl,
        },
        response_metadata: {},
      },
      'ok',
    );
  }

  function registerIncomingWebhook(channel: string, teamId: string = team.id): string {
    const path = `/services/${teamId}/${randomId('B')}/${randomBytes(12).toString('base64url')}`;
    webhooks.set(path, { channel: channelId(channel), revoked: false });
    return `${server.url}${path}`;
  }

  function incomingWebhook(request: IncomingFakeRequest): FakeResponse {
    const hook = webhooks.get(request.path);
    if (!hook) return reply(404, 'no_service', 'no_service');
    if (hook.revoked) return reply(403, 'invalid_token', 'invalid_token');
    const channelError = channelErrors.get(hook.channel);
    if (channelError === 'is_archived') return reply(410, 'channel_is_archived', 'channel_is_archived');
    if (channelError) return reply(404, 'channel_not_found', 'channel_not_found');
    const type = headerValue(request.headers, 'content-type') ?? '';
    const raw = type.includes('application/x-www-form-urlencoded')
      ? (new URLSearchParams(request.rawBody).get('payload') ?? '')
      : request.rawBody;
    const body = parseJson(raw);
    if (!isRecord(body)) return reply(400, 'invalid_payload', 'invalid_payload');
    const blocks = parseBlocks(body.blocks);
    if (blocks === false) return reply(400, 'invalid_blocks', 'invalid_blocks');
    const text = optionalString(body.text);
    if (!text && !blocks && !body.attachments) return reply(400, 'no_text', 'no_text');
    if (limiter) {
      const state = limiter.hit(hook.channel);
      if (!state.allowed) return rateLimit(hook.channel, state.retryAfterSeconds, 'rate-limit', true);
    }
    webhookPosts.push({
      url: `${server.url}${request.path}`,
      channel: hook.channel,
      text: recordBodies ? text : undefined,
      blocks: recordBodies ? blocks : undefined,
      body: recordBodies ? body : undefined,
      time: request.record.time,
    });
    return reply(200, 'ok', 'ok');
  }

  async function handle(request: IncomingFakeRequest): Promise<FakeResponse> {
    const fault = faults.take();
    if (fault?.kind === 'rate-limit-storm') {
      return rateLimit('*', fault.retryAfterSeconds, 'storm', request.path.startsWith('/services/'));
    }
    if (fault?.kind === 'fail') return reply(fault.status, { ok: false, error: 'internal_error' }, `fault:${fault.reason}`);
    if (request.method !== 'POST') return reply(405, 'method_not_allowed', 'method_not_allowed');

    let response: FakeResponse;
    if (request.path.startsWith('/services/')) response = incomingWebhook(request);
    else {
      const method = /^\/api\/([A-Za-z0-9_.]+)$/.exec(request.path)?.[1];
      const args = parseArgs(request);
      if (!args) return platformError('invalid_json');
      if (method === 'oauth.v2.access') response = oauthAccess(request, args);
      else if (
        method === 'chat.postMessage' ||
        method === 'chat.update' ||
        method === 'auth.test' ||
        method === 'conversations.history' ||
        method === 'conversations.replies'
      ) {
        const auth = authorise(request, args);
        if (!('token' in auth)) return auth;
        if (method === 'chat.postMessage') response = postMessage(request, args, auth.token);
        else if (method === 'chat.update') response = update(request, args);
        else if (method === 'conversations.history') response = history(args);
        else if (method === 'conversations.replies') response = replies(args);
        else {
          response = reply(
            200,
            {
              ok: true,
              url: `https://${team.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.slack.com/`,
              team: team.name,
              user: 'candor',
              team_id: team.id,
              user_id: botUserId,
              bot_id: botId,
              is_enterprise_install: false,
              response_metadata: {},
            },
            'ok',
          );
        }
      } else response = platformError('unknown_method');
    }
    if (faults.takeLostResponse()) return { kind: 'drop', outcome: 'fault:lost-response' };
    return response;
  }

  const server = await startLoopbackServer(handle, log, () => faults.latencyMs);

  return {
    url: server.url,
    apiUrl: `${server.url}/api/`,
    clock,
    clientId,
    clientSecret,
    botToken,
    team,
    botUserId,
    appId,
    messages,
    updates,
    webhookPosts,
    requests: log.entries,
    rateLimited,
    ...faultControls(faults),
    channelId,
    threads(channel) {
      const id = channelId(channel);
      const inChannel = messages.filter((m) => m.channel === id);
      return inChannel
        .filter((m) => m.threadTs === undefined)
        .map((root) => ({ root, replies: inChannel.filter((m) => m.threadTs === root.ts) }));
    },
    message: (channel, ts) => byKey.get(`${channelId(channel)}\n${ts}`),
    issueCode(issue = {}) {
      const code = issue.code ?? `${randomBytes(4).toString('hex')}.${randomBytes(8).toString('hex')}`;
      codes.set(code, {
        code,
        scope: issue.scope ?? 'chat:write,incoming-webhook',
        redirectUri: issue.redirectUri,
        channel: issue.channel ?? '#incidents',
        team: issue.team ?? team,
      });
      return code;
    },
    registerIncomingWebhook: (channel) => registerIncomingWebhook(channel),
    revokeIncomingWebhook(url) {
      const hook = webhooks.get(new URL(url).pathname);
      if (hook) hook.revoked = true;
    },
    setTokenError(token, error) {
      if (error) tokenErrors.set(token, error);
      else tokenErrors.delete(token);
    },
    setChannelError(channel, error) {
      if (error) channelErrors.set(channelId(channel), error);
      else channelErrors.delete(channelId(channel));
    },
    rateLimitStorm: (ms, retryAfterSeconds) => faults.rateLimitStorm(ms, retryAfterSeconds),
    setMessagesPerSecondPerChannel(limit) {
      limiter = limit ? new SlidingWindowLimiter(clock, limit) : undefined;
    },
    setListingDelay(ms) {
      listingDelayMs = ms;
    },
    setHistoryError(error) {
      historyError = error;
    },
    reset() {
      messages.length = 0;
      byKey.clear();
      updates.length = 0;
      webhookPosts.length = 0;
      rateLimited.length = 0;
      codes.clear();
      webhooks.clear();
      issuedTokens.clear();
      log.clear();
      faults.reset();
      tokenErrors = new Map(Object.entries(options.tokenErrors ?? {}));
      listingDelayMs = options.listingDelayMs ?? 0;
      historyError = undefined;
      setChannelErrors(options.channelErrors ?? {});
      limiter = options.messagesPerSecondPerChannel ? new SlidingWindowLimiter(clock, options.messagesPerSecondPerChannel) : undefined;
    },
    close: () => server.close(),
  };
}
