/**
 * What the HTTP benchmarks share (tests/bench/http.ts, tests/bench/surge.ts):
 * autocannon figures, the servers' CPU time per request from /proc, the
 * incident a responder declares, and Debian's nginx started on loopback to
 * serve the bytes Candor answered as static files, as the yardstick.
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
import { availableParallelism } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, gzipSync, constants as zlib } from 'node:zlib';
import autocannon from 'autocannon';
import type { BenchContext } from '../helpers/bench.ts';
import type { ConsoleClient } from '../helpers/browser-less.ts';
import { freePort, tempDir } from '../helpers/server.ts';

// Browsers ask for compressed bodies; measure what they would get.
export const HEADERS = { 'accept-encoding': 'br, gzip' };

export interface HttpFigures {
  path: string;
  connections: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Responses per HTTP status, so a run against an error page is recognisable afterwards. */
  statusCodes: Record<string, number>;
}

/** A benchmark of an error page measures nothing: refuse to start on one. */
export async function preflight(url: string): Promise<void> {
  const response = await fetch(url, { headers: HEADERS });
  const body = await response.text();
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status} before the benchmark: ${body.slice(0, 300)}`);
}

function statusCounts(result: autocannon.Result): Record<string, number> {
  return Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, stat]) => [status, stat.count ?? 0]));
}

/** autocannon's result as the figures every HTTP benchmark reports (tests/bench/surge.ts too). */
export function figuresOf(path: string, connections: number, result: autocannon.Result): HttpFigures {
  return {
    path,
    connections,
    seconds: result.duration,
    requests: result.requests.total,
    requestsPerSecond: result.requests.mean,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes: statusCounts(result),
  };
}

export function nonSuccess(statusCodes: Record<string, number>): string {
  return Object.entries(statusCodes)
    .filter(([status]) => !status.startsWith('2'))
    .map(([status, count]) => `${status}×${count}`)
    .join(', ');
}

/** A plain-text table: the first column left-aligned, the figures right-aligned. */
export function columns(header: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)].join('\n');
}

/** Where Debian's libnginx-mod-http-brotli-static puts its module. */
export const BROTLI_STATIC_MODULE = '/usr/lib/nginx/modules/ngx_http_brotli_static_module.so';

export const INCIDENT = {
  title: 'Elevated error rates on the public API',
  kind: 'outage',
  severity: 'major',
  status: 'investigating',
  'component:public-api': 'partial_outage',
  'component:web-app': 'degraded',
  body: 'We are investigating elevated error rates on the public API. Some requests fail with a server error.',
};

/** Declares the incident as a responder would, in the console; returns its id. */
export async function declareIncident(responder: ConsoleClient): Promise<number> {
  const published = await responder.post('/console/incidents/new?_action=publishIncident', INCIDENT);
  const id = Number(/\/console\/incidents\/(\d+)/.exec(published.location ?? '')?.[1]);
  if (published.status !== 303 || !Number.isInteger(id)) {
    throw new Error(`declaring the incident answered ${published.status} (${published.location}): ${published.html.slice(0, 300)}`);
  }
  return id;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** GET without decoding the body: the bytes on the wire, which nginx will serve as they are. */
export function rawGet(url: string, acceptEncoding: string): Promise<RawResponse> {
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

export interface PageCopy {
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

/**
 * The page as Candor answers it, for nginx to serve. With `compressLocally`, a page Candor sends
 * uncompressed gets brotli and gzip files made here (what a precompressing server would hold).
 */
export async function copyPage(baseUrl: string, path: string, options: { compressLocally?: boolean } = {}): Promise<PageCopy> {
  const [identity, br, gzip] = await Promise.all(['identity', 'br', 'gzip'].map((e) => rawGet(`${baseUrl}${path}`, e)));
  if (!identity || !br || !gzip) throw new Error('unreachable');
  for (const [encoding, res] of [
    ['identity', identity],
    ['br', br],
    ['gzip', gzip],
  ] as const) {
    const got = res.headers['content-encoding'] ?? 'identity';
    if (res.status !== 200 || (got !== encoding && !(options.compressLocally && got === 'identity'))) {
      throw new Error(`GET ${path} for ${encoding} answered ${res.status} with ${got}`);
    }
  }
  const local = (res: RawResponse, compress: (body: Buffer) => Buffer) =>
    (res.headers['content-encoding'] ?? 'identity') === 'identity' ? compress(identity.body) : res.body;
  return {
    path,
    contentType: identity.headers['content-type'] ?? 'text/html',
    extraHeaders: Object.entries(identity.headers).filter(([name]) => !NOT_COPIED.has(name)),
    identity: identity.body,
    br: local(br, (body) => brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 5 } })),
    gzip: local(gzip, (body) => gzipSync(body, { level: 6 })),
  };
}

/** Where nginx finds a page: a path ending in / is its directory's index.html (nginx's `index`). */
function fileOf(path: string): string {
  return path.endsWith('/') ? `${path}index.html` : path;
}

/** nginx binary: PATH first, then where Debian puts it (often outside a non-root PATH). */
export function findNginx(): string | null {
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
    return [
      `    location = ${fileOf(page.path)} {`,
      `      default_type ${quoted(page.contentType) ?? 'text/html'};`,
      ...headers,
      '    }',
    ].join('\n');
  });
  return `# Written by tests/bench/common.ts for one run.
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

export interface Nginx {
  url: string;
  version: string;
  workers: number;
  brotli: boolean;
  /** the master and its workers, whose CPU time is nginx's */
  pids: number[];
  stop(): Promise<void>;
}

export async function startNginx(binary: string, pages: readonly PageCopy[], log: BenchContext['log']): Promise<Nginx> {
  const dir = tempDir('candor-bench-nginx-');
  // nginx started as root runs its workers as nobody, who must be able to read the files.
  chmodSync(dir, 0o755);
  for (const page of pages) {
    const file = join(dir, 'www', fileOf(page.path));
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
    if (!brotli) log(`nginx refused its brotli module, serving gzip only:\n${test.stderr}`);
  } catch {
    log(`nginx has no brotli module (apt-get install -y libnginx-mod-http-brotli-static); it serves its gzip file`);
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
export async function checkSameBytes(nginx: Nginx, page: PageCopy): Promise<string> {
  const plain = await rawGet(`${nginx.url}${page.path}`, 'identity');
  if (!plain.body.equals(page.identity)) throw new Error(`nginx served other bytes than Candor for ${page.path}`);
  const compressed = await rawGet(`${nginx.url}${page.path}`, HEADERS['accept-encoding']);
  const encoding = compressed.headers['content-encoding'] ?? 'identity';
  const expected = encoding === 'br' ? page.br : encoding === 'gzip' ? page.gzip : page.identity;
  if (!compressed.body.equals(expected)) throw new Error(`nginx's ${encoding} body of ${page.path} differs from Candor's`);
  return encoding;
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

/**
 * CPU seconds of the PostgreSQL backends serving one role, followed by sampling: backends come and go
 * with the pools, so each is read when first seen and at every sample after. Their titles read
 * "postgres: … <role> <database> <host>(<port>) <state>" (/proc/<pid>/cmdline).
 */
export class BackendCpu {
  private readonly seen = new Map<number, { first: number; last: number }>();
  private readonly role: string;
  constructor(role: string) {
    this.role = role;
  }

  sample(): void {
    let entries: string[];
    try {
      entries = readdirSync('/proc');
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      const known = this.seen.get(pid);
      if (!known) {
        try {
          const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
          if (!title.startsWith('postgres:') || !title.split(/[\s\0]+/).includes(this.role)) continue;
        } catch {
          continue;
        }
      }
      const cpu = cpuSeconds([pid]);
      if (cpu === null) continue;
      if (known) known.last = cpu;
      else this.seen.set(pid, { first: cpu, last: cpu });
    }
  }

  /** null where /proc is unavailable or no backend was seen */
  seconds(): number | null {
    if (this.seen.size === 0) return null;
    return Number([...this.seen.values()].reduce((sum, b) => sum + b.last - b.first, 0).toFixed(1));
  }
}

export interface Cpu {
  /** share of one core the server used during the measured run (nginx: master and workers together) */
  serverPercent: number;
  serverMicrosecondsPerRequest: number;
  /** share of one core this process (autocannon, and the publishing responder) used */
  loadGeneratorPercent: number;
}

export interface Run {
  figures: HttpFigures;
  /** response bytes (headers and body) per request, to see that both sides answered alike */
  bytesPerResponse: number;
  /** null where /proc is unavailable */
  cpu: Cpu | null;
}

async function load(url: string, connections: number, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration: seconds, headers: HEADERS });
}

export interface Load {
  connections: number;
  warmupSeconds: number;
  runSeconds: number;
}

/**
 * Warm-up, then the measured run with the servers' CPU time read around it:
 * when the load generator uses a whole core, both servers wait on it and
 * requests/s understate the difference between them; CPU time per request
 * does not. `during` runs alongside the measured run (surge publishes updates).
 */
export async function measure(
  url: string,
  path: string,
  pids: readonly number[],
  { connections, warmupSeconds, runSeconds }: Load,
  during: (done: () => boolean) => Promise<void> = async () => {},
): Promise<Run> {
  await load(`${url}${path}`, connections, warmupSeconds);
  const serverBefore = cpuSeconds(pids);
  const loadBefore = process.cpuUsage();
  const started = performance.now();
  let done = false;
  const running = load(`${url}${path}`, connections, runSeconds).finally(() => {
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
    figures: figuresOf(path, connections, result),
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

/**
 * nginx serving the pages' bytes, or null with the reason: Candor's own
 * figures still stand without the yardstick. `line` describes it for the report.
 */
export async function yardstick(
  pages: readonly PageCopy[],
  log: BenchContext['log'],
): Promise<{ nginx: Nginx | null; binary: string | null; line: string }> {
  const binary = findNginx();
  if (!binary) {
    const line = 'nginx is not installed: the comparison was skipped. Install it with `apt-get install -y nginx` and run again.';
    log(line);
    return { nginx: null, binary, line };
  }
  try {
    const nginx = await startNginx(binary, pages, log);
    const line =
      `nginx ${nginx.version} (${binary}): worker_processes auto (${nginx.workers}), the same bytes as static files, ` +
      `${nginx.brotli ? 'brotli_static and gzip_static' : 'gzip_static only (no brotli module: apt-get install -y libnginx-mod-http-brotli-static)'}`;
    return { nginx, binary, line };
  } catch (err) {
    const line = `nginx (${binary}) did not start, the comparison was skipped: ${err instanceof Error ? err.message : String(err)}`;
    log(line);
    return { nginx: null, binary, line };
  }
}

export interface Memory {
  rssMb: number;
  hwmMb: number;
}

/** VmRSS and VmHWM (the kernel's high-water mark) of a process, from /proc (Linux); undefined elsewhere or once it has exited. */
export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}
