/**
 * Throughput and latency of the public pages a reader hits: the prerendered
 * home page, the subprocessor list, /status, an incident page and the JSON
 * API, with 64 and 256 connections, each side by side in the same run with
 * Debian's nginx on loopback serving the same bytes as static files
 * (tests/bench/common.ts). The figure is the ratio to nginx's requests/s.
 *
 * Then page weight: for each public page, its HTML, the CSS it links and
 * the client JavaScript it loads, raw and as brotli.
 */
import { loadavg } from 'node:os';
import { brotliCompressSync, constants as zlib } from 'node:zlib';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';
import {
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

const CONNECTIONS = [64, 256] as const;
const WARMUP_SECONDS = 2;
const RUN_SECONDS = 10;
const TARGET_RATIO = 0.5;

interface Row {
  path: string;
  connections: number;
  candor: Run;
  nginx: Run | null;
  ratio: number | null;
}

const failures = (r: Run) => r.figures.errors + r.figures.non2xx;
const failureText = ({ figures: f }: Run) =>
  [
    ...(f.errors > 0 ? [`${f.errors} errors (${f.timeouts} timeouts)`] : []),
    ...(f.non2xx > 0 ? [`${f.non2xx} non-2xx (${nonSuccess(f.statusCodes)})`] : []),
  ].join(', ') || '0';

function table(rows: readonly Row[]): string {
  const header = [
    'page',
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

export const http: Benchmark = {
  name: 'http',
  description: `requests/s and p99 of /, /subprocessors, /status, an incident page and /api/v1/trust.json with ${CONNECTIONS.join(' and ')} connections for ${RUN_SECONDS} s each, against nginx serving the same bytes; page weight of the public pages`,
  async run({ url, dataDir, serverPid, log }: BenchContext) {
    const db = openTestDb(dataDir);
    const responder = new ConsoleClient(url);
    try {
      responder.setCookie('candor_session', signedInStaff(db, 'responder').token);
    } finally {
      db.$client.close();
    }
    const incidentPath = `/incidents/${await declareIncident(responder)}`;
    const targets = ['/', '/subprocessors', '/status', incidentPath, '/api/v1/trust.json'];
    // Astro imports a route's module on its first request; touch every target first.
    for (const path of targets) await preflight(`${url}${path}`);
    const copies = await Promise.all(targets.map((path) => copyForNginx(url, path)));
    const incident = copies.find((c) => c.copy.path === incidentPath);
    if (!incident?.copy.identity.toString('utf8').includes(INCIDENT.title)) throw new Error(`${incidentPath} does not show the incident`);
    const uncompressed = copies.filter((c) => !c.candorCompresses).map((c) => c.copy.path);

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
            `http: ${copy.path} × ${connections} on Candor${nginx ? ', then nginx' : ''} (warm-up ${WARMUP_SECONDS} s, then ${RUN_SECONDS} s)…`,
          );
          const candor = await measure(url, copy.path, serverPid ? [serverPid] : [], load);
          const nginxRun = nginx ? await measure(nginx.url, copy.path, nginx.pids, load) : null;
          rows.push({
            path: copy.path,
            connections,
            candor,
            nginx: nginxRun,
            ratio: nginxRun ? candor.figures.requestsPerSecond / nginxRun.figures.requestsPerSecond : null,
          });
        }
      }
    } finally {
      await nginx?.stop();
    }
    const loadAverage: [number, number] = [Number(loadBefore.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))];

    log('http: page weight…');
    const weights: PageWeight[] = [];
    for (const path of await publicPages(url, incidentPath)) weights.push(await pageWeight(url, path));

    const busiest = Math.max(...rows.flatMap((r) => [r.candor.cpu?.loadGeneratorPercent ?? 0, r.nginx?.cpu?.loadGeneratorPercent ?? 0]));
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
    return {
      report: [table(rows), '', ...notes, '', 'page weight', weightTable(weights)].join('\n'),
      summary: {
        connections: CONNECTIONS,
        warmupSeconds: WARMUP_SECONDS,
        runSeconds: RUN_SECONDS,
        headers: HEADERS,
        targets: { ratioToNginx: TARGET_RATIO, publicPageJsBytes: 0 },
        nginx: nginx ? { binary, version: nginx.version, workers: nginx.workers, brotliStatic: nginx.brotli } : null,
        nginxNote: nginxLine,
        nginxEncodings: encodings,
        uncompressedByCandor: uncompressed,
        loadAverage,
        results: rows.map((r) => ({
          ...r,
          meets: { ratioToNginx: r.ratio === null ? null : r.ratio >= TARGET_RATIO, noFailures: failures(r.candor) === 0 },
        })),
        pageWeight: weights.map((w) => ({ ...w, meets: { noJs: w.js.raw === 0 } })),
      },
    };
  },
};
