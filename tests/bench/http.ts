/**
 * Throughput and latency of the public pages a reader hits: the prerendered
 * home page, the subprocessor list, /status, an incident page and the JSON
 * API, with 64 and 256 connections, each side by side in the same run with
 * Debian's nginx on loopback serving the same bytes as static files
 * (tests/bench/common.ts). The figure is the ratio to nginx's requests/s.
 * With PostgreSQL chosen (tests/bench/engines.ts) the same pages of a server
 * on PostgreSQL are measured in the same run, cell by cell next to SQLite's
 * (each engine first in every other cell), and reported as the ratio
 * PostgreSQL/SQLite (the pages are answered from memory on both, so the
 * target is within 10 %), with the CPU the PostgreSQL backends spent per
 * request.
 *
 * Then page weight: for each public page, its HTML, the CSS it links and
 * the client JavaScript it loads, raw and as brotli.
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, constants as zlib } from 'node:zlib';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';
import {
  BackendCpu,
  checkSameBytes,
  columns,
  copyPage,
  declareIncident,
  HEADERS,
  INCIDENT,
  type Load,
  measure,
  nonSuccess,
  type PageCopy,
  preflight,
  type Run,
  rawGet,
  yardstick,
} from './common.ts';
import { type EngineName, signedInStaffOn } from './engines.ts';

/** Samples the CPU of a role's PostgreSQL backends while `measure` runs; their seconds once it is done. */
function backendSampler(role: string): { during: (done: () => boolean) => Promise<void>; seconds: () => number | null } {
  const backends = new BackendCpu(role);
  return {
    async during(done) {
      backends.sample();
      while (!done()) {
        await sleep(100);
        backends.sample();
      }
    },
    seconds: () => backends.seconds(),
  };
}

const CONNECTIONS = [64, 256] as const;
const WARMUP_SECONDS = 2;
const RUN_SECONDS = 10;
const TARGET_RATIO = 0.5;
/** PostgreSQL's requests/s over SQLite's: the public pages come from memory on both engines. */
const TARGET_ENGINE_RATIO = 0.9;

interface Row {
  path: string;
  connections: number;
  /** the engine `candor` ran on: SQLite, or PostgreSQL when only it was chosen */
  engine: EngineName;
  candor: Run;
  nginx: Run | null;
  ratio: number | null;
  /** the same page on the server on PostgreSQL, measured next to `candor` on SQLite, when both engines are chosen */
  postgres: {
    path: string;
    run: Run;
    /** CPU µs per request of the PostgreSQL backends serving the node (reading the status and changes versions) */
    backendMicrosecondsPerRequest: number | null;
    ratioToSqlite: number;
    ratioToNginx: number | null;
  } | null;
}

const failures = (r: Run) => r.figures.errors + r.figures.non2xx;
const failureText = ({ figures: f }: Run) =>
  [
    ...(f.errors > 0 ? [`${f.errors} errors (${f.timeouts} timeouts)`] : []),
    ...(f.non2xx > 0 ? [`${f.non2xx} non-2xx (${nonSuccess(f.statusCodes)})`] : []),
  ].join(', ') || '0';

function table(rows: readonly Row[]): string {
  const header = [
    rows[0]?.engine === 'postgres' ? 'page (PostgreSQL)' : 'page',
    'conns',
    'candor req/s',
    'p99 ms',
    'CPU µs/req',
    'nginx req/s',
    'p99 ms',
    'CPU µs/req',
    'ratio',
    `>= ${TARGET_RATIO}`,
    'candor failures',
  ];
  const lines = rows.map((r) => [
    r.path,
    String(r.connections),
    r.candor.figures.requestsPerSecond.toFixed(0),
    r.candor.figures.latencyP99Ms.toFixed(1),
    r.candor.cpu ? r.candor.cpu.serverMicrosecondsPerRequest.toFixed(0) : 'n/a',
    r.nginx ? r.nginx.figures.requestsPerSecond.toFixed(0) : 'n/a',
    r.nginx ? r.nginx.figures.latencyP99Ms.toFixed(1) : 'n/a',
    r.nginx?.cpu ? r.nginx.cpu.serverMicrosecondsPerRequest.toFixed(0) : 'n/a',
    r.ratio === null ? 'n/a' : r.ratio.toFixed(2),
    r.ratio === null ? '-' : r.ratio >= TARGET_RATIO ? 'meets' : 'MISSES',
    failureText(r.candor),
  ]);
  return columns(header, lines);
}

