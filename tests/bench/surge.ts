/**
 * A reader surge during an incident: 256 connections on /status and on an
 * incident page while a responder publishes updates through the console, so
 * the in-memory snapshots (src/middleware.ts) are invalidated and rebuilt
 * under load. The same pages are then served as static files by Debian's
 * nginx on loopback with the same load, as the yardstick for "fast enough".
 *
 * nginx serves the exact bytes Candor answered, fetched beforehand: the
 * identity body, and the brotli and gzip bodies Candor precompressed, with
 * `brotli_static`/`gzip_static`. Neither side compresses per request, both
 * send the same body for `Accept-Encoding: br, gzip`, so the comparison is
 * the cost of answering, not of compressing. Without Debian's brotli module
 * (libnginx-mod-http-brotli-static) nginx answers with its gzip file and the
 * report says so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { freePort, tempDir } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';
import { columns, figuresOf, HEADERS, type HttpFigures, nonSuccess, preflight } from './http.ts';

const CONNECTIONS = 256;
const WARMUP_SECONDS = 2;
const RUN_SECONDS = 10;
/** An update every 2 s: five snapshot invalidations per page in each 10 s run. */
const PUBLISH_EVERY_MS = 2_000;
const TARGETS = { latencyP99Ms: 50, failures: 0, ratioToNginx: 0.5 };
/** Where Debian's libnginx-mod-http-brotli-static puts its module. */
const BROTLI_STATIC_MODULE = '/usr/lib/nginx/modules/ngx_http_brotli_static_module.so';

const INCIDENT = {
  title: 'Elevated error rates on the public API',
  kind: 'outage',
  severity: 'major',
  status: 'investigating',
  'component:public-api': 'partial_outage',
  'component:web-app': 'degraded',
  body: 'We are investigating elevated error rates on the public API. Some requests fail with a server error.',
};

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** GET without decoding the body: the bytes on the wire, which nginx will serve as they are. */
function rawGet(url: string, acceptEncoding: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { 'accept-encoding': acceptEncoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') headers[name] = value;
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface PageCopy {
  path: string;
  contentType: string;
  /** the headers nginx adds back, so both answers are about the same size */
  extraHeaders: [string, string][];
  identity: Buffer;
  br: Buffer;
  gzip: Buffer;
}

/** Neither about the body nor per connection; nginx sets its own. */
const NOT_COPIED = new Set([
  'date',
  'connection',
  'keep-alive',
  'content-length',
  'content-encoding',
  'content-type',
  'transfer-encoding',
  'vary',
  'etag',
  'last-modified',
]);

async function copyPage(baseUrl: string, path: string): Promise<PageCopy> {
  const [identity, br, gzip] = await Promise.all(['identity', 'br', 'gzip'].map((e) => rawGet(`${baseUrl}${path}`, e)));
  if (!identity || !br || !gzip) throw new Error('unreachable');
  for (const [encoding, res] of [
    ['identity', identity],
    ['br', br],
    ['gzip', gzip],
  ] as const) {
    const got = res.headers['content-encoding'] ?? 'identity';
    if (res.status !== 200 || got !== encoding) throw new Error(`GET ${path} for ${encoding} answered ${res.status} with ${got}`);
  }
  return {
    path,
    contentType: identity.headers['content-type'] ?? 'text/html',
    extraHeaders: Object.entries(identity.headers).filter(([name]) => !NOT_COPIED.has(name)),
    identity: identity.body,
    br: br.body,
    gzip: gzip.body,
  };
}

/** nginx binary: PATH first, then where Debian puts it (often outside a non-root PATH). */
function findNginx(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, 'nginx');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** nginx's quoted strings: `$` would start a variable and cannot be escaped, so such a header is left out. */
function quoted(value: string): string | null {
  return value.includes('$') ? null : `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

function nginxConf(dir: string, port: number, pages: readonly PageCopy[], brotli: boolean): string {
  const locations = pages.map((page) => {
    const headers = page.extraHeaders.flatMap(([name, value]) => {
      const q = quoted(value);
      return q ? [`      add_header ${name} ${q};`] : [];
    });
    return [`    location = ${page.path} {`, `      default_type ${quoted(page.contentType) ?? 'text/html'};`, ...headers, '    }'].join(
      '\n',
    );
  });
  return `# Written by tests/bench/surge.ts for one run.
${brotli ? `load_module ${BROTLI_STATIC_MODULE};\n` : ''}daemon off;
worker_processes auto;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  types { }
  sendfile on;
  tcp_nopush on;
  # Like Node's server, which keeps a connection for any number of requests (nginx's default is 1000).
  keepalive_requests 1000000;
  keepalive_timeout 5s;
  # Precompressed files, as Candor's snapshot: the same bytes, no compression per request.
  gzip_static on;
  gzip_vary on;
  ${brotli ? 'brotli_static on;' : '# brotli_static: the module is not installed'}
  client_body_temp_path ${join(dir, 'tmp/body')};
  proxy_temp_path ${join(dir, 'tmp/proxy')};
  fastcgi_temp_path ${join(dir, 'tmp/fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp/uwsgi')};
  scgi_temp_path ${join(dir, 'tmp/scgi')};
  server {
    listen 127.0.0.1:${port};
    root ${join(dir, 'www')};
${locations.join('\n')}
  }
}
`;
}

interface Nginx {
  url: string;
  version: string;
  workers: number;
  brotli: boolean;
  /** the master and its workers, whose CPU time is nginx's */
  pids: number[];
  stop(): Promise<void>;
}

async function startNginx(binary: string, pages: readonly PageCopy[], log: BenchContext['log']): Promise<Nginx> {
  const dir = tempDir('candor-bench-nginx-');
  // nginx started as root runs its workers as nobody, who must be able to read the files.
  chmodSync(dir, 0o755);
  for (const page of pages) {
    const file = join(dir, 'www', page.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, page.identity);
    writeFileSync(`${file}.br`, page.br);
    writeFileSync(`${file}.gz`, page.gzip);
  }
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', t), { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const args = ['-p', dir, '-c', conf, '-e', 'stderr'];
  let brotli = false;
  try {
    accessSync(BROTLI_STATIC_MODULE, constants.R_OK);
    writeFileSync(conf, nginxConf(dir, port, pages, true));
    const test = spawnSync(binary, ['-t', ...args], { encoding: 'utf8' });
    brotli = test.status === 0;
    if (!brotli) log(`surge: nginx refused its brotli module, serving gzip only:\n${test.stderr}`);
  } catch {
    log(`surge: nginx has no brotli module (apt-get install -y libnginx-mod-http-brotli-static); it serves its gzip file`);
  }
  if (!brotli) writeFileSync(conf, nginxConf(dir, port, pages, false));
  const version = (spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr.trim().split('/')[1] ?? 'unknown').trim();
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`nginx exited with ${child.exitCode ?? child.signalCode}:\n${output}`);
    }
    try {
      const first = pages[0];
      if (first && (await rawGet(`${url}${first.path}`, 'identity')).status === 200) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not answer within 10 s:\n${output}`);
    }
    await sleep(50);
  }
  const master = child.pid;
  return { url, version, workers: availableParallelism(), brotli, pids: master ? [master, ...childrenOf(master)] : [], stop };
}

