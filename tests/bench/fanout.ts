/**
 * The notification engine at scale, through the real `resend` SDK:
 *
 * (a) 100,000 email recipients, no rate limit: how long the fan-out (one INSERT … SELECT)
 *     takes, how many deliveries per second the dispatcher sends, and its peak RSS;
 * (b) 10,000 recipients with Resend's default limit (2 requests/s of 100 emails): the time
 *     taken over the lower bound N / rate = 50 s.
 *
 * Candor's side is `node src/cli.ts worker`, as an operator runs it; the fake Resend runs in
 * another process (tests/fakes/serve-resend.ts), so the worker's RSS (VmHWM, the kernel's
 * high-water mark, read from /proc) is its own. The bench process only writes the database
 * beforehand and watches. Figures are reported next to their targets, never asserted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../../db/client.ts';
import { RESEND_DEFAULT_LIMITS } from '../../src/core/notify/channels/email-resend.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import type { FakeResendStats } from '../fakes/serve-resend.ts';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';
import { addSubscribers, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { ROOT, tempDir } from '../helpers/server.ts';

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
};

interface FakeProcess {
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

interface Memory {
  rssMb: number;
  hwmMb: number;
}

/** VmRSS and VmHWM of a process, from /proc (Linux); undefined elsewhere or once it has exited. */
function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

interface Worker {
  child: ChildProcess;
  /** Date.now() when the worker said it was running */
  ready: Promise<number>;
  exited: Promise<number | null>;
  output: () => string;
}

function startWorker(dataDir: string, fake: FakeProcess, limit: string | undefined): Worker {
  const key = TEST_KEYS.keys[0];
  if (!key) throw new Error('no test key');
  const child = spawn(process.execPath, ['--max-semi-space-size=4', join(ROOT, 'src/cli.ts'), 'worker'], {
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
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
    const { notificationId, deliveries } = enqueueNotification(
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

    const worker = startWorker(dataDir, fake, limit);
    const readyAt = await worker.ready;
    const pid = worker.child.pid ?? 0;
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

export const fanout: Benchmark = {
  name: 'fanout',
  description: `email fan-out through the resend SDK to a fake Resend in its own process: ${UNTHROTTLED.toLocaleString('en')} unthrottled, ${THROTTLED.toLocaleString('en')} at the default limit`,
  async run({ log }: BenchContext) {
    const idleMb = await idleWorkerRss(log);
    log(`fanout (a): ${UNTHROTTLED} recipients, CANDOR_LIMIT_EMAIL=unlimited…`);
    const a = await scenario(log, UNTHROTTLED, 'unlimited', undefined);
    log(`fanout (b): ${THROTTLED} recipients at the default limit, the fake enforcing ${RESEND_RATE} requests/s…`);
    const b = await scenario(log, THROTTLED, undefined, RESEND_RATE);
    const bound = THROTTLED / (RESEND_RATE * BATCH);
    const ratio = b.sendSeconds / bound;
    return {
      report: report(a, b, idleMb, bound, ratio),
      summary: {
        targets: TARGETS,
        idleWorkerPeakRssMb: idleMb,
        unthrottled: a,
        rateLimited: { ...b, lowerBoundSeconds: bound, ratio },
      },
    };
  },
};
