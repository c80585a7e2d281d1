/**
 * The console's one authorisation decision: every role against every kind
 * of access, and the route and action tables it reads.
 */
import { describe, expect, it } from 'vitest';
import { staffRoles } from '../../db/schema/staff.ts';
import {
  type Access,
  can,
  consoleActions,
  consoleRoutes,
  type Decision,
  decide,
  decideRequest,
  mfaRequiredRoles,
  type Permission,
  type Principal,
  permissions,
  type Role,
  rolePermissions,
} from '../../src/core/auth/permissions.ts';

/** Written out on purpose: a change to who may do what has to change this table too. */
const expected: Record<Role, readonly Permission[]> = {
  viewer: ['console.view', 'account.manage', 'incidents.view', 'announcements.view', 'deliveries.view', 'audit.view'],
  responder: [
    'console.view',
    'account.manage',
    'incidents.view',
    'incidents.manage',
    'announcements.view',
    'announcements.manage',
    'deliveries.view',
    'deliveries.retry',
    'audit.view',
    'alerts.ingest',
    'alerts.manage',
  ],
  admin: [
    'console.view',
    'account.manage',
    'incidents.view',
    'incidents.manage',
    'announcements.view',
    'announcements.manage',
    'deliveries.view',
    'deliveries.retry',
    'subscribers.view',
    'subscribers.manage',
    'subscribers.export',
    'evidence.export',
    'settings.view',
    'settings.manage',
    'audit.view',
    'audit.export',
    'staff.view',
    'access.view',
    'access.manage',
    'access.export',
    'alerts.ingest',
    'alerts.manage',
    'subscribers.import',
    'api.tokens.manage',
  ],
  owner: permissions,
};

const roles: readonly Role[] = staffRoles;
const states: Record<string, Omit<Principal, 'role'>> = {
  verified: { mfaEnrolled: true, mfaVerified: true },
  'enrolled, not verified': { mfaEnrolled: true, mfaVerified: false },
  'not enrolled': { mfaEnrolled: false, mfaVerified: false },
};
const accessKinds: Record<string, Access | undefined> = {
  'unknown route': undefined,
  public: { kind: 'public' },
  mfa: { kind: 'mfa' },
  ...Object.fromEntries(permissions.map((p) => [p, { kind: 'permission', permission: p } satisfies Access])),
};

function expectedDecision(access: Access | undefined, role: Role | null, state: Omit<Principal, 'role'>): Decision {
  if (!access) return 'deny';
  if (access.kind === 'public') return 'allow';
  if (role === null) return 'sign-in';
  if (access.kind === 'mfa') return 'allow';
  if (state.mfaEnrolled && !state.mfaVerified) return 'mfa';
  if (!state.mfaEnrolled && (role === 'owner' || role === 'admin')) return 'enrol';
  return expected[role].includes(access.permission) ? 'allow' : 'deny';
}

describe('roles', () => {
  it.each(roles)('%s has exactly its permissions', (role) => {
    expect([...rolePermissions[role]].sort()).toEqual([...expected[role]].sort());
    for (const permission of permissions) expect(can(role, permission), permission).toBe(expected[role].includes(permission));
  });

  it('each role holds every permission of the role below it, and the owner holds all', () => {
    const ladder: Role[] = ['viewer', 'responder', 'admin', 'owner'];
    for (const [lower, higher] of ladder.slice(0, -1).map((r, i) => [r, ladder[i + 1]] as const)) {
      if (!higher) continue;
      for (const p of rolePermissions[lower]) expect(can(higher, p), `${higher} ${p}`).toBe(true);
    }
    for (const p of permissions) expect(can('owner', p), p).toBe(true);
  });

  it('keeps staff management with owners and personal data from viewers and responders', () => {
    for (const role of ['viewer', 'responder', 'admin'] as const) expect(can(role, 'staff.manage'), role).toBe(false);
    for (const role of ['viewer', 'responder'] as const) {
      for (const p of [
        'subscribers.view',
        'subscribers.manage',
        'subscribers.export',
        'evidence.export',
        'staff.view',
        'settings.manage',
        'audit.export',
      ] as const) {
        expect(can(role, p), `${role} ${p}`).toBe(false);
      }
    }
  });

  it('requires a second factor of owners and admins', () => {
    expect([...mfaRequiredRoles].sort()).toEqual(['admin', 'owner']);
  });
});

