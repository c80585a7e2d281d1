/**
 * The notification engine at scale, through the real SDKs:
 *
 * (a) 100,000 email recipients, no rate limit: how long the fan-out (one INSERT … SELECT)
 *     takes, how many deliveries per second the dispatcher sends, and its peak RSS;
 * (b) 10,000 recipients with Resend's default limit (2 requests/s of 100 emails): the time
 *     taken over the lower bound N / rate = 50 s;
 * (c) 100,000 subscribers, 25,000 on each channel, all four channels at once, each under a
 *     configured rate limit (CANDOR_LIMIT_*): messages per second per channel against its limit,
 *     and the peak RSS of the server process doing the dispatching (the `memory` section).
 *
 * With PostgreSQL chosen (tests/bench/engines.ts), (a) runs on PostgreSQL too, in the same run: a
 * database of its own as the application role, with one and then with two `candor worker`
 * dispatchers sharing it (fresh database each), against 5,000 deliveries/s with two. (b) and (c)
 * measure the limiter and the channels, not the engine, and run on SQLite only.
 *
 * Candor's side is `node src/cli.ts worker` for (a) and (b), as an operator runs it, and the
 * server itself (`node src/server.ts`, dispatcher in-process, as `npm start` runs it) for (c).
 * The fakes run in other processes (tests/fakes/serve-resend.ts, serve-fakes.ts), so the RSS
 * (VmHWM, the kernel's high-water mark, read from /proc) is Candor's own. The bench process only
 * writes the database beforehand and watches. Figures are reported next to their targets,
 * never asserted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../../db/client.ts';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { RESEND_DEFAULT_LIMITS } from '../../src/core/notify/channels/email-resend.ts';
import { enqueueNotification as enqueueOn } from '../../src/core/notify/outbox.ts';
import type { FakeEndpoints, FakeStats } from '../fakes/serve-fakes.ts';
import type { FakeResendStats } from '../fakes/serve-resend.ts';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';
import { addSubscribers, addSubscribersTo, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { enqueueNotification } from '../helpers/outbox-on-connection.ts';
import { createTestPostgres } from '../helpers/postgres.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, startServer, tempDir } from '../helpers/server.ts';
import { BackendCpu, columns, memoryOf } from './common.ts';
import { postgresSecrets } from './engines.ts';

const UNTHROTTLED = 100_000;
const THROTTLED = 10_000;
/** Resend's documented default, and the engine's: 2 requests per second, 100 emails per batch. */
const RESEND_RATE = 2;
const BATCH = 100;

const TARGETS = {
  enqueueMs: 1000,
  deliveriesPerSecond: 10_000,
  peakRssMb: 200,
  rateLimitedRatio: 1.05,
  /** on PostgreSQL, with two dispatchers on one database (issue 15) */
  postgresTwoWorkersDeliveriesPerSecond: 5_000,
};

interface FakeProcess {
  pid: number;
  url: string;
  apiKey: string;
  stats(withLog?: boolean): Promise<FakeResendStats>;
  stop(): Promise<void>;
}

async function startFake(requestsPerSecond?: number): Promise<FakeProcess> {
  const args = [join(ROOT, 'tests/fakes/serve-resend.ts')];
  if (requestsPerSecond) args.push('--requests-per-second', String(requestsPerSecond));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const end = buffered.indexOf('\n');
      if (end >= 0) resolve(buffered.slice(0, end));
    });
    void exited.then(() => reject(new Error('the fake Resend exited before listening')));
  });
  const { url, apiKey } = JSON.parse(line) as { url: string; apiKey: string };
  return {
    pid: child.pid ?? 0,
    url,
    apiKey,
    stats: (withLog = false) =>
      new Promise((resolve) => {
        child.once('message', (message) => resolve(message as FakeResendStats));
        child.send({ type: 'stats', log: withLog });
      }),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Worker {
  child: ChildProcess;
  /** Date.now() when the worker said it was running */
  ready: Promise<number>;
  exited: Promise<number | null>;
  output: () => string;
}

function startWorker(dataDir: string, fake: FakeProcess, limit: string | undefined, env: Record<string, string> = {}): Worker {
  const key = TEST_KEYS.keys[0];
  if (!key) throw new Error('no test key');
  // The flags of `npm run candor`: the figures are the worker's as an operator runs it.
  // CANDOR_BENCH_WORKER_NODE_ARGS: further Node flags for the workers, to look inside them, e.g.
  // `--cpu-prof --cpu-prof-dir=/tmp/prof` (a V8 CPU profile per worker when it stops) or `--import=<timing module>`.
  const profile = (process.env.CANDOR_BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(
    process.execPath,
    [...profile, '--max-semi-space-size=4', '--max-old-space-size=1024', join(ROOT, 'src/cli.ts'), 'worker'],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? dataDir,
        CANDOR_DATA_DIR: dataDir,
        CANDOR_PUBLIC_URL: 'https://trust.candor.test/',
        CANDOR_SECRET: TEST_KEYS.secret,
        CANDOR_ENCRYPTION_KEY: key.toString('hex'),
        RESEND_API_KEY: fake.apiKey,
        RESEND_BASE_URL: fake.url,
        CANDOR_EMAIL_FROM: 'Candor Status <status@candor.test>',
        ...(limit ? { CANDOR_LIMIT_EMAIL: limit } : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('running as ')) resolve(Date.now());
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`worker exited with ${code} before running:\n${output}`)));
  });
  return { child, ready, exited, output: () => output };
}