/** nginx must answer with the bytes Candor answered, or the comparison compares different pages. */
async function checkSameBytes(nginx: Nginx, page: PageCopy): Promise<string> {
  const plain = await rawGet(`${nginx.url}${page.path}`, 'identity');
  if (!plain.body.equals(page.identity)) throw new Error(`nginx served other bytes than Candor for ${page.path}`);
  const compressed = await rawGet(`${nginx.url}${page.path}`, HEADERS['accept-encoding']);
  const encoding = compressed.headers['content-encoding'] ?? 'identity';
  const expected = encoding === 'br' ? page.br : encoding === 'gzip' ? page.gzip : page.identity;
  if (!compressed.body.equals(expected)) throw new Error(`nginx's ${encoding} body of ${page.path} differs from Candor's`);
  return encoding;
}

interface Publication {
  /** seconds into the measured run */
  atSeconds: number;
  status: number;
  ms: number;
  /** whether the next GET of the incident page showed the update */
  visible: boolean;
}

/** User + system CPU time per process, from /proc/<pid>/stat, in clock ticks of 1/100 s (Linux's USER_HZ). */
const TICKS_PER_SECOND = 100;

function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The name in parentheses may hold spaces; the fields after it start with the state (field 3).
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds the processes have used; null without /proc. */
function cpuSeconds(pids: readonly number[]): number | null {
  if (pids.length === 0) return null;
  try {
    return (
      pids.reduce((sum, pid) => {
        const fields = statFields(pid);
        return sum + Number(fields[11]) + Number(fields[12]);
      }, 0) / TICKS_PER_SECOND
    );
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number)
      .filter((candidate) => {
        try {
          return Number(statFields(candidate)[1]) === pid;
        } catch {
          return false;
        }
      });
  } catch {
    return [];
  }
}

