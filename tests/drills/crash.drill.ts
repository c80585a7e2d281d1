/**
 * The crash drill: the real server (`node src/server.ts`, dispatcher in-process as `npm start`
 * runs it) fans one notification out to recipients on all four channels through the real SDKs,
 * and is SIGKILLed at random moments while requests are in flight, then started again on the
 * same database. At the end every delivery must be final, every recipient must have received
 * its message, no email may have gone twice (Resend, and its fake, honour idempotency keys),
 * and any duplicate SMS, Slack message or webhook must belong to a delivery that a killed
 * server had claimed and not yet recorded: the in-flight window, the only place a provider
 * without idempotency can double a message.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../../db/client.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import {
  CHANNELS,
  enqueueToAll,
  median,
  type PerChannel,
  perChannel,
  populate,
  received,
  seededRandom,
  startProviders,
  statusCounts,
  tallyChannel,
  unverifiedWebhooks,
  webhookIdChanges,
} from './world.ts';

export interface CrashDrillOptions {
  recipients: PerChannel<number>;
  kills: number;
  seed: number;
  /** CANDOR_LEASE_SECONDS: how long a dead server's claims wait before another takes them */
  leaseSeconds: number;
  /** CANDOR_LIMIT_<CHANNEL>; undefined keeps the engine's default for that provider */
  limits: PerChannel<string | undefined>;
  /** answer latency of each fake: the time a request is accepted by the provider but not yet answered */
  latencyMs: PerChannel<number>;
  timeoutMs: number;
  log: (line: string) => void;
}

export interface KillRecord {
  /** ms since the drill's first server became ready */
  at: number;
  /** share of deliveries final when it was killed */
  progress: number;
  /** deliveries the killed server had claimed and not recorded, per channel */
  stranded: PerChannel<number>;
  /** requests a provider had received and not yet answered at the kill, per channel */
  inFlightAtProvider: PerChannel<number>;
  /** ms from the kill until the next server was serving */
  restartMs: number | null;
  /** ms from the kill to the provider's next request (restart included); null when nothing was left for it */
  recoverMs: PerChannel<number | null>;
}

export interface CrashChannelFigures {
  recipients: number;
  delivered: number;
  messages: number;
  duplicates: number;
  missing: number;
  /** the most deliveries stranded by one kill, and their sum over all kills */
  maxStranded: number;
  totalStranded: number;
  maxInFlightAtProvider: number;
  medianRecoverMs: number | null;
  maxRecoverMs: number | null;
  /** email only: batches Resend answered from its idempotency store instead of sending again */
  idempotentReplays?: number;
}

export interface CrashDrillResult {
  seed: number;
  kills: KillRecord[];
  statuses: Record<string, number>;
  channels: PerChannel<CrashChannelFigures>;
  limits: PerChannel<string>;
  leaseSeconds: number;
  /** from a kill until the next server was serving */
  restartMs: { median: number | null; max: number | null };
  seconds: number;
  violations: string[];
}

