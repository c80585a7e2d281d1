/**
 * The outage drill: each provider in turn answers 5xx for a while, then 429 with Retry-After
 * (a storm), while a notification fans out to all four channels through the real SDKs. After
 * recovery everything must be delivered, once, and no request may reach a provider before the
 * Retry-After of a 429 it answered allowed.
 *
 * The dispatcher runs in this process (the crash drill covers the server process), so the retry
 * policy can be the production one for the full drill and a compressed one for CI. Each channel
 * sends one request at a time here: every request that follows a 429 was then decided after the
 * 429 arrived, so "no request before Retry-After" can be checked exactly, request by request,
 * per limiter key (Resend: the account; Twilio: the sender; Slack: the channel; webhooks: the host).
 *
 * On PostgreSQL two dispatchers share the database, each with its own connections and limiters, as
 * two nodes would: a 429 one of them records holds back the other's next request. What the other had
 * already decided when the 429 was recorded still goes out (src/core/notify/limiter.ts): at most its
 * concurrency, one request, per 429; the drill allows exactly that many and no more.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { and, avg, eq, max } from 'drizzle-orm';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import type { RetryPolicy } from '../../src/core/notify/backoff.ts';
import { DiscordChannel } from '../../src/core/notify/channels/discord.ts';
import { ResendEmailChannel } from '../../src/core/notify/channels/email-resend.ts';
import { SlackChannel } from '../../src/core/notify/channels/slack.ts';
import { TwilioSmsChannel } from '../../src/core/notify/channels/sms-twilio.ts';
import { TeamsChannel } from '../../src/core/notify/channels/teams.ts';
import { WebhookChannel } from '../../src/core/notify/channels/webhook.ts';
import { Dispatcher } from '../../src/core/notify/dispatcher.ts';
import type { Channel, LimitSettings } from '../../src/core/notify/types.ts';
import type { RecordedRequest } from '../fakes/common.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import {
  CHANNELS,
  type DrillChannel,
  type DrillDatabase,
  type DrillEngine,
  enqueueToAll,
  openDeliveries,
  openDrillDatabase,
  type PerChannel,
  type Population,
  type Providers,
  perChannel,
  populate,
  readDrill,
  received,
  SENDER,
  startProviders,
  statusCounts,
  tallyChannel,
  unverifiedWebhooks,
  webhookIdChanges,
} from './world.ts';

const PUBLIC_URL = new URL('https://trust.candor.test/');

export interface OutageDrillOptions {
  engine: DrillEngine;
  /** dispatchers sharing the database, each with its own connections; SQLite has one */
  dispatchers: number;
  recipients: PerChannel<number>;
  /** the providers that fail, one phase each, in this order */
  order: readonly DrillChannel[];
  outageMs: number;
  stormMs: number;
  retryAfterSeconds: number;
  retry: RetryPolicy;
  /** concurrency 1 each: see the file's comment */
  limits: PerChannel<LimitSettings>;
  latencyMs: number;
  pollMs: number;
  phaseTimeoutMs: number;
  log: (line: string) => void;
}

export interface RetryAfterFigures {
  /** 429s answered */
  limited: number;
  /** per 429: the next request to the same key, minus the time Retry-After allowed it; the smallest */
  earliestMarginMs: number | null;
  /**
   * requests another dispatcher had decided before the 429 was recorded, which arrived before its
   * Retry-After: allowed up to that dispatcher's concurrency per 429 (none with one dispatcher)
   */
  raced: number;
  /** requests that arrived before a Retry-After allowed them, beyond those */
  early: number;
  /** the first few early requests, described */
  examples: string[];
}

export interface PhaseResult {
  provider: DrillChannel;
  statuses: Record<string, number>;
  answered5xx: number;
  retryAfter: RetryAfterFigures;
  /** from the end of the storm to the failing provider's first accepted request */
  firstSuccessAfterFaultMs: number | null;
  /** from the end of the storm to its last delivery recorded sent: the time to recover */
  recoverMs: number | null;
  /** attempts the failing provider's deliveries needed: most, and mean */
  maxAttempts: number;
  meanAttempts: number;
  /** per channel: recipients, received at least once, messages, duplicates, missing; ms from the phase's start to its last delivery sent */
  channels: PerChannel<{
    recipients: number;
    delivered: number;
    messages: number;
    duplicates: number;
    missing: number;
    doneMs: number | null;
  }>;
  violations: string[];
}