describe('decide()', () => {
  it.each(Object.keys(accessKinds))('for %s, for every role and second-factor state', (name) => {
    const access = accessKinds[name];
    expect(decide(access, null)).toBe(expectedDecision(access, null, states['not enrolled'] ?? { mfaEnrolled: false, mfaVerified: false }));
    for (const role of roles) {
      for (const [stateName, state] of Object.entries(states)) {
        expect(decide(access, { role, ...state }), `${role}, ${stateName}`).toBe(expectedDecision(access, role, state));
      }
    }
  });

  it('spells out the cases that matter', () => {
    const staffManage: Access = { kind: 'permission', permission: 'staff.manage' };
    const verified = { mfaEnrolled: true, mfaVerified: true };
    expect(decide(undefined, { role: 'owner', ...verified })).toBe('deny');
    expect(decide(undefined, null)).toBe('deny');
    expect(decide(staffManage, null)).toBe('sign-in');
    expect(decide(staffManage, { role: 'owner', mfaEnrolled: false, mfaVerified: false })).toBe('enrol');
    expect(decide(staffManage, { role: 'admin', mfaEnrolled: false, mfaVerified: false })).toBe('enrol');
    expect(decide(staffManage, { role: 'owner', mfaEnrolled: true, mfaVerified: false })).toBe('mfa');
    expect(decide(staffManage, { role: 'viewer', mfaEnrolled: true, mfaVerified: false })).toBe('mfa');
    expect(decide(staffManage, { role: 'owner', ...verified })).toBe('allow');
    expect(decide(staffManage, { role: 'admin', ...verified })).toBe('deny');
    expect(decide(staffManage, { role: 'viewer', mfaEnrolled: false, mfaVerified: false })).toBe('deny');
    expect(decide({ kind: 'permission', permission: 'console.view' }, { role: 'viewer', mfaEnrolled: false, mfaVerified: false })).toBe(
      'allow',
    );
    expect(decide({ kind: 'mfa' }, { role: 'owner', mfaEnrolled: false, mfaVerified: false })).toBe('allow');
  });
});

describe('decideRequest(): a route and the action it carries', () => {
  // every route access (and "not a console route") × every action access (and "no action") × every caller
  const routeKinds: [string, Access | undefined | null][] = [['not a console route', null], ...Object.entries(accessKinds)];
  const actionKinds: [string, Access | undefined | null][] = [['no action', null], ...Object.entries(accessKinds)];
  const principals: [string, Principal | null][] = [
    ['anonymous', null],
    ...roles.flatMap((role) => Object.entries(states).map(([s, state]): [string, Principal] => [`${role}, ${s}`, { role, ...state }])),
  ];

  it('allows only when the route and the action both allow, and answers the route’s refusal first', () => {
    let checked = 0;
    for (const [routeName, route] of routeKinds) {
      for (const [actionName, action] of actionKinds) {
        for (const [who, principal] of principals) {
          const onRoute = route === null ? 'allow' : decide(route, principal);
          const onAction = action === null ? 'allow' : decide(action, principal);
          const want = onRoute !== 'allow' ? onRoute : onAction;
          expect(decideRequest({ route, action }, principal), `${routeName} carrying ${actionName}, as ${who}`).toBe(want);
          checked++;
        }
      }
    }
    expect(checked).toBe(routeKinds.length * actionKinds.length * principals.length);
  });

  it('a public action never opens a page that needs a permission', () => {
    const dashboard = consoleRoutes['/console'];
    for (const name of Object.keys(consoleActions).filter((n) => consoleActions[n]?.kind === 'public')) {
      expect(decideRequest({ route: dashboard, action: consoleActions[name] }, null), name).toBe('sign-in');
      expect(
        decideRequest({ route: consoleRoutes['/console/staff'], action: consoleActions[name] }, {
          role: 'viewer',
          ...states.verified,
        } as Principal),
      ).toBe('deny');
      expect(
        decideRequest({ route: dashboard, action: consoleActions[name] }, {
          role: 'owner',
          ...states['enrolled, not verified'],
        } as Principal),
      ).toBe('mfa');
    }
  });
});

