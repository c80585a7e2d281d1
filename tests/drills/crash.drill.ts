/**
 * The crash drill: the real server (`node src/server.ts`, dispatcher in-process as `npm start`
 * runs it) fans one notification out to recipients on all four channels through the real SDKs,
 * and is SIGKILLed at random moments while requests are in flight, then started again on the
 * same database. On PostgreSQL several servers run at once on one database (two in the drills),
 * each with its own dispatcher; the kills fall on them at random, and a killed one restarts while
 * the others go on, so at times all are down together. At the end every delivery must be final,
 * every recipient must have received its message, no email may have gone twice (Resend, and its
 * fake, honour idempotency keys), and any duplicate SMS, Slack message or webhook must belong to a
 * delivery that a killed server had claimed and not yet recorded: the in-flight window, the only
 * place a provider without idempotency can double a message.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { and, countDistinct, eq, inArray } from 'drizzle-orm';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, startServer } from '../helpers/server.ts';
import {
  CHANNELS,
  claimedDeliveries,
  type DrillChannel,
  type DrillDatabase,
  type DrillEngine,
  enqueueToAll,
  median,
  openDeliveries,
  openDrillDatabase,
  type PerChannel,
  perChannel,
  populate,
  readDrill,
  received,
  seededRandom,
  startProviders,
  statusCounts,
  tallyChannel,
  unverifiedWebhooks,
  webhookIdChanges,
} from './world.ts';

export interface CrashDrillOptions {
  engine: DrillEngine;
  /** servers running at once on the one database, each with its dispatcher; SQLite allows one */
  servers: number;
  recipients: PerChannel<number>;
  kills: number;
  seed: number;
  /**
   * a thread key on the notification, so each Slack message is a thread root whose claim a kill can
   * interrupt (and whose claim then holds that recipient back for its 60 s: ROOT_CLAIM_MS)
   */
  slackThreads: boolean;
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
  /** which server was killed (0-based) */
  node: number;
  /** servers serving at the kill, the killed one included */
  serving: number;
  /** share of deliveries final when it was killed */
  progress: number;
  /** deliveries the killed server had claimed and not recorded, per channel */
  stranded: PerChannel<number>;
  /** requests a provider had received and not yet answered at the kill (from any server), per channel */
  inFlightAtProvider: PerChannel<number>;
  /** ms from the kill until the killed server was serving again */
  restartMs: number | null;
  /** ms from the kill to the provider's next request (restart included); null when nothing was left for it */
  recoverMs: PerChannel<number | null>;
  /** ms from the kill until the last delivery it stranded was recorded sent; null when it stranded none */
  strandedDoneMs: number | null;
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
  /**
   * deliveries recorded sent by a `reconcile` attempt (outcome sent): the provider, asked after a kill,
   * already had the message, so it was not sent again
   */
  reconciled: number;
}

export interface CrashDrillResult {
  engine: DrillEngine;
  servers: number;
  slackThreads: boolean;
  seed: number;
  kills: KillRecord[];
  statuses: Record<string, number>;
  channels: PerChannel<CrashChannelFigures>;
  limits: PerChannel<string>;
  leaseSeconds: number;
  /** from a kill until the killed server was serving again */
  restartMs: { median: number | null; max: number | null };
  /** from a kill until what it stranded was sent: the lease, then the next claim */
  strandedDoneMs: { median: number | null; max: number | null };
  seconds: number;
  /** webhook endpoints that received one delivery under more than one webhook-id (must be 0) */
  webhookIdChanges: number;
  violations: string[];
}

/** One server slot: the server running in it, or its restart under way. */
interface Node {
  index: number;
  server: RunningServer | undefined;
  starting: Promise<void> | undefined;
  /** provider requests so far when this server became ready */
  requestsAtStart: number;
}

