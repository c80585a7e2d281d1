/**
 * The console's pages as a property: for every console route (from the
 * build's manifest) × every action name the project has (public ones
 * included, and names it does not have) × every caller × GET and POST, the
 * answer reveals nothing of the page unless the route's permission allows
 * it, and an action runs only when its own permission allows it as well.
 *
 * "Reveals nothing" is judged against what the page really shows: an owner
 * renders every page first, which gives each page's title, and the data
 * seeded below plants canaries (a non-public breach, its Art. 33 facts, a
 * subscriber's address, a staff address, a logged message) that must show up
 * for the owner somewhere and never for a caller who may not see the page.
 *
 * The expectations come from tests/helpers/authorisation-table.ts, written
 * independently of src/core/auth/permissions.ts.
 */

import { and, asc, desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { consoleActions } from '../../src/core/auth/permissions.ts';
import { sessionCookie } from '../../src/core/auth/session.ts';
import { customerOn, grantOn } from '../helpers/access-fixtures.ts';
import { actions, expected, ladder, type Needs, routes } from '../helpers/authorisation-table.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { builtRoutes, Client, expectNoStackTrace, type HttpAnswer, pageText } from '../helpers/security.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { newSessionOn, staffMemberOn } from '../helpers/staff.ts';

const COOKIE = sessionCookie(false).name;
const CANARY = {
  title: 'Canary breach Qz7Kp9',
  nature: 'Canary nature Wv3Ht8 of the breach',
  subscriber: 'canary-subscriber-r4t8@customer.example',
  staff: 'canary-staff-m2n6@lumenwork.example',
  // a customer who was granted a gated document (Console → Access)
  customer: 'canary-customer-k5w9@customer.example',
} as const;

/** Who asks: anonymous, a session that has given its password only, and each role fully signed in. */
type Caller = 'anonymous' | 'password only' | 'not enrolled' | (typeof ladder)[number];
const callers: Caller[] = ['anonymous', 'password only', 'not enrolled', ...ladder];

function allows(needs: Needs, caller: Caller): boolean {
  if (needs === 'public') return true;
  if (caller === 'anonymous') return false;
  if (needs === 'session') return true;
  // a session that owes its second factor (or its enrolment) reaches nothing that needs a permission
  if (caller === 'password only' || caller === 'not enrolled') return false;
  return expected(needs, caller) === 'allow';
}

const consolePatterns = [...builtRoutes()].filter((p) => p === '/console' || p.startsWith('/console/')).sort();
const titleOf = (html: string) => /<title>([^<]*)<\/title>/.exec(html)?.[1]?.trim() ?? null;

const DENIED_TITLES = /^(Not allowed|Sign in required) · /;

/** Every action the project has, names it does not, and no action at all. */
const actionNames: (string | null)[] = [null, ...Object.keys(consoleActions), 'noSuchAction', 'toString', '__proto__'];

/** Runs requests a few at a time: the matrix has thousands and each is small. */
async function inParallel<T>(items: T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  const staffOf = new Map<Caller, number>();

  /** A fresh session per request: an allowed action may end it (signOut) or others of the same person. */
  async function clientFor(caller: Caller): Promise<Client> {
    const client = new Client(server.url);
    const staffId = staffOf.get(caller);
    if (staffId !== undefined) client.setCookie(COOKIE, await newSessionOn(db, staffId, { mfaVerified: caller !== 'password only' }));
    return client;
  }

  /** Concrete paths: the seeded breach, subscriber and notification where a route takes an id. */
  const ids: Record<string, string> = {};
  function pathOf(pattern: string): string {
    const known = routes[pattern]?.path;
    const id = ids[pattern];
    if (id) return pattern.replace('[id]', id);
    return known ?? pattern.replace('[id]', '999999').replace('[token]', 'abc.def');
  }

  /** What the owner sees on each page: its title (the denied and sign-in pages have their own). */
  const ownerView = new Map<string, { status: number; title: string | null; body: string }>();

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, testKeys: true }) });
    server = running.server;
    db = running.database;
    for (const role of ladder) staffOf.set(role, await staffMemberOn(db, role, { enrolled: role === 'owner' || role === 'admin' }));
    staffOf.set('password only', await staffMemberOn(db, 'owner', { enrolled: true }));
    staffOf.set('not enrolled', await staffMemberOn(db, 'admin', { enrolled: false }));
    await staffMemberOn(db, 'viewer', { enrolled: false, email: CANARY.staff });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => CANARY.subscriber });
    const customer = await customerOn(db, CANARY.customer);
    await grantOn(db, {
      recipientId: customer,
      name: 'Canary customer',
      company: 'Canary company',
      documents: ['soc-2-type-ii-report'],
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 30 * 86_400_000),
    });

    // a non-public data breach: its facts go to subscribers (the log transport keeps the message)
    const declared = await (await clientFor('responder')).post('/console/incidents/new?_action=publishIncident', {
      title: CANARY.title,
      kind: 'breach',
      severity: 'critical',
      status: 'identified',
      'component:web-app': 'operational',
      body: 'We found unauthorised access to one workspace export.',
      breachAwareAt: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
      breachNature: CANARY.nature,
      breachSubjects: 'not yet known',
      breachRecords: 'not yet known',
      breachConsequences: 'not yet known',
      breachMeasures: 'Credential revoked.',
    });
    expect(declared.status, pageText(declared.body).slice(0, 400)).toBe(303);
    ids['/console/incidents/[id]'] = /\/console\/incidents\/(\d+)/.exec(declared.headers.get('location') ?? '')?.[1] ?? '';
    const [subscriber] = await readRows(db, (q) =>
      q.db
        .select({ id: q.t.subscribers.id })
        .from(q.t.subscribers)
        .where(eq(q.t.subscribers.trustCenterId, q.trustCenter))
        .orderBy(asc(q.t.subscribers.id))
        .limit(1),
    );
    ids['/console/subscribers/[id]'] = String(subscriber?.id ?? '');
    const [notification] = await readRows(db, (q) =>
      q.db
        .select({ id: q.t.notifications.id })
        .from(q.t.notifications)
        .where(eq(q.t.notifications.trustCenterId, q.trustCenter))
        .orderBy(desc(q.t.notifications.id))
        .limit(1),
    );
    ids['/console/deliveries/[id]'] = String(notification?.id ?? '');
    const sent = () =>
      readRows(db, (q) =>
        q.db.$count(q.t.deliveries, and(eq(q.t.deliveries.trustCenterId, q.trustCenter), eq(q.t.deliveries.status, 'sent'))),
      );
    // generous: on a loaded machine the dispatcher's first round may take longer than until()'s default
    await until(async () => (await sent()) > 0, 'the breach notice logged', 60_000);

    for (const pattern of consolePatterns) {
      const answer = await (await clientFor('owner')).get(pathOf(pattern));
      ownerView.set(pattern, { status: answer.status, title: titleOf(answer.body), body: answer.body });
    }
  });
  afterAll(async () => {
    await running?.stop();
  });

  /** What a caller who may not see `pattern` may get: a refusal or a way to sign in, and nothing of the page. */
  function expectNothingOfThePage(answer: HttpAnswer, pattern: string, where: string): void {
    expect(answer.status, where).toBeLessThan(500);
    if (answer.status === 303) expect(answer.headers.get('location') ?? '', where).toMatch(/^\/console\/(sign-in|mfa|mfa\/enrol)(\?|$)/);
    else expect([401, 403], `${where} answered ${answer.status}`).toContain(answer.status);
    const title = titleOf(answer.body);
    const page = ownerView.get(pattern)?.title;
    if (title !== null) expect(title, where).toMatch(DENIED_TITLES);
    if (page && !DENIED_TITLES.test(page)) expect(answer.body, `${where} shows the page “${page}”`).not.toContain(page);
    for (const canary of Object.values(CANARY)) expect(answer.body, `${where} shows ${canary}`).not.toContain(canary);
  }

  describe('the seeded canaries are on the pages, for those who may see them', () => {
    it('every console route of the build is in the expected table, and the owner sees the canaries', () => {
      for (const pattern of consolePatterns)
        expect(Object.hasOwn(routes, pattern), `${pattern} is not in authorisation-table.ts`).toBe(true);
      const everything = [...ownerView.values()].map((v) => v.body).join('\n');
      for (const canary of Object.values(CANARY)) expect(everything, canary).toContain(canary);
      expect(ownerView.get('/console/incidents/[id]')?.status).toBe(200);
      expect(ownerView.get('/console/subscribers/[id]')?.status).toBe(200);
    });
  });

  describe.each(consolePatterns)('%s', (pattern) => {
    it('answers only those its permission allows, whatever action or method the request carries', async () => {
      const needs = routes[pattern]?.needs;
      if (!needs) throw new Error(`${pattern} is not in tests/helpers/authorisation-table.ts`);
      const path = pathOf(pattern);
      const cases = callers.flatMap((caller) =>
        (['GET', 'POST'] as const).flatMap((method) => actionNames.map((action) => ({ caller, method, action }))),
      );
      let checked = 0;
      await inParallel(cases, 6, async ({ caller, method, action }) => {
        const target = action ? `${path}${path.includes('?') ? '&' : '?'}_action=${action}` : path;
        const client = await clientFor(caller);
        const answer = method === 'GET' ? await client.get(target) : await client.post(target, {});
        const where = `${method} ${target} as ${caller}`;
        expectNoStackTrace(answer.body, where);
        expect(answer.status, where).toBeLessThan(500);
        // an action runs only on POST; it must then be allowed as well, by its own permission
        const actionNeeds = method === 'POST' && action ? (Object.hasOwn(actions, action) ? actions[action] : undefined) : 'public';
        const routeAllowed = allows(needs, caller);
        if (!routeAllowed) expectNothingOfThePage(answer, pattern, where);
        else if (actionNeeds === undefined || !allows(actionNeeds, caller)) {
          expect([401, 403, 404], `${where} answered ${answer.status}`).toContain(answer.status);
          expect(titleOf(answer.body) ?? 'Not allowed · (no page)', where).toMatch(DENIED_TITLES);
        }
        checked++;
      });
      expect(checked).toBe(cases.length);
    });
  });

  describe('an action on a public page is decided by the action’s permission', () => {
    const carriers = ['/subscribe', '/status', `/unsubscribe/a1.${'A'.repeat(32)}`];
    it.each(Object.keys(actions))('%s', async (action) => {
      const needs = actions[action] ?? 'owner';
      for (const carrier of carriers) {
        for (const caller of callers) {
          const answer = await (await clientFor(caller)).post(`${carrier}?_action=${action}`, {});
          const where = `POST ${carrier}?_action=${action} as ${caller}`;
          expect(answer.status, where).toBeLessThan(500);
          if (!allows(needs, caller)) {
            expect([401, 403], `${where} answered ${answer.status}`).toContain(answer.status);
            for (const canary of Object.values(CANARY)) expect(answer.body, where).not.toContain(canary);
          }
        }
      }
    });
  });
});