export interface OutageDrillResult {
  engine: DrillEngine;
  dispatchers: number;
  phases: PhaseResult[];
  fault: { outageMs: number; stormMs: number; retryAfterSeconds: number };
  retry: RetryPolicy;
  limits: PerChannel<LimitSettings>;
  seconds: number;
  violations: string[];
}

function channelsFor(database: Database, providers: Providers, limits: PerChannel<LimitSettings>): Record<ChannelName, Channel> {
  return {
    email: new ResendEmailChannel({
      apiKey: providers.resend.apiKey,
      from: 'Candor Status <status@candor.test>',
      baseUrl: providers.resend.url,
      limits: limits.email,
    }),
    sms: new TwilioSmsChannel({
      accountSid: providers.twilio.accountSid,
      authToken: providers.twilio.authToken,
      from: SENDER,
      apiBaseUrl: providers.twilio.url,
      statusCallbackUrl: new URL('webhooks/twilio/status', PUBLIC_URL).href,
      limits: limits.sms,
    }),
    slack: new SlackChannel(database, { apiUrl: providers.slack.url, limits: limits.slack }),
    webhook: new WebhookChannel({ allowHosts: providers.allowHosts }, limits.webhook),
    // no drill recipient is on these: they post like Slack's incoming webhooks
    teams: new TeamsChannel([]),
    discord: new DiscordChannel([]),
  };
}

/** The requests of one provider as groups sharing one sequence, each request with the limiter key it counts against. */
function keyedRequests(providers: Providers, channel: DrillChannel): { request: RecordedRequest; key: string }[][] {
  switch (channel) {
    case 'email':
      return [providers.resend.requests.map((request) => ({ request, key: 'account' }))];
    case 'sms':
      return [providers.twilio.requests.map((request) => ({ request, key: SENDER }))];
    case 'slack':
      return [providers.slack.requests.map((request) => ({ request, key: slackChannelOf(request) }))];
    case 'webhook':
      return providers.receivers.map(({ receiver }) => receiver.requests.map((request) => ({ request, key: receiver.url })));
  }
}

/** The WebClient posts form-encoded arguments; JSON is accepted too. */
function slackChannelOf(request: RecordedRequest): string {
  const body = request.body ?? '';
  if (body.startsWith('{')) {
    const parsed = JSON.parse(body) as { channel?: unknown };
    return String(parsed.channel ?? '?');
  }
  return new URLSearchParams(body).get('channel') ?? '?';
}

/**
 * Every 429 against every later request to the same key: none may arrive before Retry-After allowed it,
 * but for `racing` per 429 (what other dispatchers had decided before it was recorded).
 */
export function checkRetryAfter(
  groups: { request: RecordedRequest; key: string }[][],
  retryAfterSeconds: number,
  racing = 0,
): RetryAfterFigures {
  let limited = 0;
  let earliestMarginMs = Number.POSITIVE_INFINITY;
  let early = 0;
  let raced = 0;
  const examples: string[] = [];
  for (const group of groups) {
    const byKey = new Map<string, RecordedRequest[]>();
    for (const { request, key } of group) {
      const list = byKey.get(key);
      if (list) list.push(request);
      else byKey.set(key, [request]);
    }
    for (const [key, requests] of byKey) {
      for (let i = 0; i < requests.length; i++) {
        const q = requests[i];
        if (q?.status !== 429) continue;
        limited += 1;
        const allowedAt = (q.respondedAt ?? q.time) + retryAfterSeconds * 1000;
        let allowed = racing;
        for (const r of requests.slice(i + 1)) {
          if (r.time >= allowedAt) {
            earliestMarginMs = Math.min(earliestMarginMs, r.time - allowedAt);
            break;
          }
          if (allowed > 0) {
            allowed -= 1;
            raced += 1;
            continue;
          }
          earliestMarginMs = Math.min(earliestMarginMs, r.time - allowedAt);
          early += 1;
          if (examples.length < 5)
            examples.push(`${key}: request #${r.seq} came ${allowedAt - r.time} ms before the Retry-After of 429 #${q.seq}`);
        }
      }
    }
  }
  return { limited, earliestMarginMs: Number.isFinite(earliestMarginMs) ? earliestMarginMs : null, raced, early, examples };
}

