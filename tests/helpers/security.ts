/**
 * What the security suite (tests/security/) shares: the routes the app
 * really has, an HTTP client that can speak from any loopback address (so a
 * test can be many attackers, or one behind many addresses), and the checks
 * an attacker makes of every answer.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join, relative, sep } from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Db } from '../../db/client.ts';
import type { Database } from '../../db/engine/types.ts';
import { CookieJar } from './cookie-jar.ts';
import { readRows } from './engine-server.ts';
import { TEST_KEYS } from './notify.ts';
import { ROOT } from './server.ts';

// ---- routes, from the source of truth ----

/** Astro's route pattern for a file under src/pages, or null for files Astro does not route. */
export function patternOf(file: string): string | null {
  const rel = relative(join(ROOT, 'src/pages'), file).split(sep).join('/');
  if (!/\.(astro|ts|js|mjs|md|mdx|html)$/.test(rel) || rel.split('/').some((part) => part.startsWith('_'))) return null;
  const route = `/${rel}`.replace(/\.(astro|ts|js|mjs|md|mdx|html)$/, '').replace(/\/index$/, '');
  return route === '' ? '/' : route;
}

/** Every route pattern with a file under src/pages, mapped to that file. */
export function sourceRoutes(): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const pattern = patternOf(path);
        if (pattern) found.set(pattern, relative(ROOT, path));
      }
    }
  };
  walk(join(ROOT, 'src/pages'));
  return found;
}

/**
 * Every route of the build's manifest (dist/server), which adds what Astro
 * injects itself (/_actions, /_image, /_server-islands) to the pages.
 */
export function builtRoutes(): Set<string> {
  const routes = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.mjs')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/"route":"(\/[^"]*)"/g)) if (m[1]) routes.add(m[1]);
      }
    }
  };
  walk(join(ROOT, 'dist/server'));
  return routes;
}

// ---- HTTP from a chosen address ----

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: string;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** the loopback address to connect from (127.0.0.1 when not given): the server sees it as the client */
  from?: string;
}

/**
 * One request over node:http (fetch cannot choose its source address), no redirects followed. The path
 * is sent as written: `..` and `%2e%2e` reach the server instead of being resolved on this side.
 */
