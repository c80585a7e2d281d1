/**
 * What both drills stand on: the four provider fakes on loopback, recipients for each channel
 * written straight into the database, one notification to all of them, and the count of what
 * each recipient actually received, read from the fakes (the providers' side of the story, not
 * Candor's own records).
 */
import { randomBytes } from 'node:crypto';
import type { Db } from '../../db/client.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import type { NotificationContent } from '../../src/core/notify/types.ts';
import type { RecordedRequest } from '../fakes/common.ts';
import { type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { type SlackFake, startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio, type TwilioFake } from '../fakes/twilio.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import { addSubscribers, TEST_KEYS } from '../helpers/notify.ts';
import { enqueueNotification } from '../helpers/notify-sync.ts';

export const CHANNELS = ['email', 'sms', 'slack', 'webhook'] as const satisfies readonly ChannelName[];
export type PerChannel<T> = Record<ChannelName, T>;

export const perChannel = <T>(make: (channel: ChannelName) => T): PerChannel<T> =>
  Object.fromEntries(CHANNELS.map((c) => [c, make(c)])) as PerChannel<T>;

export const SENDER = '+15005550006';
export const INCIDENT_LINK = 'https://trust.candor.test/incidents/1';

/** Receivers standing for different customers' hosts: webhook limits and Retry-After are per host. */
const WEBHOOK_HOSTS = 4;

export interface Providers {
  resend: ResendFake;
  twilio: TwilioFake;
  slack: SlackFake;
  receivers: { receiver: WebhookReceiver; secret: string }[];
  /** host:port of every receiver, for CANDOR_WEBHOOK_ALLOW_HOSTS / the webhook channel's policy */
  allowHosts: string[];
  /** every request each provider received, in arrival order per fake */
  requests(channel: ChannelName): RecordedRequest[];
  /** 5xx for `ms`, then 429 with Retry-After for `stormMs`, on one provider (all receivers for webhooks) */
  outageThenStorm(channel: ChannelName, outageMs: number, stormMs: number, retryAfterSeconds: number): void;
  latency(channel: ChannelName, ms: number): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startProviders(options: { recordBodies: boolean }): Promise<Providers> {
  const resend = await startFakeResend({ recordBodies: options.recordBodies });
  // Status callbacks would go to a server the crash drill keeps killing: they are not what is measured.
  const twilio = await startFakeTwilio({ statusCallbacks: false, recordBodies: options.recordBodies });
  const slack = await startFakeSlack({ recordBodies: options.recordBodies });
  const receivers = await Promise.all(
    Array.from({ length: WEBHOOK_HOSTS }, async () => {
      const secret = `whsec_${randomBytes(24).toString('base64')}`;
      return { receiver: await startWebhookReceiver({ secret }), secret };
    }),
  );
  const hooks = () => receivers.map((r) => r.receiver);
  const fakeOf = (channel: Exclude<ChannelName, 'webhook'>) => ({ email: resend, sms: twilio, slack })[channel];
  let timers: NodeJS.Timeout[] = [];
  return {
    resend,
    twilio,
    slack,
    receivers,
    allowHosts: receivers.map((r) => new URL(r.receiver.url).host),
    requests: (channel) => (channel === 'webhook' ? hooks().flatMap((h) => h.requests) : fakeOf(channel).requests),
    outageThenStorm(channel, outageMs, stormMs, retryAfterSeconds) {
      const targets = channel === 'webhook' ? hooks() : [fakeOf(channel)];
      // The outage covers the storm too: a storm takes precedence, so a late timer leaves no gap of normal answers.
      for (const t of targets) t.outage(outageMs + stormMs, 503);
      timers.push(
        setTimeout(() => {
          for (const t of targets) t.rateLimitStorm(stormMs, retryAfterSeconds);
        }, outageMs),
      );
    },
    latency(channel, ms) {
      for (const t of channel === 'webhook' ? hooks() : [fakeOf(channel)]) t.latency(ms);
    },
    reset() {
      for (const t of timers) clearTimeout(t);
      timers = [];
      for (const fake of [resend, twilio, slack, ...hooks()]) fake.reset();
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      await Promise.all([resend, twilio, slack, ...hooks()].map((f) => f.close()));
    },
  };
}

/** Where the i-th recipient of each channel receives; every address is distinct within its channel. */
export function addressOf(providers: Providers, channel: ChannelName, i: number): string {
  switch (channel) {
    case 'email':
      return `drill${i}@customer.example`;
    case 'sms':
      return `+1415${String(5_000_000 + i).padStart(7, '0')}`;
    case 'slack':
      return `C${String(i).padStart(9, '0')}`;
    case 'webhook':
      return `${providers.receivers[i % providers.receivers.length]?.receiver.url}/hooks/${i}`;
  }
}

export interface Population {
  /** recipient id → address, per channel */
  addresses: PerChannel<Map<number, string>>;
  counts: PerChannel<number>;
}

export function populate(db: Db, providers: Providers, counts: PerChannel<number>): Population {
  const addresses = perChannel(() => new Map<number, string>());
  for (const channel of CHANNELS) {
    const address = (i: number) => addressOf(providers, channel, i);
    const secret = (i: number): string | null => {
      // Slack recipients are channels in ten workspaces; webhooks sign with their receiver's secret.
      if (channel === 'slack') return `xoxb-drill-ws${i % 10}-token`;
      if (channel === 'webhook') return providers.receivers[i % providers.receivers.length]?.secret ?? null;
      return null;
    };
    const ids = addSubscribers(db, TEST_KEYS, { count: counts[channel], channel, address, secret });
    for (const [i, id] of ids.entries()) addresses[channel].set(id, address(i));
  }
  return { addresses, counts };
}

export function drillContent(label: string): NotificationContent {
  const line = `${label}: elevated API errors`;
  return {
    email: { subject: `[Incident] ${line}`, html: `<p>${line}. We are investigating.</p>`, text: `${line}. We are investigating.` },
    sms: { body: `${line}. We are investigating; next update within 30 minutes.`, link: INCIDENT_LINK },
    slack: { text: line, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: line } }] },
    webhook: { type: 'incident.updated', data: { incident: 1, label } },
  };
}

