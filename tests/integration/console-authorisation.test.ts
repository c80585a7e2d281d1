/**
 * The authorisation matrix: every console route and every action, for an
 * anonymous visitor and each role, against the running server. The expected
 * table (tests/helpers/authorisation-table.ts) is written out independently
 * of src/core/auth/permissions.ts; a console page or action that the code's
 * table does not know fails the coverage checks below. The security suite
 * walks the same table over /_actions/<name> (tests/security/routes.test.ts).
 * The matrix runs on each engine (tests/helpers/engine-server.ts): SQLite,
 * and PostgreSQL under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleActions, consoleRoutes } from '../../src/core/auth/permissions.ts';
import { actions, expected, routes, type Who, whos } from '../helpers/authorisation-table.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { ROOT } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

describe('every console page and action is in the permission table', () => {
  function pagePatterns(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return pagePatterns(path);
      const route = `/${relative(join(ROOT, 'src/pages'), path)}`.replace(/\.(astro|ts)$/, '').replace(/\/index$/, '');
      return [route];
    });
  }

  it('pages', () => {
    const patterns = pagePatterns(join(ROOT, 'src/pages/console')).sort();
    expect(patterns).toEqual(Object.keys(consoleRoutes).sort());
    expect(Object.keys(routes).sort()).toEqual(patterns);
  });

  it('actions', () => {
    const dir = join(ROOT, 'src/actions');
    const defined = readdirSync(dir)
      .flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/^ {2}(\w+): defineAction\(/gm)].map((m) => m[1]))
      .sort();
    expect(defined).toEqual(Object.keys(consoleActions).sort());
    expect(Object.keys(actions).sort()).toEqual(defined);
  });
});

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;

  beforeAll(async () => {
    running = await engine.start();
  });
  afterAll(async () => {
    await running?.stop();
  });

  /** A fresh, fully signed-in client per check, so one action's effect (sign-out) cannot colour the next. */
  async function clientFor(who: Who): Promise<ConsoleClient> {
    const client = new ConsoleClient(running.server.url);
    if (who !== 'anonymous') client.setCookie('candor_session', (await signedInStaffOn(running.database, who)).token);
    return client;
  }

  describe.each(whos)('as %s', (who) => {
    it.each(Object.entries(routes))('GET %s', async (_pattern, { path, needs, status }) => {
      const res = await (await clientFor(who)).get(path);
      const outcome = expected(needs, who);
      if (outcome === 'sign-in') {
        expect(res.status).toBe(303);
        expect(res.location).toMatch(/^\/console\/sign-in\?next=/);
      } else if (outcome === 'deny') {
        expect(res.status).toBe(403);
        expect(res.html).toContain('Not allowed');
      } else if (status) {
        expect(res.status).toBe(status);
      } else {
        expect([401, 403]).not.toContain(res.status);
        expect(res.location ?? '').not.toMatch(/^\/console\/sign-in/);
      }
    });

    // Carried by a public console page, so the action's own permission decides; on a page that needs more,
    // the page's permission is decided first (tests/security/console-pages.test.ts walks every combination).
    it.each(Object.entries(actions))('action %s', async (name, needs) => {
      const res = await (await clientFor(who)).post(`/console/sign-in?_action=${name}`, {});
      const outcome = expected(needs, who);
      if (outcome === 'sign-in') expect(res.status).toBe(401);
      else if (outcome === 'deny') expect(res.status).toBe(403);
      else expect([401, 403]).not.toContain(res.status);
    });
  });
});