export async function runCrashDrill(options: CrashDrillOptions): Promise<CrashDrillResult> {
  const { log } = options;
  const random = seededRandom(options.seed);
  // Bodies are not kept: the drill counts who received what, and 10,000 bodies would only cost memory.
  const providers = await startProviders({ recordBodies: false });
  for (const channel of CHANNELS) providers.latency(channel, options.latencyMs[channel]);
  const dataDir = tempDir('candor-drill-crash-');
  const db = openDatabase(join(dataDir, 'candor.db'));
  let server: RunningServer | undefined;
  try {
    const population = populate(db, providers, options.recipients);
    // A thread key: Slack's first message becomes a thread root, whose recording a kill can also interrupt.
    const { notificationId, deliveries } = enqueueToAll(db, 'Crash drill', 'incident:crash-drill');
    log(`crash drill: ${deliveries} deliveries enqueued (${CHANNELS.map((c) => `${c} ${options.recipients[c]}`).join(', ')})`);

    const port = await freePort();
    const env: Record<string, string> = {
      ...providerEnv({ port, resend: providers.resend, slack: providers.slack, twilio: providers.twilio, testKeys: true }),
      CANDOR_WEBHOOK_ALLOW_HOSTS: providers.allowHosts.join(','),
      CANDOR_LEASE_SECONDS: String(options.leaseSeconds),
      // the dispatcher must run inside the server that is killed, whatever the developer's shell says
      CANDOR_WORKER: '',
    };
    for (const channel of CHANNELS) {
      const name = `CANDOR_LIMIT_${channel.toUpperCase()}`;
      const limit = options.limits[channel];
      if (limit === undefined) delete env[name];
      else env[name] = limit;
    }

    const open = db.$client.prepare(`SELECT count(*) AS n FROM deliveries WHERE notification_id = ? AND status IN ('pending', 'sending')`);
    const claimed = db.$client.prepare(
      `SELECT id, channel, lease_owner AS owner FROM deliveries WHERE notification_id = ? AND status = 'sending'`,
    );
    const progress = () => 1 - (open.get(notificationId) as { n: number }).n / deliveries;
    const requestsSoFar = () => CHANNELS.reduce((n, c) => n + providers.requests(c).length, 0);
    // Stratified: one moment drawn at random within each of `kills` equal stretches of the fan-out.
    const moments = Array.from({ length: options.kills }, (_, k) => ((k + random()) / options.kills) * 0.95);
    const deadline = Date.now() + options.timeoutMs;
    const kills: KillRecord[] = [];
    /** delivery id → how many killed servers had it claimed and unrecorded */
    const strandedAt = new Map<number, number>();
    // A claim of a server killed earlier can still be waiting for its lease to expire at the next kill:
    // it belongs to that earlier window, not this one, and must not be counted twice.
    const deadOwners = new Set<string>();
    let origin: number | undefined;

    const waitFor = async (predicate: () => boolean, what: string) => {
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`crash drill: timed out waiting for ${what}\n${server?.output().slice(-3000) ?? ''}`);
        if (server && server.process.exitCode !== null)
          throw new Error(`crash drill: the server exited (${server.process.exitCode}) before ${what}\n${server.output().slice(-3000)}`);
        // Often enough to land within a request's life; rarely enough to leave the server its share of two cores.
        await sleep(5);
      }
    };

    const start = async () => {
      const started = await startServer({ env, dataDir, port });
      const previous = kills.at(-1);
      if (previous && origin !== undefined) previous.restartMs = Date.now() - (origin + previous.at);
      return started;
    };
    for (const moment of moments) {
      server = await start();
      origin ??= Date.now();
      const before = requestsSoFar();
      // At its moment, and only once this server has itself sent something: a kill during start-up proves less.
      await waitFor(() => progress() >= moment && requestsSoFar() > before, `${Math.round(moment * 100)} % of the fan-out`);
      // A few more milliseconds at random, so the kill lands anywhere in a request's life, not just after one began.
      await sleep(random() * 30);
      const killedAt = Date.now();
      server.process.kill('SIGKILL');
      await server.stop();
      server = undefined;
      const stranded = perChannel(() => 0);
      const rows = claimed.all(notificationId) as { id: number; channel: ChannelName; owner: string }[];
      for (const row of rows.filter((r) => !deadOwners.has(r.owner))) {
        stranded[row.channel] += 1;
        strandedAt.set(row.id, (strandedAt.get(row.id) ?? 0) + 1);
      }
      for (const row of rows) deadOwners.add(row.owner);
      const inFlightAtProvider = perChannel(
        (c) => providers.requests(c).filter((r) => r.time <= killedAt && (r.respondedAt === undefined || r.respondedAt > killedAt)).length,
      );
      kills.push({
        at: killedAt - origin,
        progress: progress(),
        stranded,
        inFlightAtProvider,
        restartMs: null,
        recoverMs: perChannel(() => null),
      });
      log(
        `crash drill: kill ${kills.length}/${options.kills} at ${(progress() * 100).toFixed(1)} %, stranded ${CHANNELS.map((c) => `${c} ${stranded[c]}`).join(', ')}`,
      );
    }

    server = await start();
    await waitFor(() => progress() === 1, 'every delivery to be final');
    const exit = await server.stop('SIGTERM');
    server = undefined;
    const seconds = (Date.now() - (origin ?? Date.now())) / 1000;

    for (const kill of kills) {
      const killedAt = (origin ?? 0) + kill.at;
      for (const c of CHANNELS) {
        // Receivers keep a log each: the earliest request after the kill, not the first in the list.
        const next = providers.requests(c).reduce((min, r) => (r.time > killedAt && r.time < min ? r.time : min), Number.POSITIVE_INFINITY);
        kill.recoverMs[c] = Number.isFinite(next) ? next - killedAt : null;
      }
    }
    return analyse({ options, providers, population, db, notificationId, kills, strandedAt, seconds, exit });
  } finally {
    if (server) {
      server.process.kill('SIGKILL');
      await server.stop();
    }
    db.$client.close();
    await providers.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function analyse(input: {
  options: CrashDrillOptions;
  providers: Awaited<ReturnType<typeof startProviders>>;
  population: ReturnType<typeof populate>;
  db: ReturnType<typeof openDatabase>;
  notificationId: number;
  kills: KillRecord[];
  strandedAt: Map<number, number>;
  seconds: number;
  exit: number | null;
}): CrashDrillResult {
  const { options, providers, population, db, notificationId, kills } = input;
  const violations: string[] = [];
  const statuses = statusCounts(db, notificationId);
  const open = (statuses.pending ?? 0) + (statuses.sending ?? 0);
  if (open > 0) violations.push(`${open} deliveries are not final`);
  const notSent = Object.entries(statuses).filter(([status]) => status !== 'sent' && status !== 'pending' && status !== 'sending');
  for (const [status, n] of notSent) violations.push(`${n} deliveries ended ${status}, though every provider was up`);
  if (input.exit !== 0) violations.push(`the last server did not stop cleanly on SIGTERM (exit ${input.exit})`);

  const deliveryOf = new Map(
    (
      db.$client.prepare('SELECT id, recipient_id FROM deliveries WHERE notification_id = ?').all(notificationId) as {
        id: number;
        recipient_id: number;
      }[]
    ).map((r) => [r.recipient_id, r.id]),
  );
  const counts = received(providers);
  const channels = perChannel((channel): CrashChannelFigures => {
    const tally = tallyChannel(population.addresses[channel], counts[channel]);
    if (tally.missing.length > 0) violations.push(`${channel}: ${tally.missing.length} recipients received nothing`);
    if (channel === 'email' && tally.duplicates > 0)
      violations.push(
        `email: ${tally.duplicates} duplicate emails (${tally.repeated.size} recipients), though Resend honours idempotency keys`,
      );
    if (channel !== 'email') {
      // A duplicate is allowed only where a kill caught that very delivery claimed and unrecorded, once per such kill.
      const outside = [...tally.repeated].filter(([recipient, n]) => n - 1 > (input.strandedAt.get(deliveryOf.get(recipient) ?? -1) ?? 0));
      if (outside.length > 0)
        violations.push(
          `${channel}: ${outside.length} recipients received more messages than the kills that caught their delivery in flight`,
        );
    }
    const recover = kills.map((k) => k.recoverMs[channel]).filter((ms): ms is number => ms !== null);
    return {
      recipients: tally.recipients,
      delivered: tally.delivered,
      messages: tally.messages,
      duplicates: tally.duplicates,
      missing: tally.missing.length,
      maxStranded: Math.max(0, ...kills.map((k) => k.stranded[channel])),
      totalStranded: kills.reduce((n, k) => n + k.stranded[channel], 0),
      maxInFlightAtProvider: Math.max(0, ...kills.map((k) => k.inFlightAtProvider[channel])),
      medianRecoverMs: median(recover),
      maxRecoverMs: recover.length ? Math.max(...recover) : null,
      ...(channel === 'email'
        ? { idempotentReplays: providers.resend.requests.filter((r) => r.outcome === 'idempotent-replay').length }
        : {}),
    };
  });
  const unverified = unverifiedWebhooks(providers);
  if (unverified > 0) violations.push(`webhook: ${unverified} requests did not verify with their endpoint's secret`);
  const changedIds = webhookIdChanges(providers);
  if (changedIds > 0) violations.push(`webhook: ${changedIds} endpoints received one delivery under different webhook-ids`);
  const restarts = kills.map((k) => k.restartMs).filter((ms): ms is number => ms !== null);
  if (kills.length < options.kills) violations.push(`only ${kills.length} of ${options.kills} kills happened`);
  return {
    seed: options.seed,
    kills,
    statuses,
    channels,
    limits: perChannel((c) => options.limits[c] ?? 'default'),
    leaseSeconds: options.leaseSeconds,
    restartMs: { median: median(restarts), max: restarts.length ? Math.max(...restarts) : null },
    seconds: input.seconds,
    violations,
  };
}