/** PostgreSQL next to SQLite, page by page, from the same run. */
function engineTable(rows: readonly Row[]): string {
  const header = [
    'page',
    'conns',
    'SQLite req/s',
    'p50 ms',
    'p99 ms',
    'PG req/s',
    'p50 ms',
    'p99 ms',
    'SQLite CPU µs/req',
    'PG CPU µs/req',
    '+ backends',
    'PG/SQLite',
    `>= ${TARGET_ENGINE_RATIO}`,
    'PG/nginx',
    'PG failures',
  ];
  const lines = rows.flatMap((r) => {
    const p = r.postgres;
    if (!p) return [];
    const f = p.run.figures;
    return [
      [
        p.path === r.path ? r.path : `${r.path} (PG ${p.path})`,
        String(r.connections),
        r.candor.figures.requestsPerSecond.toFixed(0),
        r.candor.figures.latencyP50Ms.toFixed(1),
        r.candor.figures.latencyP99Ms.toFixed(1),
        f.requestsPerSecond.toFixed(0),
        f.latencyP50Ms.toFixed(1),
        f.latencyP99Ms.toFixed(1),
        r.candor.cpu ? r.candor.cpu.serverMicrosecondsPerRequest.toFixed(0) : 'n/a',
        p.run.cpu ? p.run.cpu.serverMicrosecondsPerRequest.toFixed(0) : 'n/a',
        p.backendMicrosecondsPerRequest === null ? 'n/a' : `+ ${p.backendMicrosecondsPerRequest.toFixed(0)}`,
        p.ratioToSqlite.toFixed(2),
        p.ratioToSqlite >= TARGET_ENGINE_RATIO ? 'meets' : 'MISSES',
        p.ratioToNginx === null ? 'n/a' : p.ratioToNginx.toFixed(2),
        failureText(p.run),
      ],
    ];
  });
  return columns(header, lines);
}

// ---- page weight ----

interface Asset {
  url: string;
  raw: number;
  br: number;
}

interface PageWeight {
  path: string;
  html: { raw: number; br: number };
  css: { raw: number; br: number; files: Asset[]; inlineRaw: number };
  /** scripts the HTML loads (with src, and inline) */
  js: { raw: number; br: number; files: Asset[]; inlineRaw: number };
  /** modules the page's scripts import when the reader acts (e.g. Pagefind on /search): not loaded with the page */
  jsOnDemand: string[];
}

const brotli = (body: Buffer) => brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }).length;

/** Bytes on the wire for br when the server compresses, else brotli-11 of the body (what a precompressing server would send). */
async function weigh(url: string): Promise<Asset> {
  const identity = await rawGet(url, 'identity');
  if (identity.status !== 200) throw new Error(`GET ${url} answered ${identity.status}`);
  const br = await rawGet(url, 'br');
  const sent = br.headers['content-encoding'] === 'br' ? br.body.length : brotli(identity.body);
  return { url: new URL(url).pathname, raw: identity.body.length, br: sent };
}

const attr = (tag: string, name: string) => new RegExp(`\\b${name}\\s*=\\s*["']?([^"' >]+)`, 'i').exec(tag)?.[1] ?? null;

