/**
 * Who may do what in the console: the only place that says so. Every
 * console route (by its Astro route pattern) and every action (by name)
 * maps to one permission; anything not in these tables is denied.
 */
import type { staffRoles } from '../../../db/schema/staff.ts';

export type Role = (typeof staffRoles)[number];

export const permissions = [
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
  // evidence of notification: who was told what, when (personal data: the roles that may export subscribers)
  'evidence.export',
  'settings.view',
  'settings.manage',
  'audit.view',
  'audit.export',
  'staff.view',
  'staff.manage',
  // customers' access to gated documents: requests, rules, grants, who read what (personal data: admins and owners)
  'access.view',
  'access.manage',
  'access.export',
  // automation (issue 17): staff API tokens (admins and owners make them), alerts from monitoring, subscriber import
  'api.tokens.manage',
  'alerts.ingest',
  'alerts.manage',
  'subscribers.import',
  // requiring single sign-on and marking break-glass owners: owners only (not in any other role's list)
  'sso.manage',
] as const;
export type Permission = (typeof permissions)[number];

const viewer: Permission[] = ['console.view', 'account.manage', 'incidents.view', 'announcements.view', 'deliveries.view', 'audit.view'];
const responder: Permission[] = [
  ...viewer,
  'incidents.manage',
  'announcements.manage',
  'deliveries.retry',
  'alerts.ingest',
  'alerts.manage',
];
// Subscribers are personal data: only admins and owners see them.
const admin: Permission[] = [
  ...responder,
  'subscribers.view',
  'subscribers.manage',
  'subscribers.export',
  'evidence.export',
  'subscribers.import',
  'api.tokens.manage',
  'settings.view',
  'settings.manage',
  'audit.export',
  'staff.view',
  'access.view',
  'access.manage',
  'access.export',
];

export const rolePermissions: Record<Role, ReadonlySet<Permission>> = {
  viewer: new Set(viewer),
  responder: new Set(responder),
  admin: new Set(admin),
  owner: new Set(permissions),
};

/** Roles that must have a second factor before they reach anything but enrolment. */
export const mfaRequiredRoles: ReadonlySet<Role> = new Set(['owner', 'admin']);

export function can(role: Role, permission: Permission): boolean {
  return rolePermissions[role].has(permission);
}

/**
 * How a route is reached: `public` needs no session (sign-in, one-time
 * links), `mfa` needs a signed-in session that may still lack its second
 * factor (second-factor prompt, enrolment), anything else a permission.
 */
export type Access = { kind: 'public' } | { kind: 'mfa' } | { kind: 'permission'; permission: Permission };

const open: Access = { kind: 'public' };
const mfa: Access = { kind: 'mfa' };
const need = (permission: Permission): Access => ({ kind: 'permission', permission });

export const consoleRoutes: Record<string, Access> = {
  '/console/sign-in': open,
  '/console/denied': open,
  '/console/link/[token]': open,
  // single sign-on: the start and the provider's callback are how someone without a session gets one
  '/console/sso/start': open,
  '/console/sso/callback': open,
  '/console/mfa': mfa,
  '/console/mfa/enrol': mfa,
  '/console': need('console.view'),
  '/console/account': need('account.manage'),
  '/console/staff': need('staff.view'),
  '/console/audit': need('audit.view'),
  '/console/audit/export': need('audit.export'),
  '/console/deliveries': need('deliveries.view'),
  '/console/deliveries/[id]': need('deliveries.view'),
  '/console/deliveries/progress.json': need('deliveries.view'),
  '/console/deliveries/log': need('deliveries.view'),
  '/console/settings': need('settings.view'),
  '/console/subscribers': need('subscribers.view'),
  '/console/incidents': need('incidents.view'),
  '/console/incidents/new': need('incidents.manage'),
  '/console/incidents/[id]': need('incidents.view'),
  '/console/alerts': need('incidents.view'),
  '/console/alerts/[id]': need('incidents.view'),
  '/console/subscribers/[id]': need('subscribers.view'),
  '/console/subscribers/quarantine': need('subscribers.view'),
  '/console/subscribers/export.csv': need('subscribers.export'),
  '/console/subscribers/export.json': need('subscribers.export'),
  '/console/subscribers/import': need('subscribers.import'),
  // who was told what, and when: the signed evidence of notification (personal data)
  '/console/evidence': need('evidence.export'),
  '/console/evidence/export.json': need('evidence.export'),
  '/console/evidence/export.pdf': need('evidence.export'),
  // who belongs to a customer organisation is personal data: the subscriber permissions govern it
  '/console/organisations': need('subscribers.view'),
  '/console/organisations/[id]': need('subscribers.view'),
  '/console/announcements': need('announcements.view'),
  '/console/announcements/compose': need('announcements.manage'),
  '/console/objections': need('announcements.view'),
  '/console/objections/[id]': need('announcements.view'),
  // customers' access to gated documents: who asked, was granted, read and accepted what (personal data)
  '/console/access': need('access.view'),
  '/console/access/export.csv': need('access.export'),
  '/console/access/acceptances.csv': need('access.export'),
  // customers' access to gated documents: requests and rules
  '/console/access/requests/[id]': need('access.view'),
  '/console/access/rules': need('access.view'),
  // staff API tokens (issue 17): owners and admins make and revoke them
  '/console/api-tokens': need('api.tokens.manage'),
};

