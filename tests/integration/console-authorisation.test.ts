/**
 * The authorisation matrix: every console route and every action, for an
 * anonymous visitor and each role, against the running server. The expected
 * table is written out here, independently of src/core/auth/permissions.ts;
 * a console page or action that the code's table does not know fails the
 * coverage checks below.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { consoleActions, consoleRoutes, type Role } from '../../src/core/auth/permissions.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { ROOT, type RunningServer, startServer } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';

type Who = 'anonymous' | Role;
/** public: anyone; session: anyone signed in; a role: that role and those above it */
type Needs = 'public' | 'session' | Role;

const ladder: Role[] = ['viewer', 'responder', 'admin', 'owner'];
const whos: Who[] = ['anonymous', ...ladder];

/** `status`: what the page answers when allowed, where that is not 200-ish by design */
const routes: Record<string, { path: string; needs: Needs; status?: number }> = {
  '/console/sign-in': { path: '/console/sign-in', needs: 'public' },
  '/console/denied': { path: '/console/denied', needs: 'public', status: 403 },
  '/console/link/[token]': { path: '/console/link/abc.def', needs: 'public' },
  '/console/mfa': { path: '/console/mfa', needs: 'session' },
  '/console/mfa/enrol': { path: '/console/mfa/enrol', needs: 'session' },
  '/console': { path: '/console', needs: 'viewer' },
  '/console/account': { path: '/console/account', needs: 'viewer' },
  '/console/audit': { path: '/console/audit', needs: 'viewer' },
  '/console/audit/export': { path: '/console/audit/export?format=json', needs: 'admin' },
  '/console/staff': { path: '/console/staff', needs: 'admin' },
  '/console/deliveries': { path: '/console/deliveries', needs: 'viewer' },
  '/console/deliveries/[id]': { path: '/console/deliveries/999999', needs: 'viewer', status: 404 },
  '/console/deliveries/progress.json': { path: '/console/deliveries/progress.json?ids=1', needs: 'viewer' },
  '/console/deliveries/log': { path: '/console/deliveries/log', needs: 'viewer' },
  '/console/settings': { path: '/console/settings', needs: 'admin' },
  '/console/subscribers': { path: '/console/subscribers', needs: 'admin' },
  '/console/incidents': { path: '/console/incidents', needs: 'viewer' },
  '/console/incidents/new': { path: '/console/incidents/new', needs: 'responder' },
  '/console/incidents/[id]': { path: '/console/incidents/999999', needs: 'viewer', status: 404 },
  '/console/subscribers/[id]': { path: '/console/subscribers/999999', needs: 'admin', status: 404 },
  '/console/subscribers/quarantine': { path: '/console/subscribers/quarantine', needs: 'admin' },
  '/console/subscribers/export.csv': { path: '/console/subscribers/export.csv', needs: 'admin' },
  '/console/announcements': { path: '/console/announcements', needs: 'viewer' },
  '/console/objections': { path: '/console/objections', needs: 'viewer' },
  '/console/objections/[id]': { path: '/console/objections/999999', needs: 'viewer', status: 404 },
};

const actions: Record<string, Needs> = {
  signIn: 'public',
  completeLink: 'public',
  verifyMfa: 'session',
  enrolMfa: 'session',
  signOut: 'session',
  revokeSession: 'viewer',
  revokeOtherSessions: 'viewer',
  changePassword: 'viewer',
  regenerateRecoveryCodes: 'viewer',
  inviteStaff: 'owner',
  changeRole: 'owner',
  disableStaff: 'owner',
  enableStaff: 'owner',
  revokeStaffSessions: 'owner',
  resetStaffSignIn: 'owner',
  retryFailedDeliveries: 'responder',
  // the public's own actions; each checks the subscriber's signed token itself
  subscribe: 'public',
  confirmSmsCode: 'public',
  confirmEmail: 'public',
  updateTopics: 'public',
  eraseSubscription: 'public',
  sendTestMessage: 'admin',
  removeSubscriber: 'admin',
  previewIncident: 'responder',
  publishIncident: 'responder',
  cancelScheduledUpdate: 'responder',
  markAuthorityNotified: 'responder',
  publishPostmortem: 'responder',
  liftSuppression: 'admin',
  editNotice: 'responder',
  publishNotice: 'responder',
  unscheduleNotice: 'responder',
  updateObjection: 'responder',
  // the customer's own: the signed objection link is checked by the flow itself
  fileObjection: 'public',
};

function expected(needs: Needs, who: Who): 'allow' | 'sign-in' | 'deny' {
  if (needs === 'public') return 'allow';
  if (who === 'anonymous') return 'sign-in';
  if (needs === 'session') return 'allow';
  return ladder.indexOf(who) >= ladder.indexOf(needs) ? 'allow' : 'deny';
}

let server: RunningServer;
let db: Db;

beforeAll(async () => {
  server = await startServer();
  db = openTestDb(server.dataDir);
});
afterAll(async () => {
  db?.$client.close();
  await server?.stop();
});

/** A fresh, fully signed-in client per check, so one action's effect (sign-out) cannot colour the next. */
function clientFor(who: Who): ConsoleClient {
  const client = new ConsoleClient(server.url);
  if (who !== 'anonymous') client.setCookie('candor_session', signedInStaff(db, who).token);
  return client;
}

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

describe.each(whos)('as %s', (who) => {
  it.each(Object.entries(routes))('GET %s', async (_pattern, { path, needs, status }) => {
    const res = await clientFor(who).get(path);
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

  it.each(Object.entries(actions))('action %s', async (name, needs) => {
    const res = await clientFor(who).post(`/console?_action=${name}`, {});
    const outcome = expected(needs, who);
    if (outcome === 'sign-in') expect(res.status).toBe(401);
    else if (outcome === 'deny') expect(res.status).toBe(403);
    else expect([401, 403]).not.toContain(res.status);
  });
});
