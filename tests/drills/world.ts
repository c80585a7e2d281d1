/**
 * What both drills stand on, on either engine: the database (a SQLite file, or a PostgreSQL database
 * of its own reached as the application role), the four provider fakes on loopback, recipients for
 * each channel written straight into the database, one notification to all of them, and the count of
 * what each recipient actually received, read from the fakes (the providers' side of the story, not
 * Candor's own records).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { and, eq, inArray } from 'drizzle-orm';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import { type ReadQuery, reading } from '../../db/engine/query.ts';
import { openSqliteDatabase } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import type { NotificationContent } from '../../src/core/notify/types.ts';
import type { RecordedRequest } from '../fakes/common.ts';
import { type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { type SlackFake, startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio, type TwilioFake } from '../fakes/twilio.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import { addSubscribersTo, deliveryCountsOf, TEST_KEYS } from '../helpers/notify.ts';
import { createTestPostgres, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/server.ts';

export type DrillEngine = 'sqlite' | 'postgres';

/** The engines a drill runs on here: SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL names a server. */
export const drillEngines = (): DrillEngine[] => (TEST_POSTGRES_URL ? ['sqlite', 'postgres'] : ['sqlite']);

export interface DrillDatabase {
  engine: DrillEngine;
  /** the drill's own handle: seeding, enqueueing and reading results */
  database: Database;
  /** CANDOR_DATA_DIR of the servers (on SQLite, where the database file is) */
  dataDir: string;
  /** what a server needs to run on this database, beside the providers' settings */
  serverEnv: Record<string, string>;
  /** one more handle on the same database, with connections of its own: another node's */
  another(): Database;
  close(): Promise<void>;
}

/**
 * A fresh database for one drill. PostgreSQL: a database and roles of its own (tests/helpers/postgres.ts),
 * migrated by its owner; the drill and the servers connect as the application role, so row-level
 * security applies to everything they do.
 */
export async function openDrillDatabase(engine: DrillEngine, prefix: string): Promise<DrillDatabase> {
  const dataDir = tempDir(prefix);
  const handles: Database[] = [];
  const closeAll = () => Promise.all(handles.map((h) => h.close()));
  if (engine === 'sqlite') {
    const file = join(dataDir, 'candor.db');
    const open = () => {
      const handle = openSqliteDatabase(file);
      handles.push(handle);
      return handle;
    };
    return {
      engine,
      database: open(),
      dataDir,
      serverEnv: {},
      another: open,
      async close() {
        await closeAll();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const pg = await createTestPostgres();
  const open = () => {
    const handle = openPostgresDatabase({ url: pg.appUrl });
    handles.push(handle);
    return handle;
  };
  return {
    engine,
    database: open(),
    dataDir,
    serverEnv: { CANDOR_DATABASE_URL: pg.appUrl },
    another: open,
    async close() {
      await closeAll();
      await pg.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A read of the drill's own, on either engine (a read snapshot; the tables are the engine's). */
export function readDrill<T>(database: Database, fn: (q: ReadQuery) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.read((r) => fn(reading(r))) : database.read((r) => fn(reading(r)));
}

export const CHANNELS = ['email', 'sms', 'slack', 'webhook'] as const satisfies readonly ChannelName[];
/** the four channels the drills exercise (Teams and Discord post like Slack's incoming webhooks) */
export type DrillChannel = (typeof CHANNELS)[number];
export type PerChannel<T> = Record<DrillChannel, T>;

export const perChannel = <T>(make: (channel: DrillChannel) => T): PerChannel<T> =>
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
  requests(channel: DrillChannel): RecordedRequest[];
  /** 5xx for `ms`, then 429 with Retry-After for `stormMs`, on one provider (all receivers for webhooks) */
  outageThenStorm(channel: DrillChannel, outageMs: number, stormMs: number, retryAfterSeconds: number): void;
  latency(channel: DrillChannel, ms: number): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startProviders(options: { recordBodies: boolean }): Promise<Providers> {
  const resend = await startFakeResend({ recordBodies: options.recordBodies });
  // Status callbacks would go to a server the crash drill keeps killing: they are not what is measured.
  // SMS bodies are kept whatever `recordBodies` says: they are short, and the SMS channel's reconcile()
  // recognises a delivery's message in Twilio's list by the marker its body ends with
  const twilio = await startFakeTwilio({ statusCallbacks: false, recordBodies: true });
  const slack = await startFakeSlack({ recordBodies: options.recordBodies });
  const receivers = await Promise.all(
    Array.from({ length: WEBHOOK_HOSTS }, async () => {
      const secret = `whsec_${randomBytes(24).toString('base64')}`;
      return { receiver: await startWebhookReceiver({ secret }), secret };
    }),
  );
  const hooks = () => receivers.map((r) => r.receiver);
  const fakeOf = (channel: Exclude<DrillChannel, 'webhook'>) => ({ email: resend, sms: twilio, slack })[channel];
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
export function addressOf(providers: Providers, channel: DrillChannel, i: number): string {
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

export async function populate(database: Database, providers: Providers, counts: PerChannel<number>): Promise<Population> {
  const addresses = perChannel(() => new Map<number, string>());
  for (const channel of CHANNELS) {
    const address = (i: number) => addressOf(providers, channel, i);
    const secret = (i: number): string | null => {
      // Slack recipients are channels in ten workspaces; webhooks sign with their receiver's secret.
      if (channel === 'slack') return `xoxb-drill-ws${i % 10}-token`;
      if (channel === 'webhook') return providers.receivers[i % providers.receivers.length]?.secret ?? null;
      return null;
    };
    const ids = await addSubscribersTo(database, TEST_KEYS, { count: counts[channel], channel, address, secret });
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

/** One notification to every recipient, through the outbox as the product enqueues it. */
export async function enqueueToAll(
  database: Database,
  label: string,
  threadKey: string | null,
): Promise<{ notificationId: number; deliveries: number }> {
  const input = {
    kind: 'incident.update',
    title: label,
    threadKey,
    content: drillContent(label),
    audience: { kind: 'topic' as const, topic: 'incidents' },
  };
  const now = new Date();
  return database.engine === 'sqlite'
    ? database.transaction((tx) => enqueueNotification(tx, input, now))
    : database.transaction((tx) => enqueueNotification(tx, input, now));
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

export function statusCounts(database: Database, notificationId: number): Promise<Record<string, number>> {
  return deliveryCountsOf(database, notificationId);
}

/** Deliveries of the notification not yet final (pending or sending). */
export function openDeliveries(database: Database, notificationId: number): Promise<number> {
  return readDrill(database, (q) => {
    const d = q.t.deliveries;
    return q.db.$count(d, and(eq(d.notificationId, notificationId), inArray(d.status, ['pending', 'sending'])));
  });
}

/** Deliveries claimed and not yet recorded, with the dispatcher holding each. */
export function claimedDeliveries(
  database: Database,
  notificationId: number,
): Promise<{ id: number; channel: ChannelName; owner: string | null }[]> {
  return readDrill(database, (q) => {
    const d = q.t.deliveries;
    return q.db
      .select({ id: d.id, channel: d.channel, owner: d.leaseOwner })
      .from(d)
      .where(and(eq(d.notificationId, notificationId), eq(d.status, 'sending')));
  });
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