async function runPhase(
  options: OutageDrillOptions,
  drill: DrillDatabase,
  handles: Database[],
  providers: Providers,
  population: Population,
  provider: DrillChannel,
): Promise<PhaseResult> {
  providers.reset();
  for (const channel of CHANNELS) providers.latency(channel, options.latencyMs);
  const { database } = drill;
  const { notificationId } = await enqueueToAll(database, `Outage drill (${provider})`, null);
  // Each dispatcher on its own handle, with its own channels and limiters: what it shares with the others is the database.
  const dispatchers = handles.map(
    (handle) =>
      new Dispatcher({
        database: handle,
        channels: channelsFor(handle, providers, options.limits),
        keys: TEST_KEYS,
        publicUrl: PUBLIC_URL,
        retry: options.retry,
        pollMs: options.pollMs,
      }),
  );
  const startedAt = Date.now();
  const deadline = startedAt + options.phaseTimeoutMs;
  // Down from the start, and the outage's time counted from the provider's first request: how soon that
  // comes (fresh connections, two dispatchers sharing a loaded machine) must not decide whether it is hit.
  providers.outageThenStorm(provider, options.phaseTimeoutMs, 0, options.retryAfterSeconds);
  for (const d of dispatchers) d.start();
  let faultEnd = Number.POSITIVE_INFINITY;
  try {
    while (providers.requests(provider).length === 0 && Date.now() < deadline) await sleep(5);
    providers.outageThenStorm(provider, options.outageMs, options.stormMs, options.retryAfterSeconds);
    faultEnd = Date.now() + options.outageMs + options.stormMs;
    while ((await openDeliveries(database, notificationId)) > 0 && Date.now() < deadline) await sleep(20);
  } finally {
    await Promise.all(dispatchers.map((d) => d.stop()));
  }

  const violations: string[] = [];
  const statuses = await statusCounts(database, notificationId);
  for (const [status, n] of Object.entries(statuses)) {
    if (status !== 'sent')
      violations.push(
        `${provider} phase: ${n} deliveries ${status === 'pending' || status === 'sending' ? `still ${status} after ${options.phaseTimeoutMs / 1000} s` : status}`,
      );
  }
  const counts = received(providers);
  const doneAt = await readDrill(database, (q) => {
    const d = q.t.deliveries;
    return q.db
      .select({ channel: d.channel, at: max(d.sentAt) })
      .from(d)
      .where(and(eq(d.notificationId, notificationId), eq(d.status, 'sent')))
      .groupBy(d.channel);
  });
  const done = new Map(doneAt.flatMap((r) => (r.at ? [[r.channel, r.at.getTime()] as const] : [])));
  const channels = perChannel((channel) => {
    const tally = tallyChannel(population.addresses[channel], counts[channel]);
    if (tally.missing.length > 0) violations.push(`${provider} phase: ${channel}: ${tally.missing.length} recipients received nothing`);
    if (tally.duplicates > 0) violations.push(`${provider} phase: ${channel}: ${tally.duplicates} duplicate messages`);
    const at = done.get(channel);
    return {
      recipients: tally.recipients,
      delivered: tally.delivered,
      messages: tally.messages,
      duplicates: tally.duplicates,
      missing: tally.missing.length,
      doneMs: at === undefined ? null : at - startedAt,
    };
  });
  const unverified = unverifiedWebhooks(providers);
  if (unverified > 0) violations.push(`${provider} phase: ${unverified} webhook requests did not verify`);
  const changedIds = webhookIdChanges(providers);
  if (changedIds > 0) violations.push(`${provider} phase: ${changedIds} webhook endpoints saw one delivery under different webhook-ids`);

  const requests = providers.requests(provider);
  const answered5xx = requests.filter((r) => r.status >= 500).length;
  if (answered5xx === 0) violations.push(`${provider} phase: the outage answered no 5xx, so it proved nothing`);
  // With several dispatchers, each of the others may have one request decided (concurrency 1) when a 429 is recorded.
  const racing = (options.dispatchers - 1) * options.limits[provider].concurrency;
  const retryAfter = checkRetryAfter(keyedRequests(providers, provider), options.retryAfterSeconds, racing);
  if (retryAfter.limited === 0) violations.push(`${provider} phase: the storm answered no 429, so it proved nothing`);
  if (retryAfter.early > 0)
    violations.push(`${provider} phase: ${retryAfter.early} requests before Retry-After allowed them (${retryAfter.examples.join('; ')})`);
  const firstSuccess = requests.reduce(
    (min, r) => (r.status >= 200 && r.status < 300 && r.time >= faultEnd && r.time < min ? r.time : min),
    Number.POSITIVE_INFINITY,
  );
  const lastSent = done.get(provider);
  const [attempts] = await readDrill(database, (q) => {
    const d = q.t.deliveries;
    return q.db
      .select({ most: max(d.attempts), mean: avg(d.attempts) })
      .from(d)
      .where(and(eq(d.notificationId, notificationId), eq(d.channel, provider)));
  });
  return {
    provider,
    statuses,
    answered5xx,
    retryAfter,
    firstSuccessAfterFaultMs: Number.isFinite(firstSuccess) ? firstSuccess - faultEnd : null,
    recoverMs: lastSent === undefined ? null : lastSent - faultEnd,
    maxAttempts: attempts?.most ?? 0,
    meanAttempts: Number(attempts?.mean ?? 0),
    channels,
    violations,
  };
}

