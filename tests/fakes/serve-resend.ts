/**
 * The fake Resend in a process of its own, so a benchmark measures Candor's memory and CPU,
 * not the fake's. Bodies are not kept (100,000 emails).
 *
 *   node tests/fakes/serve-resend.ts [--requests-per-second N] [--latency MS]
 *
 * Prints one JSON line `{ "url", "apiKey" }` on stdout when listening. Started with an IPC
 * channel, it answers a `{ type: 'stats' }` message with what it received (see FakeResendStats).
 * SIGTERM closes it.
 */
import { parseArgs } from 'node:util';
import { startFakeResend } from './resend.ts';

export interface FakeResendStats {
  requests: number;
  emails: number;
  /** 429s answered */
  rateLimited: number;
  /** answers replayed for a repeated idempotency key */
  replays: number;
  /** addresses that got the same subject more than once */
  duplicates: number;
  /** arrival times (ms since epoch) of the first and last accepted request */
  firstAcceptedAt: number | null;
  lastAcceptedAt: number | null;
  /** with `{ type: 'stats', log: true }`: arrival time and status of every request */
  log?: { time: number; status: number }[];
}

const { values } = parseArgs({
  options: { 'requests-per-second': { type: 'string' }, latency: { type: 'string' } },
  strict: true,
});
const rps = values['requests-per-second'] ? Number(values['requests-per-second']) : undefined;
const fake = await startFakeResend({ recordBodies: false, ...(rps ? { requestsPerSecond: rps } : {}) });
if (values.latency) fake.latency(Number(values.latency));

process.on('message', (message: unknown) => {
  if (typeof message !== 'object' || message === null || !('type' in message) || message.type !== 'stats') return;
  const accepted = fake.requests.filter((r) => r.status === 200);
  const stats: FakeResendStats = {
    requests: fake.requests.length,
    emails: fake.emails.length,
    rateLimited: fake.rateLimited.length,
    replays: fake.requests.filter((r) => r.outcome === 'idempotent-replay').length,
    duplicates: fake.duplicates().length,
    firstAcceptedAt: accepted[0]?.time ?? null,
    lastAcceptedAt: accepted.at(-1)?.time ?? null,
    ...('log' in message && message.log === true ? { log: fake.requests.map((r) => ({ time: r.time, status: r.status })) } : {}),
  };
  process.send?.(stats);
});
process.once('SIGTERM', () => {
  void fake.close().then(() => process.exit(0));
});

console.log(JSON.stringify({ url: fake.url, apiKey: fake.apiKey }));