async function pageWeight(baseUrl: string, path: string): Promise<PageWeight> {
  const html = await weigh(`${baseUrl}${path}`);
  const text = (await rawGet(`${baseUrl}${path}`, 'identity')).body.toString('utf8');
  const stylesheets = [...text.matchAll(/<link\b[^>]*>/gi)]
    .map((m) => m[0])
    .filter((tag) => /\brel\s*=\s*["']?stylesheet/i.test(tag))
    .flatMap((tag) => attr(tag, 'href') ?? []);
  const inlineCss = [...text.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style>/gi)].map((m) => m[1] ?? '');
  const scripts = [...text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)].filter(
    // JSON-LD and other data blocks are not code.
    (m) => !/\btype\s*=\s*["']?application\/(ld\+)?json/i.test(m[1] ?? ''),
  );
  const preloads = [...text.matchAll(/<link\b[^>]*>/gi)]
    .map((m) => m[0])
    .filter((tag) => /\brel\s*=\s*["']?modulepreload/i.test(tag))
    .flatMap((tag) => attr(tag, 'href') ?? []);
  const scriptSrcs = [...scripts.flatMap((m) => attr(m[1] ?? '', 'src') ?? []), ...preloads];
  const inlineJs = scripts.filter((m) => attr(m[1] ?? '', 'src') === null).map((m) => m[2] ?? '');
  const cssFiles = await Promise.all(stylesheets.map((href) => weigh(new URL(href, `${baseUrl}${path}`).href)));
  const jsFiles = await Promise.all(scriptSrcs.map((src) => weigh(new URL(src, `${baseUrl}${path}`).href)));
  const jsTexts = [
    ...inlineJs,
    ...(await Promise.all(
      scriptSrcs.map(async (src) => (await rawGet(new URL(src, `${baseUrl}${path}`).href, 'identity')).body.toString()),
    )),
  ];
  const jsOnDemand = [
    ...new Set(jsTexts.flatMap((js) => [...js.matchAll(/\bimport\(\s*[`'"]([^`'"]+)[`'"]\s*\)/g)].map((m) => m[1] ?? ''))),
  ];
  const inline = (parts: string[]) => Buffer.byteLength(parts.join(''));
  const inlineBr = (parts: string[]) => (parts.length === 0 ? 0 : brotli(Buffer.from(parts.join(''))));
  return {
    path,
    html: { raw: html.raw, br: html.br },
    css: {
      raw: cssFiles.reduce((n, f) => n + f.raw, 0),
      br: cssFiles.reduce((n, f) => n + f.br, 0),
      files: cssFiles,
      inlineRaw: inline(inlineCss),
    },
    js: {
      raw: jsFiles.reduce((n, f) => n + f.raw, 0) + inline(inlineJs),
      br: jsFiles.reduce((n, f) => n + f.br, 0) + inlineBr(inlineJs),
      files: jsFiles,
      inlineRaw: inline(inlineJs),
    },
    jsOnDemand,
  };
}

function weightTable(pages: readonly PageWeight[]): string {
  const header = ['page', 'HTML', 'HTML br', 'CSS', 'CSS br', 'HTML+CSS', 'HTML+CSS br', 'JS', 'JS br', 'JS 0'];
  const lines = pages.map((p) => [
    p.path,
    String(p.html.raw),
    String(p.html.br),
    String(p.css.raw),
    String(p.css.br),
    String(p.html.raw + p.css.raw),
    String(p.html.br + p.css.br),
    String(p.js.raw),
    String(p.js.br),
    p.js.raw === 0 ? 'meets' : 'MISSES',
  ]);
  const notes = pages.flatMap((p) =>
    p.js.raw === 0
      ? []
      : [
          `${p.path} loads JavaScript: ${p.js.files.length} file(s)${p.js.files.map((f) => ` ${f.url}`).join(',')}` +
            `${p.js.inlineRaw > 0 ? `${p.js.files.length > 0 ? ' and' : ''} ${p.js.inlineRaw} bytes inline` : ''}` +
            (p.jsOnDemand.length > 0 ? `; imports ${p.jsOnDemand.join(', ')} when used (not counted)` : ''),
        ],
  );
  return [
    columns(header, lines),
    ...notes,
    '(bytes; CSS is the stylesheets the page links, counted per page though the browser caches them)',
  ].join('\n');
}

/** The public pages, with one doc page found from /docs. */
async function publicPages(baseUrl: string, incidentPath: string): Promise<string[]> {
  const docs = (await rawGet(`${baseUrl}/docs`, 'identity')).body.toString('utf8');
  const doc = /href="(\/docs\/[^"#?]+)"/.exec(docs)?.[1];
  return ['/', '/docs', ...(doc ? [doc] : []), '/subprocessors', '/changes', '/status', incidentPath, '/subscribe', '/search', '/api'];
}

// ---- the benchmark ----

/** copyPage, compressing here what Candor answered uncompressed, so nginx still serves precompressed files. */
async function copyForNginx(url: string, path: string): Promise<{ copy: PageCopy; candorCompresses: boolean }> {
  try {
    return { copy: await copyPage(url, path), candorCompresses: true };
  } catch {
    const plain = await copyPage(url, path, { compressLocally: true });
    return { copy: plain, candorCompresses: false };
  }
}

interface Candor {
  engine: EngineName;
  url: string;
  pids: number[];
  incidentPath: string;
}

/** The server on this engine with the incident declared by a responder in its console, every target touched once. */
async function prepare(engine: EngineName, url: string, pid: number | undefined, token: string): Promise<Candor> {
  const responder = new ConsoleClient(url);
  responder.setCookie('candor_session', token);
  const incidentPath = `/incidents/${await declareIncident(responder)}`;
  // Astro imports a route's module on its first request; touch every target first.
  for (const path of targetsWith(incidentPath)) await preflight(`${url}${path}`);
  const page = await (await fetch(`${url}${incidentPath}`)).text();
  if (!page.includes(INCIDENT.title)) throw new Error(`${incidentPath} on ${engine} does not show the incident`);
  return { engine, url, pids: pid ? [pid] : [], incidentPath };
}

const targetsWith = (incidentPath: string) => ['/', '/subprocessors', '/status', incidentPath, '/api/v1/trust.json'];

export const http: Benchmark = {
  name: 'http',
  usesPostgresServer: true,
  description: `requests/s and p99 of /, /subprocessors, /status, an incident page and /api/v1/trust.json with ${CONNECTIONS.join(' and ')} connections for ${RUN_SECONDS} s each, against nginx serving the same bytes (and on PostgreSQL next to SQLite, when chosen); page weight of the public pages`,
  async run({ engines, url, dataDir, serverPid, postgres, log }: BenchContext) {
    const servers: Candor[] = [];
    if (engines.has('sqlite')) {
      const db = openTestDb(dataDir);
      let token: string;
      try {
        token = signedInStaff(db, 'responder').token;
      } finally {
        db.$client.close();
      }
      servers.push(await prepare('sqlite', url, serverPid, token));
    }
    if (postgres) {
      const database = openPostgresDatabase({ url: postgres.pg.appUrl, maxConnections: 1 });
      let token: string;
      try {
        token = await signedInStaffOn(database, 'responder');
      } finally {
        await database.close();
      }
      servers.push(await prepare('postgres', postgres.url, postgres.serverPid, token));
    }
    const [primary, second] = servers;
    if (!primary) throw new Error('no engine chosen');
    const targets = targetsWith(primary.incidentPath);
    const copies = await Promise.all(targets.map((path) => copyForNginx(primary.url, path)));
    const uncompressed = copies.filter((c) => !c.candorCompresses).map((c) => c.copy.path);
    /** the same page on the second engine: its own incident's path */
    const onSecond = (path: string) => (second && path === primary.incidentPath ? second.incidentPath : path);

    const {
      nginx,
      binary,
      line: nginxLine,
    } = await yardstick(
      copies.map((c) => c.copy),
      (line) => log(`http: ${line}`),
    );
    const rows: Row[] = [];
    const encodings: Record<string, string> = {};
    const loadBefore = loadavg()[0] ?? 0;
    try {
      for (const { copy } of copies) {
        if (nginx) encodings[copy.path] = await checkSameBytes(nginx, copy);
        for (const connections of CONNECTIONS) {
          const load: Load = { connections, warmupSeconds: WARMUP_SECONDS, runSeconds: RUN_SECONDS };
          log(
            `http: ${copy.path} × ${connections} on Candor (${primary.engine})${second ? ` and on ${second.engine}` : ''}` +
              `${nginx ? ', then nginx' : ''} (warm-up ${WARMUP_SECONDS} s, then ${RUN_SECONDS} s each)…`,
          );
          const sampler = second && postgres ? backendSampler(postgres.pg.appRole) : null;
          const runSecond = () => (second ? measure(second.url, onSecond(copy.path), second.pids, load, sampler?.during) : null);
          // Every other cell the second engine goes first, so a machine getting busier or quieter favours neither.
          const secondFirst = rows.length % 2 === 1 ? await runSecond() : null;
          const candor = await measure(primary.url, copy.path, primary.pids, load);
          const secondRun = secondFirst ?? (await runSecond());
          const backendSeconds = sampler?.seconds() ?? null;
          const nginxRun = nginx ? await measure(nginx.url, copy.path, nginx.pids, load) : null;
          const toNginx = (run: Run) => (nginxRun ? run.figures.requestsPerSecond / nginxRun.figures.requestsPerSecond : null);
          rows.push({
            path: copy.path,
            connections,
            engine: primary.engine,
            candor,
            nginx: nginxRun,
            ratio: toNginx(candor),
            postgres: secondRun
              ? {
                  path: onSecond(copy.path),
                  run: secondRun,
                  backendMicrosecondsPerRequest:
                    backendSeconds === null || secondRun.figures.requests === 0
                      ? null
                      : (backendSeconds * 1e6) / secondRun.figures.requests,
                  ratioToSqlite: secondRun.figures.requestsPerSecond / candor.figures.requestsPerSecond,
                  ratioToNginx: toNginx(secondRun),
                }
              : null,
          });
        }
      }
    } finally {
      await nginx?.stop();
    }
    const loadAverage: [number, number] = [Number(loadBefore.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))];

    log('http: page weight…');
    const weights: PageWeight[] = [];
    for (const path of await publicPages(primary.url, primary.incidentPath)) weights.push(await pageWeight(primary.url, path));

    const busiest = Math.max(
      ...rows.flatMap((r) => [
        r.candor.cpu?.loadGeneratorPercent ?? 0,
        r.nginx?.cpu?.loadGeneratorPercent ?? 0,
        r.postgres?.run.cpu?.loadGeneratorPercent ?? 0,
      ]),
    );
    const notes = [
      nginxLine,
      ...(nginx
        ? [
            `nginx answered ${Object.entries(encodings)
              .map(([p, e]) => `${p} with ${e}`)
              .join(', ')}`,
          ]
        : []),
      ...(uncompressed.length > 0
        ? [`Candor answered ${uncompressed.join(', ')} uncompressed; nginx was given brotli/gzip files compressed by the bench`]
        : []),
      ...(busiest >= 90
        ? [
            `autocannon used up to ${busiest} % of a core: it, not the servers, set the pace, which brings both req/s figures ` +
              'together and flatters the ratio; CPU µs per request compares the servers themselves.',
          ]
        : []),
      `load average (1 min) ${loadAverage[0]} before, ${loadAverage[1]} after`,
    ];
    const engineSection = second
      ? [
          '',
          `PostgreSQL next to SQLite: the same pages, measured one after the other in this run, each engine first in every other row ` +
            `(target: PostgreSQL's req/s at least ${TARGET_ENGINE_RATIO} × SQLite's; "+ backends": CPU µs per request of the PostgreSQL backends serving the node)`,
          engineTable(rows),
        ]
      : [];
    return {
      report: [table(rows), ...engineSection, '', ...notes, '', 'page weight', weightTable(weights)].join('\n'),
      summary: {
        connections: CONNECTIONS,
        warmupSeconds: WARMUP_SECONDS,
        runSeconds: RUN_SECONDS,
        headers: HEADERS,
        targets: { ratioToNginx: TARGET_RATIO, postgresToSqlite: TARGET_ENGINE_RATIO, publicPageJsBytes: 0 },
        nginx: nginx ? { binary, version: nginx.version, workers: nginx.workers, brotliStatic: nginx.brotli } : null,
        nginxNote: nginxLine,
        nginxEncodings: encodings,
        uncompressedByCandor: uncompressed,
        loadAverage,
        results: rows.map((r) => ({
          ...r,
          meets: {
            ratioToNginx: r.ratio === null ? null : r.ratio >= TARGET_RATIO,
            noFailures: failures(r.candor) === 0,
            postgresToSqlite: r.postgres ? r.postgres.ratioToSqlite >= TARGET_ENGINE_RATIO : null,
            postgresNoFailures: r.postgres ? failures(r.postgres.run) === 0 : null,
          },
        })),
        pageWeight: weights.map((w) => ({ ...w, meets: { noJs: w.js.raw === 0 } })),
      },
    };
  },
};