export const consoleActions: Record<string, Access> = {
  signIn: open,
  completeLink: open,
  verifyMfa: mfa,
  enrolMfa: mfa,
  signOut: mfa,
  revokeSession: need('account.manage'),
  revokeOtherSessions: need('account.manage'),
  changePassword: need('account.manage'),
  regenerateRecoveryCodes: need('account.manage'),
  inviteStaff: need('staff.manage'),
  changeRole: need('staff.manage'),
  disableStaff: need('staff.manage'),
  enableStaff: need('staff.manage'),
  revokeStaffSessions: need('staff.manage'),
  resetStaffSignIn: need('staff.manage'),
  clearStaffLockout: need('staff.manage'),
  setBreakGlass: need('sso.manage'),
  setSsoRequired: need('sso.manage'),
  retryFailedDeliveries: need('deliveries.retry'),
  // the public's own: a subscriber's signed token is checked by the flow itself
  subscribe: open,
  confirmSmsCode: open,
  confirmEmail: open,
  updateTopics: open,
  eraseSubscription: open,
  sendTestMessage: need('settings.manage'),
  removeSubscriber: need('subscribers.manage'),
  previewIncident: need('incidents.manage'),
  publishIncident: need('incidents.manage'),
  cancelScheduledUpdate: need('incidents.manage'),
  markAuthorityNotified: need('incidents.manage'),
  publishPostmortem: need('incidents.manage'),
  editIncidentUpdate: need('incidents.manage'),
  editIncident: need('incidents.manage'),
  publishAlertDraft: need('alerts.manage'),
  dismissAlertDraft: need('alerts.manage'),
  resolveAlertIncident: need('alerts.manage'),
  liftSuppression: need('subscribers.manage'),
  createOrganisation: need('subscribers.manage'),
  renameOrganisation: need('subscribers.manage'),
  addOrganisationDomain: need('subscribers.manage'),
  removeOrganisationDomain: need('subscribers.manage'),
  deleteOrganisation: need('subscribers.manage'),
  assignOrganisationMember: need('subscribers.manage'),
  approveOrganisationClaim: need('subscribers.manage'),
  removeOrganisationMember: need('subscribers.manage'),
  editNotice: need('announcements.manage'),
  publishNotice: need('announcements.manage'),
  unscheduleNotice: need('announcements.manage'),
  previewAnnouncement: need('announcements.manage'),
  saveAnnouncement: need('announcements.manage'),
  publishAnnouncement: need('announcements.manage'),
  unscheduleAnnouncement: need('announcements.manage'),
  discardAnnouncement: need('announcements.manage'),
  updateObjection: need('announcements.manage'),
  fileObjection: open,
  revokeAccessGrant: need('access.manage'),
  // customers' access to gated documents: the public asks and confirms (the link's token is checked by the flow), staff decide
  requestAccess: open,
  verifyAccessRequest: open,
  approveAccessRequest: need('access.manage'),
  refuseAccessRequest: need('access.manage'),
  saveAccessRule: need('access.manage'),
  removeAccessRule: need('access.manage'),
  // customers reading gated documents: no staff session is needed (none helps); the flows check the reader session themselves
  requestReaderLink: open,
  completeReaderLink: open,
  acceptNda: open,
  signOutReader: open,
  createApiToken: need('api.tokens.manage'),
  revokeApiToken: need('api.tokens.manage'),
};

export type Decision = 'allow' | 'sign-in' | 'mfa' | 'enrol' | 'deny';

export interface Principal {
  role: Role;
  mfaVerified: boolean;
  mfaEnrolled: boolean;
}

/** The decision for one entry of the tables. `access` undefined = not in the tables = denied. */
export function decide(access: Access | undefined, principal: Principal | null): Decision {
  if (!access) return 'deny';
  if (access.kind === 'public') return 'allow';
  if (!principal) return 'sign-in';
  if (access.kind === 'mfa') return 'allow';
  if (principal.mfaEnrolled && !principal.mfaVerified) return 'mfa';
  if (!principal.mfaEnrolled && mfaRequiredRoles.has(principal.role)) return 'enrol';
  return can(principal.role, access.permission) ? 'allow' : 'deny';
}

/**
 * The one decision every request that reaches the console or carries an
 * action goes through. A console route's own permission (with the
 * second-factor rule) is decided first, whatever action or method the
 * request carries; the action's permission is then required in addition,
 * never instead. `route` null: not a console route; `action` null: no action.
 * The first refusal is the answer, so a page never renders for a caller
 * who may not see it, even when the action it carries is public.
 */
export function decideRequest(
  request: { route: Access | undefined | null; action: Access | undefined | null },
  principal: Principal | null,
): Decision {
  if (request.route !== null) {
    const onRoute = decide(request.route, principal);
    if (onRoute !== 'allow') return onRoute;
  }
  return request.action === null ? 'allow' : decide(request.action, principal);
}
