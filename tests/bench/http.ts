/**
 * Throughput and latency of the public pages a reader hits during an
 * incident: the prerendered home page (served from memory), the
 * subprocessor list (rendered per request) and the JSON API.
 */
import autocannon from 'autocannon';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';

const TARGETS = ['/', '/subprocessors', '/api/v1/trust.json'];
const CONNECTIONS = 64;
const WARMUP_SECONDS = 2;
const RUN_SECONDS = 10;
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

async function load(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, connections: CONNECTIONS, duration: seconds, headers: HEADERS });
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

async function measure(baseUrl: string, path: string): Promise<HttpFigures> {
  // Lets the JIT and the server's caches settle so the run measures the steady state.
  await load(`${baseUrl}${path}`, WARMUP_SECONDS);
  return figuresOf(path, CONNECTIONS, await load(`${baseUrl}${path}`, RUN_SECONDS));
}

export function nonSuccess(statusCodes: Record<string, number>): string {
  return Object.entries(statusCodes)
    .filter(([status]) => !status.startsWith('2'))
    .map(([status, count]) => `${status}×${count}`)
    .join(', ');
}

function table(rows: readonly HttpFigures[]): string {
  const header = ['path', 'req/s (mean)', 'p50 ms', 'p99 ms', 'requests', 'errors', 'non-2xx'];
  const lines = rows.map((r) => [
    r.path,
    r.requestsPerSecond.toFixed(0),
    r.latencyP50Ms.toFixed(1),
    r.latencyP99Ms.toFixed(1),
    String(r.requests),
    String(r.errors),
    r.non2xx === 0 ? '0' : `${r.non2xx} (${nonSuccess(r.statusCodes)})`,
  ]);
  return columns(header, lines);
}

/** A plain-text table: the first column left-aligned, the figures right-aligned. */
export function columns(header: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)].join('\n');
}

export const http: Benchmark = {
  name: 'http',
  description: `requests/s and latency of ${TARGETS.join(', ')} with ${CONNECTIONS} connections for ${RUN_SECONDS} s each`,
  async run({ url, log }: BenchContext) {
    // Astro imports a route's module on its first request. Touching every target now means a
    // long run no longer depends on dist/ staying unchanged (a concurrent build replaces it).
    for (const path of TARGETS) await preflight(`${url}${path}`);
    const rows: HttpFigures[] = [];
    for (const path of TARGETS) {
      log(`http: ${path} (warm-up ${WARMUP_SECONDS} s, then ${RUN_SECONDS} s)…`);
      rows.push(await measure(url, path));
    }
    return {
      report: table(rows),
      summary: { connections: CONNECTIONS, warmupSeconds: WARMUP_SECONDS, runSeconds: RUN_SECONDS, headers: HEADERS, results: rows },
    };
  },
};
