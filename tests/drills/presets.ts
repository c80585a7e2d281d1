/**
 * The two sizes of each drill: the full one (`npm run drills`) and the one that fits `npm test`,
 * per engine. Both check the same promises; the CI one has fewer kills, fewer recipients and a
 * compressed retry policy. On PostgreSQL two servers (crash) or two dispatchers (outage) share the
 * database; SQLite has one.
 */
import { defaultRetryPolicy } from '../../src/core/notify/backoff.ts';
import { RESEND_DEFAULT_LIMITS } from '../../src/core/notify/channels/email-resend.ts';
import type { CrashDrillOptions } from './crash.drill.ts';
import type { OutageDrillOptions } from './outage.drill.ts';
import { CHANNELS, type DrillEngine } from './world.ts';

type Log = (line: string) => void;

/** Fast enough that 10,000 recipients take seconds, not hours, at Twilio's and Slack's real one per second. */
const BRISK = '200/s,burst=20,concurrency=8';

/** Nodes on one database: two on PostgreSQL (the drill), one on SQLite. */
const nodesOn = (engine: DrillEngine) => (engine === 'postgres' ? 2 : 1);

export function fullCrash(engine: DrillEngine, seed: number, log: Log): CrashDrillOptions {
  return {
    engine,
    servers: nodesOn(engine),
    recipients: { email: 2500, sms: 2500, slack: 2500, webhook: 2500 },
    kills: 20,
    seed,
    slackThreads: true,
    leaseSeconds: 3,
    // Email at Resend's real limit (1.9 requests/s of 100): its batches span the whole drill.
    limits: { email: undefined, sms: BRISK, slack: BRISK, webhook: BRISK },
    latencyMs: { email: 150, sms: 40, slack: 40, webhook: 20 },
    timeoutMs: 10 * 60_000,
    log,
  };
}

export function ciCrash(engine: DrillEngine, seed: number, log: Log): CrashDrillOptions {
  return {
    ...fullCrash(engine, seed, log),
    recipients: { email: 600, sms: 400, slack: 400, webhook: 400 },
    kills: 4,
    // On PostgreSQL no Slack threads: a kill that catches a root in flight holds that recipient back for the
    // root claim's 60 s, the whole CI budget of the second engine. Roots across nodes are proven by
    // tests/integration/notify-engine.test.ts and by the full drill on both engines.
    slackThreads: engine === 'sqlite',
    timeoutMs: 100_000,
  };
}

export function fullOutage(engine: DrillEngine, log: Log): OutageDrillOptions {
  return {
    engine,
    dispatchers: nodesOn(engine),
    recipients: { email: 1000, sms: 200, slack: 200, webhook: 200 },
    order: CHANNELS,
    outageMs: 5000,
    stormMs: 6000,
    retryAfterSeconds: 2,
    retry: defaultRetryPolicy,
    limits: {
      email: { ...RESEND_DEFAULT_LIMITS, concurrency: 1 },
      sms: { ratePerSecond: 50, burst: 5, concurrency: 1 },
      // per Slack channel, and every recipient here is its own channel
      slack: { ratePerSecond: 1, burst: 1, concurrency: 1 },
      webhook: { ratePerSecond: 50, burst: 5, concurrency: 1 },
    },
    latencyMs: 10,
    pollMs: 500,
    phaseTimeoutMs: 4 * 60_000,
    log,
  };
}

export function ciOutage(engine: DrillEngine, log: Log): OutageDrillOptions {
  return {
    ...fullOutage(engine, log),
    recipients: { email: 200, sms: 30, slack: 30, webhook: 30 },
    outageMs: 500,
    stormMs: 1500,
    retryAfterSeconds: 1,
    retry: { baseMs: 200, capMs: 1000, maxAttempts: 10 },
    latencyMs: 5,
    pollMs: 50,
    phaseTimeoutMs: 30_000,
  };
}