/** VmHWM of a worker with nothing to send: what starting the process costs before the engine does any work. */
async function idleWorkerRss(log: BenchContext['log']): Promise<number | null> {
  const fake = await startFake();
  const dataDir = tempDir('candor-bench-idle-');
  try {
    openDatabase(join(dataDir, 'candor.db')).$client.close();
    const worker = startWorker(dataDir, fake, 'unlimited');
    await worker.ready;
    await sleep(1000);
    const memory = memoryOf(worker.child.pid ?? 0);
    worker.child.kill('SIGTERM');
    await worker.exited;
    log(`fanout: an idle worker peaks at ${memory ? `${Math.round(memory.hwmMb)} MB` : 'n/a'}`);
    return memory ? Math.round(memory.hwmMb) : null;
  } finally {
    await fake.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export interface FanoutFigures {
  recipients: number;
  limit: string;
  /** 429s the fake answered; the fake enforces the limit when the engine is limited */
  fakeLimit: string;
  populateMs: number;
  enqueueMs: number;
  /** from the worker saying "running" to the last delivery recorded sent */
  sendSeconds: number;
  deliveriesPerSecond: number;
  /** the worker's VmHWM; null where /proc is unavailable */
  peakRssMb: number | null;
  /** the largest VmRSS seen in 50 ms samples */
  sampledPeakRssMb: number | null;
  /** CPU seconds the worker used from saying "running" to the end, and the fake's; null where /proc is unavailable */
  workerCpuSeconds: number | null;
  fakeCpuSeconds: number | null;
  sent: number;
  notSent: number;
  /** 1-minute load average before and after: other work on the machine skews every figure */
  loadAverage: [number, number];
  fake: FakeResendStats;
}

async function scenario(
  log: BenchContext['log'],
  recipients: number,
  limit: string | undefined,
  fakeRequestsPerSecond: number | undefined,
): Promise<FanoutFigures> {
  const loadBefore = loadavg()[0] ?? 0;
  const fake = await startFake(fakeRequestsPerSecond);
  const dataDir = tempDir('candor-bench-fanout-');
  try {
    const db = openDatabase(join(dataDir, 'candor.db'));
    const populateStart = performance.now();
    addSubscribers(db, TEST_KEYS, { count: recipients, channel: 'email', address: (i) => `bench${i}@customer.example` });
    const populateMs = performance.now() - populateStart;
    const enqueueStart = performance.now();
    const { notificationId, deliveries } = await enqueueNotification(
      db,
      {
        kind: 'bench',
        title: 'Fan-out bench',
        content: emailContent('Bench: elevated API errors'),
        audience: { kind: 'topic', topic: 'incidents' },
      },
      new Date(),
    );
    const enqueueMs = performance.now() - enqueueStart;
    if (deliveries !== recipients) throw new Error(`enqueued ${deliveries} deliveries for ${recipients} recipients`);
    log(
      `fanout: ${recipients} recipients written in ${populateMs.toFixed(0)} ms, enqueued in ${enqueueMs.toFixed(0)} ms; starting the worker`,
    );

    const fakeCpuBefore = cpuSecondsOf(fake.pid);
    const worker = startWorker(dataDir, fake, limit);
    const readyAt = await worker.ready;
    const pid = worker.child.pid ?? 0;
    const workerCpuAtReady = cpuSecondsOf(pid);
    const atStart = memoryOf(pid);
    let sampled = atStart?.rssMb ?? 0;
    let hwm = atStart?.hwmMb ?? 0;
    const sample = () => {
      const m = memoryOf(pid);
      if (m) {
        sampled = Math.max(sampled, m.rssMb);
        hwm = Math.max(hwm, m.hwmMb);
      }
    };
    const open = db.$client.prepare(`SELECT count(*) AS n FROM deliveries WHERE notification_id = ? AND status IN ('pending', 'sending')`);
    const deadline = Date.now() + 30 * 60_000;
    let lastReport = Date.now();
    for (let i = 0; ; i++) {
      sample();
      if (i % 2 === 0) {
        const left = (open.get(notificationId) as { n: number }).n;
        if (left === 0) break;
        if (Date.now() - lastReport > 10_000) {
          log(`fanout: ${recipients - left} of ${recipients} done after ${((Date.now() - readyAt) / 1000).toFixed(0)} s`);
          lastReport = Date.now();
        }
      }
      if (Date.now() > deadline) throw new Error(`the worker did not finish:\n${worker.output()}`);
      if (worker.child.exitCode !== null) throw new Error(`the worker exited:\n${worker.output()}`);
      await sleep(50);
    }
    sample();
    const workerCpuAtEnd = cpuSecondsOf(pid);
    const workerCpuSeconds =
      workerCpuAtReady !== null && workerCpuAtEnd !== null ? Number((workerCpuAtEnd - workerCpuAtReady).toFixed(1)) : null;
    const fakeCpuAfter = cpuSecondsOf(fake.pid);
    worker.child.kill('SIGTERM');
    const code = await worker.exited;
    if (code !== 0) throw new Error(`the worker exited with ${code}:\n${worker.output()}`);

    const { lastSent } = db.$client
      .prepare('SELECT max(sent_at) AS lastSent FROM deliveries WHERE notification_id = ?')
      .get(notificationId) as {
      lastSent: number;
    };
    const { sent } = db.$client
      .prepare(`SELECT count(*) AS sent FROM deliveries WHERE notification_id = ? AND status = 'sent'`)
      .get(notificationId) as { sent: number };
    db.$client.close();
    const sendSeconds = (lastSent - readyAt) / 1000;
    const hasProc = atStart !== undefined;
    return {
      recipients,
      limit:
        limit ??
        `default (${RESEND_DEFAULT_LIMITS.ratePerSecond}/s, burst ${RESEND_DEFAULT_LIMITS.burst}, concurrency ${RESEND_DEFAULT_LIMITS.concurrency})`,
      fakeLimit: fakeRequestsPerSecond ? `${fakeRequestsPerSecond} requests per sliding second` : 'none',
      populateMs: Math.round(populateMs),
      enqueueMs: Math.round(enqueueMs),
      sendSeconds,
      deliveriesPerSecond: Math.round(sent / sendSeconds),
      peakRssMb: hasProc ? Math.round(hwm) : null,
      sampledPeakRssMb: hasProc ? Math.round(sampled) : null,
      workerCpuSeconds,
      fakeCpuSeconds: fakeCpuBefore !== null && fakeCpuAfter !== null ? Number((fakeCpuAfter - fakeCpuBefore).toFixed(1)) : null,
      sent,
      notSent: recipients - sent,
      loadAverage: [Number(loadBefore.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))],
      fake: await fake.stats(),
    };
  } finally {
    await fake.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export interface PostgresFanoutFigures {
  recipients: number;
  /** `candor worker` processes sharing the database */
  workers: number;
  populateMs: number;
  enqueueMs: number;
  /** from the first worker saying "running" to the last delivery recorded sent */
  sendSeconds: number;
  /** between the first and the last worker saying "running" */
  startSpreadMs: number;
  deliveriesPerSecond: number;
  /** each worker's VmHWM; null where /proc is unavailable */
  peakRssMb: (number | null)[];
  /** CPU seconds during the fan-out: the workers together (from saying "running"), the PostgreSQL backends serving them, the fake */
  cpuSeconds: { workers: number | null; postgresBackends: number | null; fake: number | null };
  sent: number;
  notSent: number;
  loadAverage: [number, number];
  fake: FakeResendStats;
}

const cpuOf = (pids: readonly number[]): number | null => {
  const each = pids.map(cpuSecondsOf);
  return each.some((c) => c === null) || each.length === 0 ? null : each.reduce<number>((sum, c) => sum + (c ?? 0), 0);
};

/**
 * (a) on PostgreSQL: a database of its own (tests/helpers/postgres.ts), the recipients written and the
 * fan-out enqueued through the stores as the application role, then `workers` × `candor worker` on it.
 */
async function postgresScenario(log: BenchContext['log'], recipients: number, workers: number): Promise<PostgresFanoutFigures> {
  const loadBefore = loadavg()[0] ?? 0;
  const fake = await startFake();
  const dataDir = tempDir('candor-bench-pg-fanout-');
  const pg = await createTestPostgres();
  const database = openPostgresDatabase({ url: pg.appUrl, maxConnections: 2 });
  const started: Worker[] = [];
  try {
    const populateStart = performance.now();
    await addSubscribersTo(database, TEST_KEYS, { count: recipients, channel: 'email', address: (i) => `bench${i}@customer.example` });
    const populateMs = performance.now() - populateStart;
    // The statistics autovacuum keeps: this machine's test server runs with autovacuum off, and without
    // them the planner takes the fresh tables for empty and plans the fan-out's INSERT … SELECT as a
    // nested loop over every recipient (minutes for 100,000 instead of seconds).
    await pg.owner.query('ANALYZE subscribers, subscriber_topics, recipients');
    const enqueueStart = performance.now();
    const { notificationId, deliveries } = await database.transaction((tx) =>
      enqueueOn(
        tx,
        {
          kind: 'bench',
          title: 'Fan-out bench',
          content: emailContent('Bench: elevated API errors'),
          audience: { kind: 'topic', topic: 'incidents' },
        },
        new Date(),
      ),
    );
    const enqueueMs = performance.now() - enqueueStart;
    await database.close();
    if (deliveries !== recipients) throw new Error(`enqueued ${deliveries} deliveries for ${recipients} recipients`);
    log(
      `fanout (a, PostgreSQL): ${recipients} recipients written in ${populateMs.toFixed(0)} ms, enqueued in ${enqueueMs.toFixed(0)} ms; ` +
        `starting ${workers} worker(s)`,
    );
    const env = { ...postgresSecrets(), CANDOR_DATABASE_URL: pg.appUrl };
    const fakePid = fake.pid;
    const fakeCpuBefore = cpuSecondsOf(fakePid);
    for (let i = 0; i < workers; i++) started.push(startWorker(dataDir, fake, 'unlimited', env));
    const readyTimes = await Promise.all(started.map((w) => w.ready));
    const readyAt = Math.min(...readyTimes);
    const pids = started.map((w) => w.child.pid ?? 0);
    const workersCpuAtReady = cpuOf(pids);
    const hwm = pids.map(() => 0);
    const sample = () => {
      pids.forEach((pid, i) => {
        const m = memoryOf(pid);
        if (m) hwm[i] = Math.max(hwm[i] ?? 0, m.hwmMb);
      });
    };
    const open = async () =>
      Number(
        (
          await pg.superuser.query<{ n: string }>(
            `SELECT count(*) AS n FROM deliveries WHERE notification_id = $1 AND status IN ('pending', 'sending')`,
            [notificationId],
          )
        ).rows[0]?.n,
      );
    const deadline = Date.now() + 30 * 60_000;
    let lastReport = Date.now();
    // the application role's backends: the workers' (the bench's own connections are the superuser's)
    const backends = new BackendCpu(pg.appRole);
    for (let i = 0; ; i++) {
      sample();
      backends.sample();
      if (i % 2 === 0) {
        const left = await open();
        if (left === 0) break;
        if (Date.now() - lastReport > 10_000) {
          log(
            `fanout (a, PostgreSQL, ${workers} worker(s)): ${recipients - left} of ${recipients} done after ${((Date.now() - readyAt) / 1000).toFixed(0)} s`,
          );
          lastReport = Date.now();
        }
      }
      if (Date.now() > deadline) throw new Error(`the workers did not finish:\n${started.map((w) => w.output()).join('\n')}`);
      const gone = started.find((w) => w.child.exitCode !== null);
      if (gone) throw new Error(`a worker exited:\n${gone.output()}`);
      await sleep(50);
    }
    sample();
    backends.sample();
    const fakeCpuAfter = cpuSecondsOf(fakePid);
    const workersCpuAtEnd = cpuOf(pids);
    const workersCpu = workersCpuAtReady !== null && workersCpuAtEnd !== null ? workersCpuAtEnd - workersCpuAtReady : null;
    const cpu: PostgresFanoutFigures['cpuSeconds'] = {
      // from the last of them saying "running": loading modules is not the fan-out's
      workers: workersCpu === null ? null : Number(workersCpu.toFixed(1)),
      // from when each backend was first seen (within 50 ms of its start)
      postgresBackends: backends.seconds(),
      fake: fakeCpuBefore !== null && fakeCpuAfter !== null ? Number((fakeCpuAfter - fakeCpuBefore).toFixed(1)) : null,
    };
    for (const w of started) w.child.kill('SIGTERM');
    const codes = await Promise.all(started.map((w) => w.exited));
    const failed = codes.findIndex((c) => c !== 0);
    if (failed >= 0) throw new Error(`a worker exited with ${codes[failed]}:\n${started[failed]?.output()}`);

    const { rows } = await pg.superuser.query<{ last: Date | null; sent: string }>(
      `SELECT max(sent_at) AS last, count(*) FILTER (WHERE status = 'sent') AS sent FROM deliveries WHERE notification_id = $1`,
      [notificationId],
    );
    const sent = Number(rows[0]?.sent ?? 0);
    const lastSent = rows[0]?.last?.getTime() ?? Number.NaN;
    const sendSeconds = (lastSent - readyAt) / 1000;
    return {
      recipients,
      workers,
      populateMs: Math.round(populateMs),
      enqueueMs: Math.round(enqueueMs),
      sendSeconds,
      startSpreadMs: Math.max(...readyTimes) - readyAt,
      deliveriesPerSecond: Math.round(sent / sendSeconds),
      peakRssMb: hwm.map((m) => (m > 0 ? Math.round(m) : null)),
      cpuSeconds: cpu,
      sent,
      notSent: recipients - sent,
      loadAverage: [Number(loadBefore.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))],
      fake: await fake.stats(),
    };
  } finally {
    for (const w of started) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(started.map((w) => w.exited));
    await database.close().catch(() => {});
    await fake.stop();
    await pg.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * CPU per delivery of Candor and its database (the worker; on PostgreSQL also its backends), not the
 * fake's: what the machine must supply for each delivery however busy it is otherwise.
 */
const perDelivery = (seconds: number, sent: number) => (sent > 0 ? `${Math.round((seconds * 1e6) / sent)}` : 'n/a');

/** (a) on both engines, one row per run, from the same `npm run bench`. */
function engineReport(sqlite: FanoutFigures | null, runs: readonly PostgresFanoutFigures[]): string {
  const header = [
    'engine',
    'dispatchers',
    'enqueue',
    'deliveries/s',
    'seconds',
    'vs SQLite',
    'target',
    '',
    'CPU s: workers / PG backends / fake',
    'CPU µs/delivery',
    'peak RSS',
    'dup',
  ];
  const lines: string[][] = [];
  if (sqlite) {
    lines.push([
      'SQLite',
      '1 worker',
      `${sqlite.enqueueMs} ms`,
      sqlite.deliveriesPerSecond.toLocaleString('en'),
      sqlite.sendSeconds.toFixed(1),
      '1.00',
      `>= ${TARGETS.deliveriesPerSecond.toLocaleString('en')}`,
      verdict(sqlite.deliveriesPerSecond >= TARGETS.deliveriesPerSecond),
      `${sqlite.workerCpuSeconds?.toFixed(1) ?? 'n/a'} / - / ${sqlite.fakeCpuSeconds?.toFixed(1) ?? 'n/a'}`,
      sqlite.workerCpuSeconds === null ? 'n/a' : perDelivery(sqlite.workerCpuSeconds, sqlite.sent),
      sqlite.peakRssMb === null ? 'n/a' : `${sqlite.peakRssMb} MB`,
      String(sqlite.fake.duplicates),
    ]);
  }
  for (const r of runs) {
    const two = r.workers === 2;
    const c = r.cpuSeconds;
    lines.push([
      'PostgreSQL',
      `${r.workers} worker${r.workers === 1 ? '' : 's'}`,
      `${r.enqueueMs} ms`,
      r.deliveriesPerSecond.toLocaleString('en'),
      r.sendSeconds.toFixed(1),
      sqlite ? (r.deliveriesPerSecond / sqlite.deliveriesPerSecond).toFixed(2) : 'n/a',
      two ? `>= ${TARGETS.postgresTwoWorkersDeliveriesPerSecond.toLocaleString('en')}` : '-',
      two ? verdict(r.deliveriesPerSecond >= TARGETS.postgresTwoWorkersDeliveriesPerSecond) : '',
      `${c.workers?.toFixed(1) ?? 'n/a'} / ${c.postgresBackends?.toFixed(1) ?? 'n/a'} / ${c.fake?.toFixed(1) ?? 'n/a'}`,
      c.workers === null || c.postgresBackends === null ? 'n/a' : perDelivery(c.workers + c.postgresBackends, r.sent),
      `${r.peakRssMb.map((m) => (m === null ? 'n/a' : `${m}`)).join(' + ')} MB`,
      String(r.fake.duplicates),
    ]);
  }
  const checks = runs.map(
    (r) =>
      `PostgreSQL, ${r.workers} worker(s): ${r.sent} sent, ${r.notSent} not; recipients written in ${r.populateMs} ms; workers started ${r.startSpreadMs} ms apart; ` +
      `fake: ${r.fake.emails} emails in ${r.fake.requests} requests, ${r.fake.replays} idempotent replays, ${r.fake.duplicates} duplicates; ` +
      `load average ${r.loadAverage[0]} → ${r.loadAverage[1]}`,
  );
  return [
    `(a) on both engines: ${UNTHROTTLED.toLocaleString('en')} emails, no rate limit, measured in this run (PostgreSQL: a database of its own, as the application role, fresh for each row)`,
    columns(header, lines),
    "CPU µs/delivery: the workers' and their PostgreSQL backends' CPU per delivery sent (not the fake's), what the machine must supply however busy it is otherwise",
    ...checks,
  ].join('\n');
}

/** (c): one subscriber per recipient, so 100,000 subscribers are 25,000 recipients on each channel. */
const PER_CHANNEL = 25_000;
const CHANNELS = ['email', 'sms', 'slack', 'webhook'] as const satisfies readonly ChannelName[];
/** the four channels the fan-out bench measures (Teams and Discord post like Slack's incoming webhooks) */
type BenchChannel = (typeof CHANNELS)[number];
const WEBHOOK_HOSTS = 10;

interface ChannelLimit {
  /** CANDOR_LIMIT_<CHANNEL> */
  env: string;
  /** messages per second the limit allows across the channel; null when it is per destination and each gets one message */
  messagesPerSecond: number | null;
  describe: string;
}

/**
 * Raised from the defaults (Twilio and Slack: one message per second) as a paid account allows, so
 * that 25,000 messages take about a minute at the limit rather than hours.
 */
const FOUR_CHANNEL_LIMITS: Record<BenchChannel, ChannelLimit> = {
  email: { env: '10/s', messagesPerSecond: 10 * BATCH, describe: `10 requests/s × ${BATCH} emails` },
  sms: { env: '500/s,burst=10,concurrency=16', messagesPerSecond: 500, describe: '500 messages/s from one sender' },
  slack: { env: '1/s,concurrency=16', messagesPerSecond: null, describe: '1/s per Slack channel, each gets one' },
  webhook: {
    env: '50/s,burst=50,concurrency=16',
    messagesPerSecond: 50 * WEBHOOK_HOSTS,
    describe: `50/s per host × ${WEBHOOK_HOSTS} hosts`,
  },
};

interface FakesProcess {
  endpoints: FakeEndpoints;
  pid: number;
  stats(): Promise<FakeStats>;
  stop(): Promise<void>;
}

async function startFakes(): Promise<FakesProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'tests/fakes/serve-fakes.ts'), '--webhook-hosts', String(WEBHOOK_HOSTS)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const end = buffered.indexOf('\n');
      if (end >= 0) resolve(buffered.slice(0, end));
    });
    void exited.then(() => reject(new Error('the fakes exited before listening')));
  });
  return {
    endpoints: JSON.parse(line) as FakeEndpoints,
    pid: child.pid ?? 0,
    stats: () =>
      new Promise((resolve) => {
        child.once('message', (message) => resolve(message as FakeStats));
        child.send({ type: 'stats' });
      }),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** User plus system CPU seconds a process has used, from /proc; null elsewhere. */
function cpuSecondsOf(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

export interface ChannelFigures {
  recipients: number;
  sent: number;
  limit: string;
  limitDescription: string;
  limitMessagesPerSecond: number | null;
  /** from the server serving to this channel's last delivery recorded sent */
  seconds: number;
  messagesPerSecond: number;
  /** measured over allowed; null where the limit is per destination */
  shareOfLimit: number | null;
  /** the most requests the provider accepted in any one second (webhooks: the busiest host) */
  peakRequestsPerSecond: number;
  rateLimited: number;
  duplicates: number;
}

export interface FourChannelFigures {
  subscribers: number;
  populateMs: number;
  enqueueMs: number;
  sendSeconds: number;
  channels: Record<BenchChannel, ChannelFigures>;
  /** the server process's VmHWM, and its largest sampled VmRSS; null where /proc is unavailable */
  serverPeakRssMb: number | null;
  serverSampledPeakRssMb: number | null;
  /** VmRSS when it began serving (its dispatcher starts sending at once) */
  serverRssAtStartMb: number | null;
  /** CPU seconds used during the fan-out: by the server, and by the fakes answering it */
  serverCpuSeconds: number | null;
  fakesCpuSeconds: number | null;
  loadAverage: [number, number];
}

function benchAddress(endpoints: FakeEndpoints, channel: BenchChannel, i: number): string {
  switch (channel) {
    case 'email':
      return `bench${i}@customer.example`;
    case 'sms':
      return `+1415${String(5_000_000 + i).padStart(7, '0')}`;
    case 'slack':
      return `C${String(i).padStart(9, '0')}`;
    case 'webhook':
      return `${endpoints.webhooks[i % endpoints.webhooks.length]?.url}/hooks/${i}`;
  }
}

async function fourChannels(log: BenchContext['log']): Promise<FourChannelFigures> {
  const loadBefore = loadavg()[0] ?? 0;
  const fakes = await startFakes();
  const { endpoints } = fakes;
  const dataDir = tempDir('candor-bench-four-');
  const db = openDatabase(join(dataDir, 'candor.db'));
  try {
    const populateStart = performance.now();
    for (const channel of CHANNELS) {
      addSubscribers(db, TEST_KEYS, {
        count: PER_CHANNEL,
        channel,
        address: (i) => benchAddress(endpoints, channel, i),
        secret: (i) =>
          channel === 'slack'
            ? `xoxb-bench-ws${i % 20}-token`
            : channel === 'webhook'
              ? (endpoints.webhooks[i % endpoints.webhooks.length]?.secret ?? null)
              : null,
      });
    }
    const populateMs = performance.now() - populateStart;
    const line = 'Bench: elevated API errors';
    const enqueueStart = performance.now();
    const { deliveries } = await enqueueNotification(
      db,
      {
        kind: 'bench',
        title: 'Four-channel bench',
        content: {
          ...emailContent(line),
          sms: { body: `${line}. We are investigating; next update within 30 minutes.`, link: 'https://trust.candor.test/incidents/1' },
          slack: { text: line, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: line } }] },
          webhook: { type: 'incident.updated', data: { incident: 1 } },
        },
        audience: { kind: 'topic', topic: 'incidents' },
      },
      new Date(),
    );
    const enqueueMs = performance.now() - enqueueStart;
    const total = PER_CHANNEL * CHANNELS.length;
    if (deliveries !== total) throw new Error(`enqueued ${deliveries} deliveries for ${total} recipients`);
    log(
      `fanout (c): ${total} subscribers written in ${populateMs.toFixed(0)} ms, enqueued in ${enqueueMs.toFixed(0)} ms; starting the server`,
    );

    const port = await freePort();
    const env: Record<string, string> = {
      ...providerEnv({ port, resend: endpoints.resend, twilio: endpoints.twilio, slack: endpoints.slack, testKeys: true }),
      CANDOR_WEBHOOK_ALLOW_HOSTS: endpoints.webhooks.map((w) => new URL(w.url).host).join(','),
      // the server itself dispatches, whatever the developer's shell says
      CANDOR_WORKER: '',
      ...Object.fromEntries(CHANNELS.map((c) => [`CANDOR_LIMIT_${c.toUpperCase()}`, FOUR_CHANNEL_LIMITS[c].env])),
    };
    const fakesCpuBefore = cpuSecondsOf(fakes.pid);
    const server = await startServer({ env, dataDir, port });
    const readyAt = Date.now();
    const pid = server.process.pid ?? 0;
    const atStart = memoryOf(pid);
    let sampled = atStart?.rssMb ?? 0;
    let hwm = atStart?.hwmMb ?? 0;
    let cpu: number | null = null;
    const open = db.$client.prepare(`SELECT count(*) AS n FROM deliveries WHERE status IN ('pending', 'sending')`);
    const deadline = Date.now() + 15 * 60_000;
    let lastReport = Date.now();
    try {
      for (let i = 0; ; i++) {
        const m = memoryOf(pid);
        if (m) {
          sampled = Math.max(sampled, m.rssMb);
          hwm = Math.max(hwm, m.hwmMb);
        }
        if (i % 4 === 0) {
          const left = (open.get() as { n: number }).n;
          if (left === 0) break;
          if (Date.now() - lastReport > 10_000) {
            log(`fanout (c): ${total - left} of ${total} done after ${((Date.now() - readyAt) / 1000).toFixed(0)} s`);
            lastReport = Date.now();
          }
        }
        if (Date.now() > deadline) throw new Error(`the server did not finish:\n${server.output().slice(-3000)}`);
        if (server.process.exitCode !== null) throw new Error(`the server exited:\n${server.output().slice(-3000)}`);
        await sleep(50);
      }
      const last = memoryOf(pid);
      if (last) hwm = Math.max(hwm, last.hwmMb);
      cpu = cpuSecondsOf(pid);
    } finally {
      await server.stop();
    }
    const fakesCpuAfter = cpuSecondsOf(fakes.pid);
    const stats = await fakes.stats();
    const rows = db.$client
      .prepare(`SELECT channel, count(*) AS n, max(sent_at) AS last FROM deliveries WHERE status = 'sent' GROUP BY channel`)
      .all() as { channel: BenchChannel; n: number; last: number }[];
    const byChannel = new Map(rows.map((r) => [r.channel, r]));
    const channels = Object.fromEntries(
      CHANNELS.map((c): [BenchChannel, ChannelFigures] => {
        const row = byChannel.get(c);
        const seconds = row ? (row.last - readyAt) / 1000 : Number.NaN;
        const perSecond = row ? row.n / seconds : 0;
        const limit = FOUR_CHANNEL_LIMITS[c];
        return [
          c,
          {
            recipients: PER_CHANNEL,
            sent: row?.n ?? 0,
            limit: limit.env,
            limitDescription: limit.describe,
            limitMessagesPerSecond: limit.messagesPerSecond,
            seconds: Number(seconds.toFixed(1)),
            messagesPerSecond: Math.round(perSecond),
            shareOfLimit: limit.messagesPerSecond ? Number((perSecond / limit.messagesPerSecond).toFixed(3)) : null,
            peakRequestsPerSecond: stats[c].peakRequestsPerSecond,
            rateLimited: stats[c].rateLimited,
            duplicates: stats[c].duplicates,
          },
        ];
      }),
    ) as Record<BenchChannel, ChannelFigures>;
    db.$client.close();
    const hasProc = atStart !== undefined;
    return {
      subscribers: total,
      populateMs: Math.round(populateMs),
      enqueueMs: Math.round(enqueueMs),
      sendSeconds: Math.max(...CHANNELS.map((c) => channels[c].seconds)),
      channels,
      serverPeakRssMb: hasProc ? Math.round(hwm) : null,
      serverSampledPeakRssMb: hasProc ? Math.round(sampled) : null,
      serverRssAtStartMb: atStart ? Math.round(atStart.rssMb) : null,
      serverCpuSeconds: cpu,
      fakesCpuSeconds: fakesCpuBefore !== null && fakesCpuAfter !== null ? Number((fakesCpuAfter - fakesCpuBefore).toFixed(1)) : null,
      loadAverage: [Number(loadBefore.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))],
    };
  } finally {
    if (db.$client.open) db.$client.close();
    await fakes.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const verdict = (ok: boolean) => (ok ? 'meets' : 'MISSES');

function report(a: FanoutFigures, b: FanoutFigures, idleMb: number | null, bound: number, ratio: number): string {
  const rows: [string, string, string, string][] = [
    [
      `(a) enqueue of ${a.recipients.toLocaleString('en')} deliveries`,
      `${a.enqueueMs} ms`,
      `< ${TARGETS.enqueueMs} ms`,
      verdict(a.enqueueMs < TARGETS.enqueueMs),
    ],
    [
      '(a) deliveries/s, no rate limit',
      `${a.deliveriesPerSecond.toLocaleString('en')} /s (${a.sendSeconds.toFixed(1)} s)`,
      `>= ${TARGETS.deliveriesPerSecond.toLocaleString('en')} /s`,
      verdict(a.deliveriesPerSecond >= TARGETS.deliveriesPerSecond),
    ],
    [
      '(a) worker peak RSS (VmHWM)',
      a.peakRssMb === null ? 'n/a (no /proc)' : `${a.peakRssMb} MB (sampled ${a.sampledPeakRssMb} MB; idle worker ${idleMb} MB)`,
      `< ${TARGETS.peakRssMb} MB`,
      a.peakRssMb === null ? '-' : verdict(a.peakRssMb < TARGETS.peakRssMb),
    ],
    [
      `(b) ${b.recipients.toLocaleString('en')} at ${RESEND_RATE} req/s × ${BATCH}`,
      `${b.sendSeconds.toFixed(1)} s / ${bound} s = ${ratio.toFixed(3)}`,
      `<= ${TARGETS.rateLimitedRatio.toFixed(2)}`,
      verdict(ratio <= TARGETS.rateLimitedRatio),
    ],
  ];
  const widths = [0, 1, 2, 3].map((i) =>
    Math.max(...rows.map((r) => r[i]?.length ?? 0), ['figure', 'measured', 'target', ''][i]?.length ?? 0),
  );
  const format = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  const checks = [a, b].map(
    (f) =>
      `${f.recipients.toLocaleString('en')} recipients: ${f.sent} sent, ${f.notSent} not; fake: ${f.fake.emails} emails in ${f.fake.requests} requests, ` +
      `${f.fake.rateLimited} × 429, ${f.fake.replays} idempotent replays, ${f.fake.duplicates} duplicates (fake limit: ${f.fakeLimit}); ` +
      `load average ${f.loadAverage[0]} → ${f.loadAverage[1]}`,
  );
  return [format(['figure', 'measured', 'target', '']), format(widths.map((w) => '-'.repeat(w))), ...rows.map(format), '', ...checks].join(
    '\n',
  );
}

/** Per channel of (c): measured messages per second against what its configured limit allows. */
function fourChannelReport(c: FourChannelFigures): string {
  const rows = CHANNELS.map((name) => {
    const f = c.channels[name];
    return [
      name,
      `${f.limit} (${f.limitDescription})`,
      f.limitMessagesPerSecond === null ? 'per destination' : `${f.limitMessagesPerSecond.toLocaleString('en')} /s`,
      `${f.messagesPerSecond.toLocaleString('en')} /s (${f.seconds} s)`,
      f.shareOfLimit === null ? '-' : `${(f.shareOfLimit * 100).toFixed(1)} %`,
      String(f.peakRequestsPerSecond),
      `${f.sent}/${f.recipients}`,
      String(f.rateLimited),
      String(f.duplicates),
    ];
  });
  const head = ['channel', 'CANDOR_LIMIT_*', 'allows', 'measured', 'of limit', 'busiest second (requests)', 'sent', '429s', 'duplicates'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const format = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    `(c) ${c.subscribers.toLocaleString('en')} subscribers, ${PER_CHANNEL.toLocaleString('en')} per channel, all four at once, dispatched by the server process; ` +
      `enqueued in ${c.enqueueMs} ms; the last channel done after ${c.sendSeconds} s`,
    format(head),
    format(widths.map((w) => '-'.repeat(w))),
    ...rows.map(format),
    `CPU during the fan-out: server ${c.serverCpuSeconds ?? 'n/a'} s, fakes ${c.fakesCpuSeconds ?? 'n/a'} s; load average ${c.loadAverage[0]} → ${c.loadAverage[1]}`,
  ].join('\n');
}

export interface MemoryFigures {
  /** a worker with nothing to send */
  idleWorkerPeakRssMb: number | null;
  /** (a): the worker sending 100,000 emails, against the target */
  workerPeakRssMb: number | null;
  workerTargetMb: number;
  /** (c): the server process when it began serving, and at its peak while dispatching on four channels (no target) */
  serverRssAtStartMb: number | null;
  serverPeakRssMb: number | null;
}

function memoryReport(m: MemoryFigures): string {
  const mb = (v: number | null) => (v === null ? 'n/a (no /proc)' : `${v} MB`);
  const rows: [string, string, string][] = [
    ['idle worker', mb(m.idleWorkerPeakRssMb), ''],
    [
      `(a) worker, ${UNTHROTTLED.toLocaleString('en')} emails`,
      mb(m.workerPeakRssMb),
      m.workerPeakRssMb === null ? '' : `target < ${m.workerTargetMb} MB: ${verdict(m.workerPeakRssMb < m.workerTargetMb)}`,
    ],
    [
      `(c) server, ${(PER_CHANNEL * CHANNELS.length).toLocaleString('en')} messages on four channels`,
      mb(m.serverPeakRssMb),
      `${mb(m.serverRssAtStartMb)} when it began serving`,
    ],
  ];
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)));
  return [
    'memory: peak RSS (VmHWM) of the process doing the dispatching',
    ...rows.map(([what, value, note]) => `  ${what.padEnd(widths[0] ?? 0)}  ${value.padEnd(widths[1] ?? 0)}  ${note}`.trimEnd()),
  ].join('\n');
}

