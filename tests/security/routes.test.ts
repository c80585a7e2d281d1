/**
 * Every route, found from the source (src/pages) and the build's manifest,
 * as an attacker meets it: who may reach it (anonymous, a subscriber's
 * token, a provider's signature, a staff session), the headers on every
 * answer, CORS, cross-site requests on every method, and Astro's action
 * endpoint walked with the console's authorisation table.
 */

import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { consoleActions, consoleRoutes } from '../../src/core/auth/permissions.ts';
import { sessionCookie } from '../../src/core/auth/session.ts';
import { apiOperations, routePatternOf } from '../../src/lib/api/operations.ts';
import { actions, expected, type Who, whos } from '../helpers/authorisation-table.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import {
  builtRoutes,
  Client,
  expectNoCredentialedCors,
  expectNoStackTrace,
  expectSecurityHeaders,
  type HttpAnswer,
  leaked,
  serverSecrets,
  sourceRoutes,
} from '../helpers/security.ts';
import type { RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';
import { consolePath, type RouteExpectation, routeTable } from './route-table.ts';

/** The methods a staff API route takes (its operations in the registry): each answers 401 without a token. */
const apiMethods = (pattern: string): string[] => apiOperations.filter((o) => routePatternOf(o.path) === pattern).map((o) => o.method);

const COOKIE = sessionCookie(true).name;
const EVIL = 'https://evil.example';
const source = sourceRoutes();
const built = builtRoutes();
const discovered = [...new Set([...source.keys(), ...built])].sort();
const isConsole = (pattern: string) => pattern === '/console' || pattern.startsWith('/console/');

/** Every discovered route with the path to request and what an anonymous GET must answer. */
const everyRoute: [string, { path: string; expectation: RouteExpectation | null }][] = discovered.map((pattern) => [
  pattern,
  isConsole(pattern)
    ? { path: consolePath(pattern), expectation: null }
    : { path: routeTable[pattern]?.path ?? pattern, expectation: routeTable[pattern] ?? null },
]);

describe('the route inventory', () => {
  it('finds the routes the build serves from src/pages, plus Astro’s own endpoints', () => {
    expect(source.size).toBeGreaterThan(40);
    for (const pattern of source.keys()) expect(built, `${pattern} is in src/pages but not in the build`).toContain(pattern);
    expect(discovered).toEqual(expect.arrayContaining(['/_actions/[...path]', '/webhooks/resend', '/subscription/[token]']));
  });

  it.each(discovered)('%s is classified', (pattern) => {
    const where = source.get(pattern) ?? 'Astro (build manifest)';
    if (isConsole(pattern)) {
      expect(
        Object.hasOwn(consoleRoutes, pattern),
        `${pattern} (${where}) is not in src/core/auth/permissions.ts: give it a permission there and a row in tests/helpers/authorisation-table.ts`,
      ).toBe(true);
    } else {
      expect(
        Object.hasOwn(routeTable, pattern),
        `${pattern} (${where}) is not classified: add it to tests/security/route-table.ts as public, token, webhook or internal, with a path to request`,
      ).toBe(true);
    }
  });

  it('classifies no route that does not exist any more', () => {
    for (const pattern of Object.keys(routeTable))
      expect(discovered, `tests/security/route-table.ts lists ${pattern}, which the app no longer has`).toContain(pattern);
  });

  it('has no public route named like a debug, test or secret endpoint', () => {
    for (const pattern of discovered.filter((p) => !isConsole(p)))
      expect(pattern, `${pattern} looks like a debug or internal endpoint outside the console`).not.toMatch(
        /debug|phpinfo|\/test|\/dev\b|secret|\benv\b|config|backup|dump|admin/i,
      );
  });
});

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;

  beforeAll(async () => {
    // an https public URL: every answer must then carry HSTS, and the session cookie is __Host-
    running = await engine.start({ env: { CANDOR_PUBLIC_URL: 'https://trust.lumenwork.example' } });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
  });

  /**
   * Forged tokens are counted per client address and lock it out after 20 (src/core/subscriptions/refusals.ts):
   * each group of checks speaks from its own loopback address, so one group's forgeries do not lock another's.
   */
  const from = { get: '127.0.0.2', methods: '127.0.0.3', staff: '127.0.0.4', csrf: '127.0.0.5' } as const;
  let speaker: string = from.get;
  const anonymous = () => new Client(server.url, speaker);
  const staff = async (role: Who): Promise<Client> => {
    const client = new Client(server.url, speaker);
    if (role !== 'anonymous') client.setCookie(COOKIE, (await signedInStaffOn(db, role)).token);
    return client;
  };

  function expectHygiene(answer: HttpAnswer, where: string, cors = false): void {
    expect(answer.status, `${where} answered ${answer.status}`).toBeLessThan(500);
    expectSecurityHeaders(answer, where);
    expect(answer.headers.get('strict-transport-security') ?? '', `${where}: HSTS`).toMatch(/^max-age=\d{8,}/);
    expectNoStackTrace(answer.body, where);
    expectNoCredentialedCors(answer, where, cors);
    // on PostgreSQL the secrets are the environment's, with the database URL
    expect(
      leaked(answer.body, [...serverSecrets(server.dataDir), ...Object.values(running.env)]),
      `${where} shows a server secret`,
    ).toEqual([]);
  }

  describe('every route, anonymously', () => {
    beforeAll(() => {
      speaker = from.get;
    });
    it.each(everyRoute)('GET %s', async (pattern, { path, expectation }) => {
      const res = await anonymous().get(path, { origin: EVIL });
      const where = `GET ${path}`;
      if (expectation) expect(res.status, where).toBe(expectation.status);
      else {
        // console: the permission table decides; anything but its public pages sends the visitor to sign in
        const access = consoleRoutes[pattern];
        // single sign-on is not configured on this server: its two public routes answer 404 themselves
        if (access?.kind === 'public') expect(pattern.startsWith('/console/sso/') ? [404] : [200, 403, 410], where).toContain(res.status);
        else {
          expect(res.status, where).toBe(303);
          expect(res.headers.get('location'), where).toMatch(/^\/console\/sign-in\?next=/);
        }
        expect(res.headers.get('cache-control'), `${where}: console answers are never cached`).toBe('no-store');
      }
      expectHygiene(res, where, expectation?.cors === true);
      if (expectation?.kind === 'token') {
        expect(res.headers.get('cache-control'), `${where}: a personal page is never cached`).toBe('no-store');
        expect(res.headers.get('referrer-policy'), `${where}: the token must not leave in a Referer`).toMatch(
          /^(same-origin|no-referrer)$/,
        );
      }
      if (expectation?.kind === 'webhook') expect(res.status).not.toBe(200);
      if (expectation?.kind === 'reader') {
        expect(res.headers.get('location'), `${where}: without a reader session, the sign-in page`).toBe('/documents/sign-in');
        expect(res.headers.get('cache-control'), `${where}: a reader's answer is never cached`).toBe('no-store');
      }
    });

    it.each(everyRoute)('other methods on %s', async (pattern, { path, expectation }) => {
      speaker = from.methods;
      for (const method of ['HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE']) {
        const res = await anonymous().request(path, {
          method,
          headers: {
            origin: new URL(server.url).origin,
            'sec-fetch-site': 'same-origin',
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: method === 'HEAD' || method === 'OPTIONS' ? undefined : '',
        });
        const where = `${method} ${path}`;
        expectHygiene(res, where, expectation?.cors === true);
        // a preflight from another origin is never granted credentials or a specific origin
        expect(res.headers.get('access-control-allow-methods') ?? '', where).not.toMatch(/PUT|PATCH|DELETE/);
        if (expectation?.kind === 'webhook' && method === 'POST') expect(res.status, `${where} without a signature`).toBe(401);
        if (expectation?.kind === 'api' && apiMethods(pattern).includes(method)) expect(res.status, `${where} without a token`).toBe(401);
      }
    });
  });

  describe('a staff session grants nothing outside the console', () => {
    beforeAll(() => {
      speaker = from.staff;
    });
    const outside = everyRoute.filter(([pattern, { expectation }]) => !isConsole(pattern) && expectation?.kind !== 'public');
    it.each(outside)('%s answers an owner as it answers anyone', async (pattern, { path, expectation }) => {
      const owner = await staff('owner');
      expect((await owner.get(path)).status, `GET ${path}`).toBe(expectation?.status);
      if (expectation?.kind === 'webhook' || (expectation?.kind === 'api' && apiMethods(pattern).includes('POST')))
        expect((await owner.post(path, { MessageSid: 'SM1', MessageStatus: 'failed' })).status).toBe(401);
      if (expectation?.kind === 'token' && path.startsWith('/unsubscribe/')) expect((await owner.post(path, {})).status).toBe(404);
    });
  });

  describe('Astro’s action endpoint, /_actions/<name>, decides as the console’s form posts do', () => {
    // The form matrix (tests/integration/console-authorisation.test.ts) posts `?_action=<name>`; this is the other door.
    it('knows every action', () => {
      expect(Object.keys(actions).sort()).toEqual(Object.keys(consoleActions).sort());
    });

    describe.each(whos)('as %s', (who) => {
      it.each(Object.entries(actions))('%s', async (name, needs) => {
        const res = await (await staff(who)).post(`/_actions/${name}`, {});
        const outcome = expected(needs, who);
        if (outcome === 'sign-in') expect(res.status).toBe(401);
        else if (outcome === 'deny') expect(res.status).toBe(403);
        else expect([401, 403]).not.toContain(res.status);
        expect(res.status).toBeLessThan(500);
      });
    });

    it('an action name from Object.prototype finds nothing', async () => {
      for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
        expect([403, 404]).toContain((await (await staff('owner')).post(`/_actions/${name}`, {})).status);
        expect([403, 404]).toContain((await (await staff('owner')).post(`/console?_action=${name}`, {})).status);
      }
    });
  });

  describe('cross-site requests (CSRF) on every route and method', () => {
    beforeAll(() => {
      speaker = from.csrf;
    });
    const sites: [string, Record<string, string>][] = [
      ['another site', { origin: EVIL, 'sec-fetch-site': 'cross-site' }],
      ['a sibling subdomain', { origin: 'https://evil.lumenwork.example', 'sec-fetch-site': 'same-site' }],
      ['a sandboxed frame', { origin: 'null', 'sec-fetch-site': 'cross-site' }],
      ['an old browser (Origin only)', { origin: EVIL }],
      ['a fetch without a form type', { origin: EVIL, 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' }],
    ];
    // the staff API reads no cookie at all (a Bearer token only): a forged request from a page carries nothing it accepts
    const exempt = (pattern: string) =>
      pattern.startsWith('/webhooks/') || pattern === '/unsubscribe/[token]' || routeTable[pattern]?.kind === 'api';

    it.each(everyRoute)('%s refuses them', async (pattern, { path }) => {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        for (const [who, headers] of method === 'POST' ? sites : sites.slice(0, 1)) {
          const res = await (await staff('owner')).request(path, {
            method,
            headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
            body: 'email=attacker%40evil.example&role=owner',
          });
          const where = `${method} ${path} from ${who}`;
          expect(res.status, where).toBeLessThan(500);
          // provider callbacks, one-click unsubscribes and the staff API carry their own proof: still nothing without it
          if (exempt(pattern)) expect([401, 404, 405], where).toContain(res.status);
          else expect([403, 404, 405], where).toContain(res.status);
        }
      }
    });

    it.each(Object.keys(actions))('action %s is refused from another site, whichever route carries it', async (name) => {
      const carriers = [
        '/console',
        '/subscribe',
        `/unsubscribe/a1.${'A'.repeat(32)}`,
        '/webhooks/resend',
        '/webhooks/twilio/inbound',
        `/_actions/${name}`,
      ];
      for (const carrier of carriers) {
        for (const [who, headers] of sites) {
          const path = carrier.startsWith('/_actions/') ? carrier : `${carrier}?_action=${name}`;
          const res = await (await staff('owner')).request(path, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
            body: 'email=attacker%40evil.example&role=owner&staffId=1&address=attacker%40evil.example&channel=email&topics=incidents',
          });
          expect(res.status, `${name} via ${path} from ${who}`).toBe(403);
        }
      }
      const attackers = await readRows(db, (q) =>
        q.db.$count(q.t.staff, and(eq(q.t.staff.trustCenterId, q.trustCenter), like(q.t.staff.email, 'attacker%'))),
      );
      expect(attackers).toBe(0);
    });
  });

  describe('Astro’s image endpoint', () => {
    it('fetches nothing remote and reads nothing outside the build’s client files', async () => {
      const sources = [
        '//evil.example/x.png',
        'https://evil.example/x.png',
        'http://127.0.0.1:9/x.png',
        'file:///etc/passwd',
        '/../../etc/passwd',
        '/..%2f..%2fsecrets.json',
        '/../server/entry.mjs',
        '/robots.txt',
        '/favicon.svg',
      ];
      for (const href of sources) {
        const res = await anonymous().get(`/_image?href=${encodeURIComponent(href)}&w=16&h=16&f=png`);
        expect(res.status, href).not.toBe(200);
        expect(res.status, href).toBeLessThan(500);
        expect(res.body, href).not.toMatch(/root:x:0|import |encryptionKey/);
      }
    });
  });
});
