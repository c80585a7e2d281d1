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
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Db, openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import type { RetryPolicy } from '../../src/core/notify/backoff.ts';
import { ResendEmailChannel } from '../../src/core/notify/channels/email-resend.ts';
import { SlackChannel } from '../../src/core/notify/channels/slack.ts';
import { TwilioSmsChannel } from '../../src/core/notify/channels/sms-twilio.ts';
import { WebhookChannel } from '../../src/core/notify/channels/webhook.ts';
import { Dispatcher } from '../../src/core/notify/dispatcher.ts';
import type { Channel, LimitSettings } from '../../src/core/notify/types.ts';
import type { RecordedRequest } from '../fakes/common.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { tempDir } from '../helpers/server.ts';
import {
  CHANNELS,
  enqueueToAll,
  type PerChannel,
  type Population,
  type Providers,
  perChannel,
  populate,
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
  recipients: PerChannel<number>;
  /** the providers that fail, one phase each, in this order */
  order: readonly ChannelName[];
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
  /** requests that arrived before a Retry-After allowed them */
  early: number;
  /** the first few early requests, described */
  examples: string[];
}

export interface PhaseResult {
  provider: ChannelName;
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
  phases: PhaseResult[];
  fault: { outageMs: number; stormMs: number; retryAfterSeconds: number };
  retry: RetryPolicy;
  limits: PerChannel<LimitSettings>;
  seconds: number;
  violations: string[];
}

function channelsFor(db: Db, providers: Providers, limits: PerChannel<LimitSettings>): Record<ChannelName, Channel> {
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
    slack: new SlackChannel(databaseOf(db), { apiUrl: providers.slack.url, limits: limits.slack }),
    webhook: new WebhookChannel({ allowHosts: providers.allowHosts }, limits.webhook),
  };
}

/** The requests of one provider as groups sharing one sequence, each request with the limiter key it counts against. */
function keyedRequests(providers: Providers, channel: ChannelName): { request: RecordedRequest; key: string }[][] {
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

/** Every 429 against every later request to the same key: none may arrive before Retry-After allowed it. */
export function checkRetryAfter(groups: { request: RecordedRequest; key: string }[][], retryAfterSeconds: number): RetryAfterFigures {
  let limited = 0;
  let earliestMarginMs = Number.POSITIVE_INFINITY;
  let early = 0;
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
        const next = requests[i + 1];
        if (next) earliestMarginMs = Math.min(earliestMarginMs, next.time - allowedAt);
        for (const r of requests.slice(i + 1)) {
          if (r.time >= allowedAt) break;
          early += 1;
          if (examples.length < 5)
            examples.push(`${key}: request #${r.seq} came ${allowedAt - r.time} ms before the Retry-After of 429 #${q.seq}`);
        }
      }
    }
  }
  return { limited, earliestMarginMs: Number.isFinite(earliestMarginMs) ? earliestMarginMs : null, early, examples };
}

async function runPhase(
  options: OutageDrillOptions,
  db: Db,
  providers: Providers,
  population: Population,
  provider: ChannelName,
): Promise<PhaseResult> {
  providers.reset();
  for (const channel of CHANNELS) providers.latency(channel, options.latencyMs);
  const { notificationId } = enqueueToAll(db, `Outage drill (${provider})`, null);
  const dispatcher = new Dispatcher({
    database: databaseOf(db),
    channels: channelsFor(db, providers, options.limits),
    keys: TEST_KEYS,
    publicUrl: PUBLIC_URL,
    retry: options.retry,
    pollMs: options.pollMs,
  });
  const startedAt = Date.now();
  providers.outageThenStorm(provider, options.outageMs, options.stormMs, options.retryAfterSeconds);
  const faultEnd = startedAt + options.outageMs + options.stormMs;
  dispatcher.start();
  const open = db.$client.prepare(`SELECT count(*) AS n FROM deliveries WHERE notification_id = ? AND status IN ('pending', 'sending')`);
  const deadline = startedAt + options.phaseTimeoutMs;
  try {
    while ((open.get(notificationId) as { n: number }).n > 0 && Date.now() < deadline) await sleep(20);
  } finally {
    await dispatcher.stop();
  }

  const violations: string[] = [];
  const statuses = statusCounts(db, notificationId);
  for (const [status, n] of Object.entries(statuses)) {
    if (status !== 'sent')
      violations.push(
        `${provider} phase: ${n} deliveries ${status === 'pending' || status === 'sending' ? `still ${status} after ${options.phaseTimeoutMs / 1000} s` : status}`,
      );
  }
  const counts = received(providers);
  const doneAt = db.$client
    .prepare(`SELECT channel, max(sent_at) AS at FROM deliveries WHERE notification_id = ? AND status = 'sent' GROUP BY channel`)
    .all(notificationId) as { channel: ChannelName; at: number }[];
  const done = new Map(doneAt.map((r) => [r.channel, r.at]));
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
  const retryAfter = checkRetryAfter(keyedRequests(providers, provider), options.retryAfterSeconds);
  if (retryAfter.limited === 0) violations.push(`${provider} phase: the storm answered no 429, so it proved nothing`);
  if (retryAfter.early > 0)
    violations.push(`${provider} phase: ${retryAfter.early} requests before Retry-After allowed them (${retryAfter.examples.join('; ')})`);
  const firstSuccess = requests.reduce(
    (min, r) => (r.status >= 200 && r.status < 300 && r.time >= faultEnd && r.time < min ? r.time : min),
    Number.POSITIVE_INFINITY,
  );
  const lastSent = done.get(provider);
  const attempts = db.$client
    .prepare(`SELECT max(attempts) AS most, avg(attempts) AS mean FROM deliveries WHERE notification_id = ? AND channel = ?`)
    .get(notificationId, provider) as { most: number; mean: number };
  return {
    provider,
    statuses,
    answered5xx,
    retryAfter,
    firstSuccessAfterFaultMs: Number.isFinite(firstSuccess) ? firstSuccess - faultEnd : null,
    recoverMs: lastSent === undefined ? null : lastSent - faultEnd,
    maxAttempts: attempts.most,
    meanAttempts: attempts.mean,
    channels,
    violations,
  };
}

export async function runOutageDrill(options: OutageDrillOptions): Promise<OutageDrillResult> {
  const { log } = options;
  const providers = await startProviders({ recordBodies: true });
  const dir = tempDir('candor-drill-outage-');
  const db = openDatabase(join(dir, 'candor.db'));
  const started = Date.now();
  try {
    const population = populate(db, providers, options.recipients);
    const phases: PhaseResult[] = [];
    for (const provider of options.order) {
      log(
        `outage drill: ${provider} answers 503 for ${options.outageMs / 1000} s, then 429 (Retry-After ${options.retryAfterSeconds} s) for ${options.stormMs / 1000} s`,
      );
      const phase = await runPhase(options, db, providers, population, provider);
      log(
        `outage drill: ${provider} recovered ${phase.recoverMs === null ? '-' : `${(phase.recoverMs / 1000).toFixed(1)} s`} after the storm; ${phase.violations.length} broken promises`,
      );
      phases.push(phase);
    }
    return {
      phases,
      fault: { outageMs: options.outageMs, stormMs: options.stormMs, retryAfterSeconds: options.retryAfterSeconds },
      retry: options.retry,
      limits: options.limits,
      seconds: (Date.now() - started) / 1000,
      violations: phases.flatMap((p) => p.violations),
    };
  } finally {
    db.$client.close();
    await providers.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