export async function runCrashDrill(options: CrashDrillOptions): Promise<CrashDrillResult> {
  const { log } = options;
  if (options.engine === 'sqlite' && options.servers !== 1) throw new Error('on SQLite the crash drill runs one server');
  const random = seededRandom(options.seed);
  // Bodies are not kept: the drill counts who received what, and 10,000 bodies would only cost memory.
  const providers = await startProviders({ recordBodies: false });
  for (const channel of CHANNELS) providers.latency(channel, options.latencyMs[channel]);
  const drill: DrillDatabase = await openDrillDatabase(options.engine, 'candor-drill-crash-');
  const { database } = drill;
  const nodes: Node[] = Array.from({ length: options.servers }, (_, index) => ({
    index,
    server: undefined,
    starting: undefined,
    requestsAtStart: 0,
  }));
  try {
    const population = await populate(database, providers, options.recipients);
    // A thread key: Slack's first message becomes a thread root, whose recording a kill can also interrupt.
    const { notificationId, deliveries } = await enqueueToAll(
      database,
      'Crash drill',
      options.slackThreads ? 'incident:crash-drill' : null,
    );
    log(
      `crash drill on ${options.engine}, ${options.servers} server${options.servers > 1 ? 's' : ''}: ${deliveries} deliveries enqueued (${CHANNELS.map((c) => `${c} ${options.recipients[c]}`).join(', ')})`,
    );

    const ports = await Promise.all(nodes.map(() => freePort()));
    const envOf = (node: Node) => {
      const env: Record<string, string> = {
        ...providerEnv({
          port: ports[node.index] ?? 0,
          resend: providers.resend,
          slack: providers.slack,
          twilio: providers.twilio,
          testKeys: true,
        }),
        ...drill.serverEnv,
        // One public address for all, as behind a load balancer: the links in a message (and so a batch's
        // request, resent whole under its idempotency key by whichever node takes it over) do not depend on the node.
        CANDOR_PUBLIC_URL: `http://127.0.0.1:${ports[0]}`,
        CANDOR_WEBHOOK_ALLOW_HOSTS: providers.allowHosts.join(','),
        CANDOR_LEASE_SECONDS: String(options.leaseSeconds),
        // The fakes list a message the moment its request arrives (Twilio and Slack may lag up to 2 minutes,
        // the default): a send of unknown outcome missing from the list this long after its claim was never made.
        CANDOR_RECONCILE_SETTLE_SECONDS: '3',
        // the dispatcher must run inside the server that is killed, whatever the developer's shell says
        CANDOR_WORKER: '',
      };
      for (const channel of CHANNELS) {
        const name = `CANDOR_LIMIT_${channel.toUpperCase()}`;
        const limit = options.limits[channel];
        if (limit === undefined) delete env[name];
        else env[name] = limit;
      }
      return env;
    };

    const progress = async () => 1 - (await openDeliveries(database, notificationId)) / deliveries;
    const requestsSoFar = () => CHANNELS.reduce((n, c) => n + providers.requests(c).length, 0);
    // Stratified: one moment drawn at random within each of `kills` equal stretches of the fan-out.
    const moments = Array.from({ length: options.kills }, (_, k) => ((k + random()) / options.kills) * 0.95);
    const deadline = Date.now() + options.timeoutMs;
    const kills: KillRecord[] = [];
    /** delivery id → how many killed servers had it claimed and unrecorded */
    const strandedAt = new Map<number, number>();
    const strandedIds: number[][] = [];
    let origin: number | undefined;
    let startFailure: Error | undefined;

    const serving = () => nodes.filter((n): n is Node & { server: RunningServer } => n.server !== undefined);
    const tail = () =>
      serving()
        .map((n) => `--- server ${n.index}\n${n.server.output().slice(-3000)}`)
        .join('\n');
    /** What is not final, for the message of a drill that timed out. */
    const stuck = async () => {
      const rows = await readDrill(database, (q) => {
        const d = q.t.deliveries;
        return q.db
          .select({
            id: d.id,
            channel: d.channel,
            status: d.status,
            attempts: d.attempts,
            owner: d.leaseOwner,
            leaseExpiresAt: d.leaseExpiresAt,
            nextAttemptAt: d.nextAttemptAt,
            lastError: d.lastError,
          })
          .from(d)
          .where(and(eq(d.notificationId, notificationId), inArray(d.status, ['pending', 'sending'])))
          .limit(20);
      });
      const live = serving().map((n) => `#${n.index} pid ${n.server.process.pid}`);
      return [
        `statuses ${JSON.stringify(await statusCounts(database, notificationId))}; serving ${live.join(', ') || 'none'}; now ${new Date().toISOString()}`,
        ...rows.map((r) => JSON.stringify(r)),
      ].join('\n');
    };
    const waitFor = async (predicate: () => Promise<boolean>, what: string) => {
      while (!(await predicate())) {
        if (startFailure) throw startFailure;
        if (Date.now() > deadline) throw new Error(`crash drill: timed out waiting for ${what}\n${await stuck()}\n${tail()}`);
        for (const n of serving())
          if (n.server.process.exitCode !== null)
            throw new Error(
              `crash drill: server ${n.index} exited (${n.server.process.exitCode}) before ${what}\n${n.server.output().slice(-3000)}`,
            );
        // Often enough to land within a request's life; rarely enough to leave the servers their share of two cores.
        await sleep(5);
      }
    };

    /** Starts the node's server; after a kill, records how long it was down. */
    const start = async (node: Node, after: KillRecord | undefined) => {
      const started = await startServer({ env: envOf(node), dataDir: drill.dataDir, port: ports[node.index] });
      node.server = started;
      node.requestsAtStart = requestsSoFar();
      if (after && origin !== undefined) after.restartMs = Date.now() - (origin + after.at);
    };
    /** On SQLite the next moment waits for the restart; with several servers the others go on meanwhile. */
    const restart = (node: Node, after: KillRecord) => {
      node.starting = start(node, after)
        .catch((err: unknown) => {
          startFailure = err instanceof Error ? err : new Error(String(err));
        })
        .finally(() => {
          node.starting = undefined;
        });
      return node.starting;
    };

    await Promise.all(nodes.map((n) => start(n, undefined)));
    origin = Date.now();
    for (const moment of moments) {
      // At its moment, and only on a server that has itself sent something since it started (all share
      // the providers, so: anything sent since): a kill during start-up proves less.
      const eligible = () => serving().filter((n) => requestsSoFar() > n.requestsAtStart);
      await waitFor(async () => eligible().length > 0 && (await progress()) >= moment, `${Math.round(moment * 100)} % of the fan-out`);
      // A few more milliseconds at random, so the kill lands anywhere in a request's life, not just after one began.
      await sleep(random() * 30);
      const candidates = eligible();
      const victim: Node | undefined = candidates[Math.floor(random() * candidates.length)];
      if (!victim?.server) throw new Error('crash drill: no server to kill');
      const { server } = victim;
      const pid = server.process.pid;
      const servingAtKill = serving().length;
      const killedAt = Date.now();
      server.process.kill('SIGKILL');
      await server.stop();
      victim.server = undefined;
      // Its claims: the leases it holds name its process (src/runtime/dispatcher.ts).
      const mine = (await claimedDeliveries(database, notificationId)).filter((r) => r.owner?.includes(`/pid ${pid}/`));
      const stranded = perChannel(() => 0);
      for (const row of mine) {
        stranded[row.channel as DrillChannel] += 1;
        strandedAt.set(row.id, (strandedAt.get(row.id) ?? 0) + 1);
      }
      strandedIds.push(mine.map((r) => r.id));
      const inFlightAtProvider = perChannel(
        (c) => providers.requests(c).filter((r) => r.time <= killedAt && (r.respondedAt === undefined || r.respondedAt > killedAt)).length,
      );
      const kill: KillRecord = {
        at: killedAt - origin,
        node: victim.index,
        serving: servingAtKill,
        progress: await progress(),
        stranded,
        inFlightAtProvider,
        restartMs: null,
        recoverMs: perChannel(() => null),
        strandedDoneMs: null,
      };
      kills.push(kill);
      log(
        `crash drill: kill ${kills.length}/${options.kills}${options.servers > 1 ? ` (server ${victim.index}, ${servingAtKill} serving)` : ''} at ${(kill.progress * 100).toFixed(1)} %, stranded ${CHANNELS.map((c) => `${c} ${stranded[c]}`).join(', ')}`,
      );
      const restarted = restart(victim, kill);
      if (options.servers === 1) await restarted;
    }

    await Promise.all(nodes.map((n) => n.starting));
    if (startFailure) throw startFailure;
    await waitFor(async () => (await progress()) === 1, 'every delivery to be final');
    const exits = await Promise.all(serving().map((n) => n.server.stop('SIGTERM')));
    for (const n of nodes) n.server = undefined;
    const seconds = (Date.now() - (origin ?? Date.now())) / 1000;

    const sentAt = await readDrill(database, async (q) => {
      const d = q.t.deliveries;
      const ids = [...strandedAt.keys()];
      const rows = ids.length ? await q.db.select({ id: d.id, sentAt: d.sentAt }).from(d).where(inArray(d.id, ids)) : [];
      return new Map(rows.map((r) => [r.id, r.sentAt?.getTime() ?? null]));
    });
    for (const [i, kill] of kills.entries()) {
      const killedAt = (origin ?? 0) + kill.at;
      for (const c of CHANNELS) {
        // Receivers keep a log each: the earliest request after the kill, not the first in the list.
        const next = providers.requests(c).reduce((min, r) => (r.time > killedAt && r.time < min ? r.time : min), Number.POSITIVE_INFINITY);
        kill.recoverMs[c] = Number.isFinite(next) ? next - killedAt : null;
      }
      const ids = strandedIds[i] ?? [];
      const done = ids.map((id) => sentAt.get(id)).filter((t): t is number => typeof t === 'number');
      if (ids.length > 0 && done.length === ids.length) kill.strandedDoneMs = Math.max(...done) - killedAt;
    }
    return await analyse({ options, providers, population, database: drill.database, notificationId, kills, strandedAt, seconds, exits });
  } finally {
    await Promise.all(nodes.map((n) => n.starting));
    for (const n of nodes) {
      if (!n.server) continue;
      n.server.process.kill('SIGKILL');
      await n.server.stop();
    }
    await drill.close();
    await providers.close();
  }
}