export function send(url: string, options: SendOptions = {}): Promise<HttpAnswer> {
  const [, origin = '', path = '/'] = /^(https?:\/\/[^/?#]+)(.*)$/.exec(url) ?? [];
  const target = new URL(origin);
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port,
        path: path === '' ? '/' : path,
        method: options.method ?? 'GET',
        headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...options.headers },
        ...(options.from ? { localAddress: options.from } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
          }
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A browser-like client with a cookie jar, speaking from one address:
 * `post` sends a form as a same-origin page would (Origin and
 * Sec-Fetch-Site), unless the caller's headers say otherwise.
 */
export class Client {
  private readonly cookies = new CookieJar();
  readonly base: string;
  readonly from: string | undefined;

  constructor(base: string, from?: string) {
    this.base = base;
    this.from = from;
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  setCookie(name: string, value: string): this {
    this.cookies.set(name, value);
    return this;
  }

  /** The same browser (its cookies) speaking from another address. */
  speakingFrom(address: string): Client {
    const other = new Client(this.base, address);
    for (const [k, v] of this.cookies.entries()) other.setCookie(k, v);
    return other;
  }

  async request(path: string, options: SendOptions = {}): Promise<HttpAnswer> {
    const cookie = this.cookies.header();
    const answer = await send(path.startsWith('/') ? `${this.base}${path}` : new URL(path, this.base).href, {
      ...options,
      from: options.from ?? this.from,
      headers: { 'user-agent': 'candor-security-tests', ...(cookie ? { cookie } : {}), ...options.headers },
    });
    this.cookies.remember(answer.headers);
    return answer;
  }

  get(path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.request(path, { headers });
  }

  post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.base, 'sec-fetch-site': 'same-origin', ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

// ---- what an attacker looks for in an answer ----

/** A stack frame, a file path of ours, or a database error: what an error page must never show. */
export const STACK_TRACE =
  /\bat (?:async )?[\w$.<>[\]]+ \(|\bat file:\/\/|node_modules\/|\/work\/|\/home\/|file:\/\/\/|\.(?:ts|mjs|js):\d+:\d+|SqliteError|SQLITE_[A-Z]|syntax error at|no such (?:table|column)|Error: [A-Z]\w+ failed/;

export function expectNoStackTrace(body: string, where: string): void {
  expect(STACK_TRACE.exec(body)?.[0] ?? null, `${where} shows a stack trace or internal path`).toBeNull();
}

/** The headers every answer carries (src/core/http/security-headers.ts, Astro's CSP on pages). */
export function expectSecurityHeaders(answer: HttpAnswer, where: string): void {
  const h = answer.headers;
  expect(h.get('x-content-type-options'), `${where}: X-Content-Type-Options`).toBe('nosniff');
  expect(h.get('x-frame-options'), `${where}: X-Frame-Options`).toBe('DENY');
  expect(h.get('content-security-policy') ?? '', `${where}: CSP`).toMatch(/frame-ancestors 'none'/);
  expect(h.get('content-security-policy') ?? '', `${where}: CSP`).toMatch(/object-src 'none'/);
  expect(h.get('referrer-policy'), `${where}: Referrer-Policy`).toMatch(/^(strict-origin-when-cross-origin|same-origin|no-referrer)$/);
  expect(h.get('permissions-policy') ?? '', `${where}: Permissions-Policy`).toContain('camera=()');
  expect(h.get('cross-origin-opener-policy'), `${where}: COOP`).toBe('same-origin');
  expect(h.get('x-powered-by'), `${where}: X-Powered-By`).toBeNull();
  expect(h.get('server'), `${where}: Server`).toBeNull();
  if (/text\/html/.test(h.get('content-type') ?? '')) {
    const policies = [
      h.get('content-security-policy') ?? '',
      ...[...answer.body.matchAll(/http-equiv="content-security-policy" content="([^"]+)"/g)].map((m) => m[1]),
    ];
    for (const policy of policies) {
      const scripts =
        /script-src([^;]*)/
          .exec(policy ?? '')?.[1]
          ?.trim()
          .split(/\s+/) ?? [];
      expect(scripts, `${where}: script-src`).not.toContain("'unsafe-inline'");
      expect(scripts, `${where}: script-src`).not.toContain("'unsafe-eval'");
      expect(scripts, `${where}: script-src`).not.toContain('*');
    }
  }
}

/** CORS: never credentials, never an echo of the caller's origin; a wildcard only where the route is public data. */
export function expectNoCredentialedCors(answer: HttpAnswer, where: string, wildcardAllowed: boolean): void {
  const origin = answer.headers.get('access-control-allow-origin');
  expect(answer.headers.get('access-control-allow-credentials'), `${where}: Access-Control-Allow-Credentials`).toBeNull();
  if (origin !== null) {
    expect(origin, `${where}: Access-Control-Allow-Origin`).toBe('*');
    expect(wildcardAllowed, `${where} answers Access-Control-Allow-Origin: * but is not classified as public data`).toBe(true);
  }
}

/** The values of `secrets` found in `text`. */
export function leaked(text: string, secrets: Iterable<string>): string[] {
  return [...secrets].filter((s) => s.length >= 6 && text.includes(s));
}

/** CANDOR_SECRET and the encryption key of a test server: generated into its data dir, or the engine tests' keys. */
export function serverSecrets(dataDir: string): string[] {
  const file = join(dataDir, 'secrets.json');
  const generated = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  return [
    ...Object.values(generated).filter((v): v is string => typeof v === 'string' && v.length >= 16),
    TEST_KEYS.secret,
    ...TEST_KEYS.keys.map((k) => k.toString('hex')),
  ];
}

export interface AuditRow {
  action: string;
  actor_type: string;
  ip: string | null;
  target: string | null;
  summary: string;
}

export function auditRows(db: Db, action?: string): AuditRow[] {
  return db.$client
    .prepare(`SELECT action, actor_type, ip, target, summary FROM audit_log ${action ? 'WHERE action = ?' : ''} ORDER BY id`)
    .all(...(action ? [action] : [])) as AuditRow[];
}

/** As `auditRows`, on either engine (tests/helpers/engine-server.ts); the summary as JSON text. */
export async function auditRowsOn(database: Database, action?: string): Promise<AuditRow[]> {
  const rows = await readRows(database, (q) => {
    const a = q.t.auditLog;
    return q.db
      .select({ action: a.action, actorType: a.actorType, ip: a.ip, target: a.target, summary: a.summary })
      .from(a)
      .where(and(eq(a.trustCenterId, q.trustCenter), action === undefined ? undefined : eq(a.action, action)))
      .orderBy(asc(a.id));
  });
  return rows.map((r) => ({ action: r.action, actor_type: r.actorType, ip: r.ip, target: r.target, summary: JSON.stringify(r.summary) }));
}

/** As `timesAudited`, on either engine. */
export async function timesAuditedOn(
  database: Database,
  action: string,
  match: (row: { ip: string | null; target: string | null }) => boolean = () => true,
): Promise<number> {
  const logged = (await auditRowsOn(database, action))
    .filter(match)
    .reduce((n, r) => n + ((JSON.parse(r.summary) as { repeated?: { times: number } }).repeated?.times ?? 1), 0);
  const counting = await readRows(database, (q) => {
    const w = q.t.auditRepeats;
    return q.db
      .select({ ip: w.ip, target: w.target, repeats: w.repeats })
      .from(w)
      .where(and(eq(w.trustCenterId, q.trustCenter), eq(w.action, action)));
  });
  return logged + counting.filter(match).reduce((n, r) => n + r.repeats, 0);
}

/**
 * How many times an action was audited: identical refusals within a window are one entry and a
 * count (src/core/audit/repeats.ts), whether the window has closed ("repeated N more times") or is
 * still counting.
 */
export function timesAudited(
  db: Db,
  action: string,
  match: (row: { ip: string | null; target: string | null }) => boolean = () => true,
): number {
  const logged = auditRows(db, action)
    .filter(match)
    .reduce((n, r) => n + ((JSON.parse(r.summary) as { repeated?: { times: number } }).repeated?.times ?? 1), 0);
  const counting = db.$client.prepare('SELECT ip, target, repeats FROM audit_repeats WHERE action = ?').all(action) as {
    ip: string | null;
    target: string | null;
    repeats: number;
  }[];
  return logged + counting.filter(match).reduce((n, r) => n + r.repeats, 0);
}

// ---- HTML as a browser reads it ----

export interface HtmlElement {
  name: string;
  attributes: Record<string, string>;
  /** the raw content of script, style, textarea and title */
  content?: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
export const decodeEntities = (value: string) =>
  value.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, e: string) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1]?.toLowerCase() === 'x' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10))
      : (ENTITIES[e.toLowerCase()] ?? whole),
  );

/**
 * A small HTML tokenizer, enough to see what a browser would: elements with
 * their attributes (quoted values may hold `<` and `>`), raw text elements,
 * comments skipped. Regular expressions over HTML cannot tell an `<svg` in
 * an attribute value from a real one.
 */
export function parseHtml(html: string): { elements: HtmlElement[]; text: string } {
  const elements: HtmlElement[] = [];
  let text = '';
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      text += html.slice(i);
      break;
    }
    text += html.slice(i, lt);
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    if (html[lt + 1] === '!' || html[lt + 1] === '?' || html[lt + 1] === '/') {
      const end = html.indexOf('>', lt);
      i = end < 0 ? html.length : end + 1;
      continue;
    }
    const open = /^<([a-zA-Z][\w:-]*)/.exec(html.slice(lt, lt + 80));
    if (!open?.[1]) {
      text += '<';
      i = lt + 1;
      continue;
    }
    const element: HtmlElement = { name: open[1].toLowerCase(), attributes: {} };
    let j = lt + open[0].length;
    while (j < html.length) {
      while (j < html.length && /[\s/]/.test(html[j] ?? '')) j++;
      if (j >= html.length) break;
      if (html[j] === '>') {
        j++;
        break;
      }
      const name = /^[^\s"'>/=]+/.exec(html.slice(j))?.[0];
      if (!name) {
        j++;
        continue;
      }
      j += name.length;
      while (/\s/.test(html[j] ?? '')) j++;
      let value = '';
      if (html[j] === '=') {
        j++;
        while (/\s/.test(html[j] ?? '')) j++;
        const quote = html[j];
        if (quote === '"' || quote === "'") {
          const end = html.indexOf(quote, j + 1);
          value = html.slice(j + 1, end < 0 ? html.length : end);
          j = end < 0 ? html.length : end + 1;
        } else {
          value = /^[^\s>]*/.exec(html.slice(j))?.[0] ?? '';
          j += value.length;
        }
      }
      element.attributes[name.toLowerCase()] = decodeEntities(value);
    }
    elements.push(element);
    if (['script', 'style', 'textarea', 'title'].includes(element.name)) {
      const close = html.toLowerCase().indexOf(`</${element.name}`, j);
      element.content = html.slice(j, close < 0 ? html.length : close);
      if (element.name === 'textarea' || element.name === 'title') text += element.content;
      j = close < 0 ? html.length : close;
    }
    i = j;
  }
  return { elements, text: decodeEntities(text) };
}