export function enqueueToAll(db: Db, label: string, threadKey: string | null): { notificationId: number; deliveries: number } {
  return enqueueNotification(
    db,
    { kind: 'incident.update', title: label, threadKey, content: drillContent(label), audience: { kind: 'topic', topic: 'incidents' } },
    new Date(),
  );
}

/** How many messages each address received, per channel, as the providers saw them. */
export function received(providers: Providers): PerChannel<Map<string, number>> {
  const tally = (addresses: Iterable<string>) => {
    const counts = new Map<string, number>();
    for (const a of addresses) counts.set(a, (counts.get(a) ?? 0) + 1);
    return counts;
  };
  return {
    email: tally(providers.resend.emails.flatMap((e) => e.to)),
    sms: tally(providers.twilio.messages.map((m) => m.to)),
    slack: tally(providers.slack.messages.map((m) => m.channel)),
    // A receiver took a webhook when it answered 2xx, whether or not the sender lived to read the answer.
    webhook: tally(
      providers.receivers.flatMap(({ receiver }) =>
        receiver.received.filter((w) => w.status >= 200 && w.status < 300).map((w) => `${receiver.url}${w.path}`),
      ),
    ),
  };
}

/** Webhook requests whose signature does not verify with their endpoint's secret. */
export function unverifiedWebhooks(providers: Providers): number {
  return providers.receivers.reduce((n, { receiver }) => n + receiver.received.filter((w) => w.verified !== true).length, 0);
}

/**
 * Endpoints that received the same delivery under more than one `webhook-id`: a repeat must carry
 * the first one's id, or a receiver deduplicating by it (as Standard Webhooks asks) cannot drop it.
 */
export function webhookIdChanges(providers: Providers): number {
  const ids = new Map<string, Set<string>>();
  for (const { receiver } of providers.receivers) {
    for (const w of receiver.received) {
      const address = `${receiver.url}${w.path}`;
      const set = ids.get(address) ?? new Set<string>();
      set.add(w.headers['webhook-id'] ?? '');
      ids.set(address, set);
    }
  }
  return [...ids.values()].filter((set) => set.size > 1).length;
}

export interface Tally {
  recipients: number;
  /** recipients with at least one message */
  delivered: number;
  messages: number;
  /** messages beyond the first, summed over recipients */
  duplicates: number;
  /** recipient ids with nothing received */
  missing: number[];
  /** recipient id → messages received, for those with more than one */
  repeated: Map<number, number>;
}

export function tallyChannel(addresses: Map<number, string>, counts: Map<string, number>): Tally {
  const missing: number[] = [];
  const repeated = new Map<number, number>();
  let delivered = 0;
  let messages = 0;
  for (const [id, address] of addresses) {
    const n = counts.get(address) ?? 0;
    messages += n;
    if (n === 0) missing.push(id);
    else delivered += 1;
    if (n > 1) repeated.set(id, n);
  }
  const duplicates = [...repeated.values()].reduce((sum, n) => sum + n - 1, 0);
  return { recipients: addresses.size, delivered, messages, duplicates, missing, repeated };
}

export function statusCounts(db: Db, notificationId: number): Record<string, number> {
  const rows = db.$client
    .prepare('SELECT status, count(*) AS n FROM deliveries WHERE notification_id = ? GROUP BY status')
    .all(notificationId) as { status: string; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** A small seeded generator (mulberry32): a drill that found something can be run again with the same moments. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const median = (values: number[]): number | null => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? null;
};