export const fanout: Benchmark = {
  name: 'fanout',
  description:
    `fan-out through the real SDKs to fakes in their own processes: ${UNTHROTTLED.toLocaleString('en')} emails unthrottled, ` +
    `${THROTTLED.toLocaleString('en')} at the default limit, ${(PER_CHANNEL * CHANNELS.length).toLocaleString('en')} subscribers on four channels at once; peak RSS; ` +
    `with PostgreSQL chosen, the unthrottled emails on PostgreSQL too, with one and with two workers`,
  async run({ engines, log }: BenchContext) {
    const onSqlite = engines.has('sqlite');
    const postgresRuns: PostgresFanoutFigures[] = [];
    let a: FanoutFigures | null = null;
    const idleMb = onSqlite ? await idleWorkerRss(log) : null;
    if (onSqlite) {
      log(`fanout (a): ${UNTHROTTLED} recipients, CANDOR_LIMIT_EMAIL=unlimited…`);
      a = await scenario(log, UNTHROTTLED, 'unlimited', undefined);
    }
    if (engines.has('postgres')) {
      for (const workers of [1, 2]) {
        log(`fanout (a, PostgreSQL): ${UNTHROTTLED} recipients, CANDOR_LIMIT_EMAIL=unlimited, ${workers} worker(s) on one database…`);
        postgresRuns.push(await postgresScenario(log, UNTHROTTLED, workers));
      }
    }
    const engineSection = postgresRuns.length > 0 ? engineReport(a, postgresRuns) : null;
    if (!a) {
      return {
        report: engineSection ?? '',
        summary: { targets: TARGETS, postgres: postgresRuns },
      };
    }
    log(`fanout (b): ${THROTTLED} recipients at the default limit, the fake enforcing ${RESEND_RATE} requests/s…`);
    const b = await scenario(log, THROTTLED, undefined, RESEND_RATE);
    const bound = THROTTLED / (RESEND_RATE * BATCH);
    const ratio = b.sendSeconds / bound;
    log(`fanout (c): ${PER_CHANNEL * CHANNELS.length} subscribers on four channels at once…`);
    const c = await fourChannels(log);
    const memory: MemoryFigures = {
      idleWorkerPeakRssMb: idleMb,
      workerPeakRssMb: a.peakRssMb,
      workerTargetMb: TARGETS.peakRssMb,
      serverRssAtStartMb: c.serverRssAtStartMb,
      serverPeakRssMb: c.serverPeakRssMb,
    };
    return {
      report: [
        report(a, b, idleMb, bound, ratio),
        ...(engineSection ? [engineSection] : []),
        fourChannelReport(c),
        memoryReport(memory),
      ].join('\n\n'),
      summary: {
        targets: TARGETS,
        idleWorkerPeakRssMb: idleMb,
        unthrottled: a,
        ...(postgresRuns.length > 0 ? { postgres: postgresRuns } : {}),
        rateLimited: { ...b, lowerBoundSeconds: bound, ratio },
        fourChannels: c,
        memory,
      },
    };
  },
};