/**
 * What in a page would act if it came from user input: a script that calls
 * alert, a frame or plugin element, an event handler attribute, a script or
 * data URL where a link or form goes, a style sheet from the payloads.
 */
export function activeMarkup(html: string): string[] {
  const found: string[] = [];
  for (const el of parseHtml(html).elements) {
    if (el.name === 'script' && /alert\(/.test(el.content ?? '')) found.push(`<script>${el.content?.slice(0, 40)}`);
    if (el.name === 'style' && /display:\s*none/.test(el.content ?? '')) found.push('<style> from input');
    if (['iframe', 'frame', 'object', 'embed', 'applet', 'base'].includes(el.name)) found.push(`<${el.name}>`);
    if (el.name === 'meta' && el.attributes['http-equiv']?.toLowerCase() === 'refresh') found.push('<meta http-equiv="refresh">');
    for (const [name, value] of Object.entries(el.attributes)) {
      if (name.startsWith('on')) found.push(`<${el.name} ${name}=…>`);
      // browsers ignore control characters and spaces in a URL's scheme: "java\tscript:" is javascript:
      // biome-ignore lint/suspicious/noControlCharactersInRegex: those are what is removed
      const url = value.replace(/[\u0000-\u0020]/g, '').toLowerCase();
      if (['href', 'src', 'action', 'formaction', 'xlink:href', 'srcdoc'].includes(name) && /^(javascript|vbscript):/.test(url))
        found.push(`<${el.name} ${name}="${value.slice(0, 30)}">`);
      if (['href', 'action', 'formaction'].includes(name) && url.startsWith('data:'))
        found.push(`<${el.name} ${name}="${value.slice(0, 30)}">`);
    }
  }
  return found;
}

export { pageText, until } from './page.ts';
