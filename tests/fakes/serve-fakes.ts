/**
 * All four fakes in a process of their own, so a benchmark of a fan-out on every channel
 * measures Candor's memory and CPU, not the fakes'. Bodies are not kept.
 *
 *   node tests/fakes/serve-fakes.ts [--webhook-hosts N]
 *
 * Prints one JSON line (FakeEndpoints) on stdout when listening. Started with an IPC channel,
 * it answers `{ type: 'stats' }` with FakeStats. SIGTERM closes it.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { RecordedRequest } from './common.ts';
import { startFakeResend } from './resend.ts';
import { startFakeSlack } from './slack.ts';
import { startFakeTwilio } from './twilio.ts';
import { startWebhookReceiver } from './webhook-receiver.ts';

export interface FakeEndpoints {
  resend: { url: string; apiKey: string };
  twilio: { url: string; accountSid: string; authToken: string };
  slack: { url: string };
  webhooks: { url: string; secret: string }[];
}

export interface ChannelStats {
  requests: number;
  /** messages the provider took (emails, not batches) */
  messages: number;
  /** 429s answered */
  rateLimited: number;
  /** recipients who got more than one message */
  duplicates: number;
  /** arrival times (ms since epoch) of the first and last accepted request */
  firstAcceptedAt: number | null;
  lastAcceptedAt: number | null;
  /** the most requests accepted within any one second (per host for webhooks: the busiest host) */
  peakRequestsPerSecond: number;
}

export type FakeStats = Record<'email' | 'sms' | 'slack' | 'webhook', ChannelStats>;

const { values } = parseArgs({ options: { 'webhook-hosts': { type: 'string' } }, strict: true });
const hosts = Number(values['webhook-hosts'] ?? 4);

const resend = await startFakeResend({ recordBodies: false });
const twilio = await startFakeTwilio({ recordBodies: false, statusCallbacks: false });
const slack = await startFakeSlack({ recordBodies: false });
const receivers = await Promise.all(
  Array.from({ length: hosts }, async () => {
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    return { receiver: await startWebhookReceiver({ secret }), secret };
  }),
);

/** Sliding one-second window over sorted arrival times. */
function peakPerSecond(times: number[]): number {
  let peak = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while ((times[end] ?? 0) - (times[start] ?? 0) >= 1000) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}

function repeated(keys: Iterable<string>): number {
  const seen = new Map<string, number>();
  for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1);
  return [...seen.values()].filter((n) => n > 1).length;
}

function stats(requests: RecordedRequest[][], messages: number, duplicates: number): ChannelStats {
  const ok = requests.map((log) => log.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.time));
  const all = ok.flat().sort((a, b) => a - b);
  return {
    requests: requests.reduce((n, log) => n + log.length, 0),
    messages,
    rateLimited: requests.reduce((n, log) => n + log.filter((r) => r.status === 429).length, 0),
    duplicates,
    firstAcceptedAt: all[0] ?? null,
    lastAcceptedAt: all.at(-1) ?? null,
    peakRequestsPerSecond: Math.max(0, ...ok.map(peakPerSecond)),
  };
}

process.on('message', (message: unknown) => {
  if (typeof message !== 'object' || message === null || !('type' in message) || message.type !== 'stats') return;
  const hooks = receivers.map((r) => r.receiver);
  const taken = hooks.flatMap((h) => h.received.filter((w) => w.status >= 200 && w.status < 300).map((w) => `${h.url}${w.path}`));
  const result: FakeStats = {
    email: stats([resend.requests], resend.emails.length, resend.duplicates().length),
    sms: stats([twilio.requests], twilio.messages.length, repeated(twilio.messages.map((m) => m.to))),
    slack: stats([slack.requests], slack.messages.length, repeated(slack.messages.map((m) => m.channel))),
    webhook: stats(
      hooks.map((h) => h.requests),
      taken.length,
      repeated(taken),
    ),
  };
  process.send?.(result);
});
process.once('SIGTERM', () => {
  void Promise.all([resend, twilio, slack, ...receivers.map((r) => r.receiver)].map((f) => f.close())).then(() => process.exit(0));
});

const endpoints: FakeEndpoints = {
  resend: { url: resend.url, apiKey: resend.apiKey },
  twilio: { url: twilio.url, accountSid: twilio.accountSid, authToken: twilio.authToken },
  slack: { url: slack.url },
  webhooks: receivers.map((r) => ({ url: r.receiver.url, secret: r.secret })),
};
console.log(JSON.stringify(endpoints));