export async function runOutageDrill(options: OutageDrillOptions): Promise<OutageDrillResult> {
  const { log } = options;
  if (options.engine === 'sqlite' && options.dispatchers !== 1) throw new Error('on SQLite the outage drill runs one dispatcher');
  const providers = await startProviders({ recordBodies: true });
  const drill = await openDrillDatabase(options.engine, 'candor-drill-outage-');
  // On SQLite the one dispatcher writes through the drill's handle; on PostgreSQL each has a pool of its own.
  const handles = options.engine === 'sqlite' ? [drill.database] : Array.from({ length: options.dispatchers }, () => drill.another());
  const started = Date.now();
  try {
    const population = await populate(drill.database, providers, options.recipients);
    // Connected before the first phase: a pool's first connections (PostgreSQL) must not eat into the first outage.
    for (const handle of handles) await (handle.engine === 'sqlite' ? handle.read(async () => 0) : handle.read(async () => 0));
    const phases: PhaseResult[] = [];
    for (const provider of options.order) {
      log(
        `outage drill: ${provider} answers 503 for ${options.outageMs / 1000} s, then 429 (Retry-After ${options.retryAfterSeconds} s) for ${options.stormMs / 1000} s`,
      );
      const phase = await runPhase(options, drill, handles, providers, population, provider);
      log(
        `outage drill: ${provider} recovered ${phase.recoverMs === null ? '-' : `${(phase.recoverMs / 1000).toFixed(1)} s`} after the storm; ${phase.violations.length} broken promises`,
      );
      phases.push(phase);
    }
    return {
      engine: options.engine,
      dispatchers: options.dispatchers,
      phases,
      fault: { outageMs: options.outageMs, stormMs: options.stormMs, retryAfterSeconds: options.retryAfterSeconds },
      retry: options.retry,
      limits: options.limits,
      seconds: (Date.now() - started) / 1000,
      violations: phases.flatMap((p) => p.violations),
    };
  } finally {
    await drill.close();
    await providers.close();
  }
}
