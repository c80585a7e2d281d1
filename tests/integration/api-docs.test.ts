/**
 * /api documents every public machine-readable endpoint: each public route
 * of tests/security/route-table.ts that answers a file (an extension in its
 * pattern) has a section on /api with its method, URL, parameters, caching,
 * cross-origin behaviour and an example response. What the page says is
 * checked against what the running server answers: the Cache-Control and
 * Access-Control-Allow-Origin headers, the content types, and the keys of
 * the example responses, so the documentation cannot drift unnoticed.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * when CANDOR_TEST_POSTGRES_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import type { RunningServer } from '../helpers/server.ts';
import { type RouteExpectation, routeTable } from '../security/route-table.ts';

/** Public routes that answer data for machines rather than a page: a file extension in the pattern. */
const endpoints = Object.entries(routeTable).filter(([pattern, route]) => route.kind === 'public' && /\.[a-z[\]]+$/.test(pattern));

const plainText = (html: string) =>
  html
    .replace(/<[^>]+>/g, '')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');

/** The documented value of a header in a section: `<code>Name: value</code>`. */
function documentedHeader(section: string, name: string): string | null {
  const match = new RegExp(`<code>${name}: ([^<]+)</code>`, 'i').exec(section);
  return match?.[1] ? plainText(match[1]).trim() : null;
}

/** Object keys all the way down; an array stands for the keys of its first item. */
function keysOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.length ? [keysOf(value[0])] : [];
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, keysOf(v)]),
    );
  return '·';
}

/** Compares two key trees where both have something to compare (an empty list on either side says nothing). */
function sameKeys(example: unknown, live: unknown, path: string): string[] {
  if (Array.isArray(example) && Array.isArray(live))
    return example.length && live.length ? sameKeys(example[0], live[0], `${path}[0]`) : [];
  if (example && live && typeof example === 'object' && typeof live === 'object') {
    const a = Object.keys(example);
    const b = Object.keys(live);
    const problems = [
      ...b.filter((k) => !a.includes(k)).map((k) => `${path}.${k} is served but not in the example`),
      ...a.filter((k) => !b.includes(k)).map((k) => `${path}.${k} is in the example but not served`),
    ];
    for (const k of a.filter((k) => b.includes(k)))
      problems.push(...sameKeys((example as Record<string, unknown>)[k], (live as Record<string, unknown>)[k], `${path}.${k}`));
    return problems;
  }
  return [];
}

/** The section of /api that documents a route pattern. */
function sectionFor(page: string, pattern: string): string {
  const match = new RegExp(`<section[^>]*data-route="${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*>([\\s\\S]*?)</section>`).exec(
    page,
  );
  return match?.[1] ?? '';
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let page = '';

  beforeAll(async () => {
    running = await engine.start();
    server = running.server;
    const res = await fetch(`${server.url}/api`);
    expect(res.status).toBe(200);
    page = await res.text();
  });
  afterAll(async () => {
    await running?.stop();
  });

  describe('/api', () => {
    it('finds the machine-readable public routes in the route table', () => {
      expect(endpoints.map(([pattern]) => pattern).sort()).toEqual(
        expect.arrayContaining([
          '/.well-known/security.txt',
          '/api/v1/status.json',
          '/api/v1/subprocessors.json',
          '/api/v1/trust.json',
          '/feeds/[name].[format]',
          '/incidents/[id].ics',
        ]),
      );
    });

    it.each(endpoints)(
      'documents %s: method, URL, parameters, response type, caching, cross-origin use, an example',
      async (pattern, route) => {
        const section = sectionFor(page, pattern);
        expect(section, `a <section data-route="${pattern}"> on /api`).not.toBe('');
        const text = plainText(section);
        // the request: GET and the URL, dynamic parts written {name}
        const url = pattern.replace(/\[(\w+)\]/g, '{$1}');
        expect(text).toContain(`GET ${url}`);
        for (const [, param] of pattern.matchAll(/\[(\w+)\]/g))
          expect(section, `parameter ${param}`).toMatch(new RegExp(`<code>${param}</code>`));
        expect(section, 'an example response').toMatch(/<pre[^>]*class="example"/);

        // what it answers, as the server answers it
        const live = await fetch(`${server.url}${route.path}`);
        expect(live.status).toBe(route.status);
        const documentedType = documentedHeader(section, 'Content-Type');
        expect(documentedType, 'a documented Content-Type').not.toBeNull();
        if (route.status === 200) {
          expect(live.headers.get('content-type')).toBe(documentedType);
          expect(documentedHeader(section, 'Cache-Control')).toBe(live.headers.get('cache-control'));
        } else {
          expect(documentedHeader(section, 'Cache-Control'), 'a documented Cache-Control').not.toBeNull();
        }
        expect(documentedHeader(section, 'Access-Control-Allow-Origin')).toBe(corsOf(route));
        if (route.status === 200) expect(live.headers.get('access-control-allow-origin')).toBe(corsOf(route));
        if (!corsOf(route)) expect(text).toMatch(/not readable cross-origin|no Access-Control-Allow-Origin/);
      },
    );

    it.each(endpoints.filter(([, route]) => route.status === 200))(
      'the example of %s has the keys the server answers with',
      async (_pattern, route) => {
        const section = sectionFor(page, _pattern);
        const live = await fetch(`${server.url}${route.path}`);
        if (!(live.headers.get('content-type') ?? '').includes('json')) return;
        const example = /<pre[^>]*class="example"[^>]*>([\s\S]*?)<\/pre>/.exec(section)?.[1] ?? '';
        const parsed = JSON.parse(plainText(example)) as unknown;
        expect(sameKeys(keysOf(parsed), keysOf(await live.json()), '')).toEqual([]);
      },
    );

    it('every feed it lists is served with the documented type', async () => {
      const section = sectionFor(page, '/feeds/[name].[format]');
      const listed = [...section.matchAll(/<code>(\/feeds\/[a-z]+\.[a-z]+)<\/code>\s*<\/td>\s*<td><code>([^<]+)<\/code>/g)].map((m) => [
        m[1],
        m[2],
      ]);
      expect(listed.length).toBeGreaterThanOrEqual(6);
      for (const [path, type] of listed) {
        const res = await fetch(`${server.url}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type'), path).toBe(type);
        await res.arrayBuffer();
      }
    });
  });
});

function corsOf(route: RouteExpectation): string | null {
  return route.cors ? '*' : null;
}