interface Cpu {
  /** share of one core the server used during the measured run (nginx: master and workers together) */
  serverPercent: number;
  serverMicrosecondsPerRequest: number;
  /** share of one core this process (autocannon, and the publishing responder) used */
  loadGeneratorPercent: number;
}

interface Run {
  figures: HttpFigures;
  /** response bytes (headers and body) per request, to see that both sides answered alike */
  bytesPerResponse: number;
  /** null where /proc is unavailable */
  cpu: Cpu | null;
}

async function load(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, connections: CONNECTIONS, duration: seconds, headers: HEADERS });
}

/**
 * Warm-up, then the measured run with the servers' CPU time read around it:
 * when the load generator uses a whole core, both servers wait on it and
 * requests/s understate the difference between them; CPU time per request
 * does not.
 */
async function measure(url: string, path: string, pids: readonly number[], during: (done: () => boolean) => Promise<void>): Promise<Run> {
  await load(`${url}${path}`, WARMUP_SECONDS);
  const serverBefore = cpuSeconds(pids);
  const loadBefore = process.cpuUsage();
  const started = performance.now();
  let done = false;
  const running = load(`${url}${path}`, RUN_SECONDS).finally(() => {
    done = true;
  });
  await during(() => done);
  const result = await running;
  const seconds = (performance.now() - started) / 1000;
  const serverAfter = cpuSeconds(pids);
  const loadUsed = process.cpuUsage(loadBefore);
  const requests = result.requests.total;
  const serverUsed = serverBefore === null || serverAfter === null ? null : serverAfter - serverBefore;
  return {
    figures: figuresOf(path, CONNECTIONS, result),
    bytesPerResponse: requests > 0 ? Math.round(result.throughput.total / requests) : 0,
    cpu:
      serverUsed === null
        ? null
        : {
            serverPercent: Math.round((serverUsed / seconds) * 100),
            serverMicrosecondsPerRequest: requests > 0 ? Number(((serverUsed * 1e6) / requests).toFixed(1)) : 0,
            loadGeneratorPercent: Math.round(((loadUsed.user + loadUsed.system) / 1e6 / seconds) * 100),
          },
  };
}

/** Candor under load while the responder publishes an update every PUBLISH_EVERY_MS. */
async function surgeCandor(
  url: string,
  path: string,
  pids: readonly number[],
  publish: () => Promise<Omit<Publication, 'atSeconds'>>,
): Promise<{ run: Run; publications: Publication[] }> {
  const publications: Publication[] = [];
  const run = await measure(url, path, pids, async (done) => {
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
  return measure(nginx.url, path, nginx.pids, async () => {});
}

/** Declares the incident as a responder would, in the console; returns its id. */
async function declareIncident(responder: ConsoleClient): Promise<number> {
  const published = await responder.post('/console/incidents/new?_action=publishIncident', INCIDENT);
  const id = Number(/\/console\/incidents\/(\d+)/.exec(published.location ?? '')?.[1]);
  if (published.status !== 303 || !Number.isInteger(id)) {
    throw new Error(`declaring the incident answered ${published.status} (${published.location}): ${published.html.slice(0, 300)}`);
  }
  return id;
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

    const binary = findNginx();
    let nginx: Nginx | null = null;
    let nginxLine: string;
    if (binary) {
      try {
        nginx = await startNginx(binary, copies, log);
        nginxLine =
          `nginx ${nginx.version} (${binary}): worker_processes auto (${nginx.workers}), the same bytes as static files, ` +
          `${nginx.brotli ? 'brotli_static and gzip_static' : 'gzip_static only (no brotli module: apt-get install -y libnginx-mod-http-brotli-static)'}`;
      } catch (err) {
        // Candor's own figures still stand without the yardstick.
        nginxLine = `nginx (${binary}) did not start, the comparison was skipped: ${err instanceof Error ? err.message : String(err)}`;
        log(`surge: ${nginxLine}`);
      }
    } else {
      nginxLine = 'nginx is not installed: the comparison was skipped. Install it with `apt-get install -y nginx` and run again.';
      log(`surge: ${nginxLine}`);
    }

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
    return {
      report: report(results, nginxLine, loadAverage),
      summary: {
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