describe('the route and action tables', () => {
  const known: ReadonlySet<string> = new Set(permissions);
  const tables = { consoleRoutes, consoleActions };

  it.each(Object.keys(tables))('%s name only known permissions', (name) => {
    const table = name === 'consoleRoutes' ? consoleRoutes : consoleActions;
    for (const [entry, access] of Object.entries(table)) {
      expect(['public', 'mfa', 'permission'], entry).toContain(access.kind);
      if (access.kind === 'permission') expect(known.has(access.permission), `${entry} → ${access.permission}`).toBe(true);
    }
  });

  it('leave only signing in and one-time links open, and only second-factor pages to unverified sessions', () => {
    const kinds = (table: Record<string, Access>, kind: Access['kind']) =>
      Object.entries(table)
        .filter(([, a]) => a.kind === kind)
        .map(([k]) => k)
        .sort();
    // Allow-lists: a new route or action is only ever reachable without a permission if it is added here too.
    const within = (actual: string[], allowed: string[]) => expect(actual.filter((k) => !allowed.includes(k))).toEqual([]);
    within(kinds(consoleRoutes, 'public'), [
      '/console/sign-in',
      '/console/link/[token]',
      '/console/denied',
      // single sign-on: the start and the provider's callback (src/core/auth/sso.ts checks the flow itself)
      '/console/sso/start',
      '/console/sso/callback',
    ]);
    expect(kinds(consoleRoutes, 'public')).toContain('/console/sign-in');
    expect(kinds(consoleActions, 'public')).toEqual([
      'acceptNda',
      'completeLink',
      'completeReaderLink',
      'confirmEmail',
      'confirmSmsCode',
      'eraseSubscription',
      'fileObjection',
      'requestAccess',
      'requestReaderLink',
      'signIn',
      'signOutReader',
      'subscribe',
      'updateTopics',
      'verifyAccessRequest',
    ]);
    within(kinds(consoleRoutes, 'mfa'), ['/console/mfa', '/console/mfa/enrol', '/console/sign-out']);
    expect(kinds(consoleActions, 'mfa')).toEqual(['enrolMfa', 'signOut', 'verifyMfa']);
  });

  it('guard staff management with staff.manage and deny what is not listed', () => {
    for (const action of ['inviteStaff', 'changeRole', 'disableStaff', 'enableStaff', 'revokeStaffSessions']) {
      expect(consoleActions[action], action).toEqual({ kind: 'permission', permission: 'staff.manage' });
    }
    const viewer: Principal = { role: 'viewer', mfaEnrolled: true, mfaVerified: true };
    const owner: Principal = { role: 'owner', mfaEnrolled: true, mfaVerified: true };
    expect(decide(consoleActions.inviteStaff, viewer)).toBe('deny');
    expect(decide(consoleActions.inviteStaff, owner)).toBe('allow');
    expect(decide(consoleRoutes['/console/staff'], viewer)).toBe('deny');
    expect(decide(consoleRoutes['/console/secret-admin'], owner)).toBe('deny');
    expect(decide(consoleActions.deleteEverything, owner)).toBe('deny');
    // Looked up by name, as the middleware does: a name that happens to be an Object member finds no entry either.
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(decide(consoleActions[name], owner), name).toBe('deny');
      expect(decide(consoleRoutes[name], owner), name).toBe('deny');
    }
  });
});
