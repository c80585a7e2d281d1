/**
 * A reader surge during an incident: 256 connections on /status and on an
 * incident page while a responder publishes updates through the console, so
 * the in-memory snapshots (src/middleware.ts) are invalidated and rebuilt
 * under load. The same pages are then served as static files by Debian's
 * nginx on loopback with the same load, as the yardstick for "fast enough".
 * How nginx is set up and measured: tests/bench/common.ts.
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';
import {
  checkSameBytes,
  columns,
  copyPage,
  declareIncident,
  HEADERS,
  type HttpFigures,
  INCIDENT,
  measure,
  memoryOf,
  type Nginx,
  nonSuccess,
  preflight,
  type Run,
  yardstick,
} from './common.ts';

const CONNECTIONS = 256;
const WARMUP_SECONDS = 2;
const RUN_SECONDS = 10;
/** An update every 2 s: five snapshot invalidations per page in each 10 s run. */
const PUBLISH_EVERY_MS = 2_000;
const LOAD = { connections: CONNECTIONS, warmupSeconds: WARMUP_SECONDS, runSeconds: RUN_SECONDS };
const TARGETS = { latencyP99Ms: 50, failures: 0, ratioToNginx: 0.5 };

interface Publication {
  /** seconds into the measured run */
  atSeconds: number;
  status: number;
  ms: number;
  /** whether the next GET of the incident page showed the update */
  visible: boolean;
}

/** Candor under load while the responder publishes an update every PUBLISH_EVERY_MS. */
async function surgeCandor(
  url: string,
  path: string,
  pids: readonly number[],
  publish: () => Promise<Omit<Publication, 'atSeconds'>>,
): Promise<{ run: Run; publications: Publication[] }> {
  const publications: Publication[] = [];
  const run = await measure(url, path, pids, LOAD, async (done) => {
    const started = Date.now();
    // Halfway into each interval (1, 3, 5, 7 and 9 s), so every update lands inside the run.
    for (let at = PUBLISH_EVERY_MS / 2; at < RUN_SECONDS * 1000; at += PUBLISH_EVERY_MS) {
      await sleep(Math.max(0, started + at - Date.now()));
      if (done()) break;
      const atSeconds = Number(((Date.now() - started) / 1000).toFixed(1));
      publications.push({ atSeconds, ...(await publish()) });
    }
  });
  return { run, publications };
}

async function surgeNginx(nginx: Nginx, path: string): Promise<Run> {
  return measure(nginx.url, path, nginx.pids, LOAD);
}
function publisher(baseUrl: string, responder: ConsoleClient, incidentId: number): () => Promise<Omit<Publication, 'atSeconds'>> {
  let n = 0;
  return async () => {
    n++;
    const body = `Update ${n} of the surge: the rollback is reaching region after region; error rates are falling.`;
    const start = performance.now();
    const res = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
      incidentId: String(incidentId),
      status: n % 2 === 1 ? 'identified' : 'monitoring',
      body,
    });
    const ms = performance.now() - start;
    const page = await fetch(`${baseUrl}/incidents/${incidentId}`, { headers: HEADERS });
    return { status: res.status, ms: Number(ms.toFixed(1)), visible: (await page.text()).includes(body) };
  };
}

interface PageResult {
  path: string;
  candor: Run;
  nginx: Run | null;
  /** nginx's Content-Encoding for `Accept-Encoding: br, gzip` */
  nginxEncoding: string | null;
  ratio: number | null;
  publications: Publication[];
}

const verdict = (ok: boolean) => (ok ? 'meets' : 'MISSES');
const failures = (f: HttpFigures) => f.errors + f.non2xx;