async function analyse(input: {
  options: CrashDrillOptions;
  providers: Awaited<ReturnType<typeof startProviders>>;
  population: Awaited<ReturnType<typeof populate>>;
  database: DrillDatabase['database'];
  notificationId: number;
  kills: KillRecord[];
  strandedAt: Map<number, number>;
  seconds: number;
  exits: (number | null)[];
}): Promise<CrashDrillResult> {
  const { options, providers, population, database, notificationId, kills } = input;
  const violations: string[] = [];
  const statuses = await statusCounts(database, notificationId);
  const open = (statuses.pending ?? 0) + (statuses.sending ?? 0);
  if (open > 0) violations.push(`${open} deliveries are not final`);
  const notSent = Object.entries(statuses).filter(([status]) => status !== 'sent' && status !== 'pending' && status !== 'sending');
  for (const [status, n] of notSent) violations.push(`${n} deliveries ended ${status}, though every provider was up`);
  for (const exit of input.exits.filter((e) => e !== 0))
    violations.push(`a server did not stop cleanly on SIGTERM at the end (exit ${exit})`);

  const deliveryOf = await readDrill(database, async (q) => {
    const d = q.t.deliveries;
    const rows = await q.db.select({ id: d.id, recipientId: d.recipientId }).from(d).where(eq(d.notificationId, notificationId));
    return new Map(rows.map((r) => [r.recipientId, r.id]));
  });
  const counts = received(providers);
  const reconciledBy = await readDrill(database, async (q) => {
    const { deliveries: d, deliveryAttempts: a } = q.t;
    const rows = await q.db
      .select({ channel: d.channel, n: countDistinct(d.id) })
      .from(a)
      .innerJoin(d, eq(d.id, a.deliveryId))
      .where(and(eq(d.notificationId, notificationId), eq(d.status, 'sent'), eq(a.kind, 'reconcile'), eq(a.outcome, 'sent')))
      .groupBy(d.channel);
    return new Map(rows.map((r) => [r.channel, Number(r.n)]));
  });
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
      reconciled: reconciledBy.get(channel) ?? 0,
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
  const strandedDone = kills.map((k) => k.strandedDoneMs).filter((ms): ms is number => ms !== null);
  if (kills.length < options.kills) violations.push(`only ${kills.length} of ${options.kills} kills happened`);
  return {
    engine: options.engine,
    servers: options.servers,
    slackThreads: options.slackThreads,
    seed: options.seed,
    kills,
    statuses,
    channels,
    limits: perChannel((c) => options.limits[c] ?? 'default'),
    leaseSeconds: options.leaseSeconds,
    restartMs: { median: median(restarts), max: restarts.length ? Math.max(...restarts) : null },
    strandedDoneMs: { median: median(strandedDone), max: strandedDone.length ? Math.max(...strandedDone) : null },
    seconds: input.seconds,
    webhookIdChanges: changedIds,
    violations,
  };
}