function report(pages: readonly PageResult[], nginxLine: string, loadAverage: readonly [number, number]): string {
  const header = [
    'page',
    'server',
    'req/s (mean)',
    'p50 ms',
    'p99 ms',
    'requests',
    'errors',
    'non-2xx',
    'bytes/resp',
    'server CPU',
    'CPU µs/req',
    'autocannon CPU',
  ];
  const row = (path: string, server: string, { figures: f, bytesPerResponse, cpu }: Run) => [
    path,
    server,
    f.requestsPerSecond.toFixed(0),
    f.latencyP50Ms.toFixed(1),
    f.latencyP99Ms.toFixed(1),
    String(f.requests),
    String(f.errors),
    f.non2xx === 0 ? '0' : `${f.non2xx} (${nonSuccess(f.statusCodes)})`,
    String(bytesPerResponse),
    cpu ? `${cpu.serverPercent} %` : 'n/a',
    cpu ? cpu.serverMicrosecondsPerRequest.toFixed(0) : 'n/a',
    cpu ? `${cpu.loadGeneratorPercent} %` : 'n/a',
  ];
  const lines = pages.flatMap((p) => [row(p.path, 'candor', p.candor), ...(p.nginx ? [row(p.path, 'nginx', p.nginx)] : [])]);
  const checks = pages.flatMap((p) => {
    const f = p.candor.figures;
    return [
      [`${p.path} p99`, `${f.latencyP99Ms.toFixed(1)} ms`, `< ${TARGETS.latencyP99Ms} ms`, verdict(f.latencyP99Ms < TARGETS.latencyP99Ms)],
      [`${p.path} errors + non-2xx`, String(failures(f)), String(TARGETS.failures), verdict(failures(f) === TARGETS.failures)],
      p.ratio === null
        ? [`${p.path} candor/nginx`, 'n/a (no nginx)', `>= ${TARGETS.ratioToNginx}`, '-']
        : [`${p.path} candor/nginx`, p.ratio.toFixed(2), `>= ${TARGETS.ratioToNginx}`, verdict(p.ratio >= TARGETS.ratioToNginx)],
    ];
  });
  const notes = pages.map((p) => {
    const ok = p.publications.filter((u) => u.status === 303);
    const ms = ok.map((u) => u.ms);
    const range = ms.length ? `${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)} ms` : 'n/a';
    return (
      `${p.path}: ${p.publications.length} updates published during the run (${ok.length} answered 303, in ${range}; ` +
      `shown on the next request: ${p.publications.filter((u) => u.visible).length}/${p.publications.length})` +
      (p.nginxEncoding ? `; nginx answered with ${p.nginxEncoding}` : '')
    );
  });
  const cost = pages.flatMap((p) => {
    const ours = p.candor.cpu?.serverMicrosecondsPerRequest;
    const theirs = p.nginx?.cpu?.serverMicrosecondsPerRequest;
    return ours && theirs
      ? [`${p.path}: CPU per request ${ours.toFixed(0)} µs for Candor, ${theirs.toFixed(0)} µs for nginx (${(ours / theirs).toFixed(1)}×)`]
      : [];
  });
  const busiest = Math.max(...pages.flatMap((p) => [p.candor.cpu?.loadGeneratorPercent ?? 0, p.nginx?.cpu?.loadGeneratorPercent ?? 0]));
  const bound =
    busiest >= 90
      ? [
          `autocannon used up to ${busiest} % of a core: it, not the servers, set the pace, which brings both req/s figures together ` +
            'and flatters the ratio; CPU µs per request compares the servers themselves.',
        ]
      : [];
  const verdicts = columns(['figure', 'measured', 'target', ''], checks);
  // Other work on the machine (a build, a test run) skews every figure.
  const busy = `load average (1 min) ${loadAverage[0]} before, ${loadAverage[1]} after`;
  return [columns(header, lines), '', verdicts, '', ...notes, nginxLine, ...cost, ...bound, busy].join('\n');
}

export const surge: Benchmark = {
  name: 'surge',
  description: `/status and an incident page with ${CONNECTIONS} connections for ${RUN_SECONDS} s each while updates are published, against nginx serving the same bytes`,
  async run({ url, dataDir, serverPid, log }: BenchContext) {
    const db = openTestDb(dataDir);
    const responder = new ConsoleClient(url);
    try {
      responder.setCookie('candor_session', signedInStaff(db, 'responder').token);
    } finally {
      db.$client.close();
    }
    const incidentId = await declareIncident(responder);
    const paths = ['/status', `/incidents/${incidentId}`];
    for (const path of paths) await preflight(`${url}${path}`);
    const copies = await Promise.all(paths.map((path) => copyPage(url, path)));
    for (const copy of copies) {
      if (!copy.identity.toString('utf8').includes(INCIDENT.title)) throw new Error(`${copy.path} does not show the incident`);
    }

    const { nginx, binary, line: nginxLine } = await yardstick(copies, (line) => log(`surge: ${line}`));

    const publish = publisher(url, responder, incidentId);
    const results: PageResult[] = [];
    const loadBefore = loadavg()[0] ?? 0;
    try {
      for (const copy of copies) {
        log(
          `surge: ${copy.path} on Candor (warm-up ${WARMUP_SECONDS} s, then ${RUN_SECONDS} s with an update every ${PUBLISH_EVERY_MS / 1000} s)…`,
        );
        const { run: candor, publications } = await surgeCandor(url, copy.path, serverPid ? [serverPid] : [], publish);
        let nginxRun: Run | null = null;
        let nginxEncoding: string | null = null;
        if (nginx) {
          nginxEncoding = await checkSameBytes(nginx, copy);
          log(`surge: ${copy.path} on nginx (warm-up ${WARMUP_SECONDS} s, then ${RUN_SECONDS} s)…`);
          nginxRun = await surgeNginx(nginx, copy.path);
        }
        results.push({
          path: copy.path,
          candor,
          nginx: nginxRun,
          nginxEncoding,
          ratio: nginxRun ? candor.figures.requestsPerSecond / nginxRun.figures.requestsPerSecond : null,
          publications,
        });
      }
    } finally {
      await nginx?.stop();
    }
    const loadAverage: [number, number] = [Number(loadBefore.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))];
    // The bench's server is started for it, so its high-water mark is the surge's.
    const memory = serverPid ? memoryOf(serverPid) : undefined;
    const peakRssMb = memory ? Math.round(memory.hwmMb) : null;
    return {
      report: `${report(results, nginxLine, loadAverage)}\nserver peak RSS (VmHWM): ${peakRssMb === null ? 'not available (/proc)' : `${peakRssMb} MB`}`,
      summary: {
        serverPeakRssMb: peakRssMb,
        connections: CONNECTIONS,
        warmupSeconds: WARMUP_SECONDS,
        runSeconds: RUN_SECONDS,
        publishEveryMs: PUBLISH_EVERY_MS,
        headers: HEADERS,
        targets: TARGETS,
        nginx: nginx ? { binary, version: nginx.version, workers: nginx.workers, brotliStatic: nginx.brotli } : null,
        nginxNote: nginxLine,
        loadAverage,
        results: results.map((r) => ({
          ...r,
          meets: {
            latencyP99: r.candor.figures.latencyP99Ms < TARGETS.latencyP99Ms,
            noFailures: failures(r.candor.figures) === TARGETS.failures,
            ratioToNginx: r.ratio === null ? null : r.ratio >= TARGETS.ratioToNginx,
          },
        })),
      },
    };
  },
};
