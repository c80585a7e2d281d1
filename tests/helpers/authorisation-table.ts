/**
 * Who may reach which console route and action, written out independently
 * of src/core/auth/permissions.ts. The console matrix
 * (tests/integration/console-authorisation.test.ts) walks it over the form
 * posts and pages; the security suite (tests/security/routes.test.ts) over
 * Astro's action endpoint, /_actions/<name>.
 */
import type { Role } from '../../src/core/auth/permissions.ts';

export type Who = 'anonymous' | Role;
/** public: anyone; session: anyone signed in; a role: that role and those above it */
export type Needs = 'public' | 'session' | Role;

export const ladder: Role[] = ['viewer', 'responder', 'admin', 'owner'];
export const whos: Who[] = ['anonymous', ...ladder];

/** `status`: what the page answers when allowed, where that is not 200-ish by design */
export const routes: Record<string, { path: string; needs: Needs; status?: number }> = {
  '/console/sign-in': { path: '/console/sign-in', needs: 'public' },
  '/console/denied': { path: '/console/denied', needs: 'public', status: 403 },
  '/console/link/[token]': { path: '/console/link/abc.def', needs: 'public' },
  // single sign-on's start and callback need no session; the matrix's server has no SSO configured, so the
  // endpoints themselves answer 404 (past the guard). tests/integration/staff-sso.test.ts runs them configured.
  '/console/sso/start': { path: '/console/sso/start', needs: 'public', status: 404 },
  '/console/sso/callback': { path: '/console/sso/callback?code=x&state=y', needs: 'public', status: 404 },
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
  // drafts opened by alerts from monitoring: seen like incidents, acted on by responders
  '/console/alerts': { path: '/console/alerts', needs: 'viewer' },
  '/console/alerts/[id]': { path: '/console/alerts/999999', needs: 'viewer', status: 404 },
  '/console/subscribers/[id]': { path: '/console/subscribers/999999', needs: 'admin', status: 404 },
  '/console/subscribers/quarantine': { path: '/console/subscribers/quarantine', needs: 'admin' },
  '/console/subscribers/export.csv': { path: '/console/subscribers/export.csv', needs: 'admin' },
  '/console/subscribers/export.json': { path: '/console/subscribers/export.json', needs: 'admin' },
  '/console/evidence': { path: '/console/evidence?incident=999999', needs: 'admin', status: 404 },
  '/console/evidence/export.json': { path: '/console/evidence/export.json?incident=999999', needs: 'admin', status: 404 },
  '/console/evidence/export.pdf': { path: '/console/evidence/export.pdf?incident=999999', needs: 'admin', status: 404 },
  '/console/subscribers/import': { path: '/console/subscribers/import', needs: 'admin' },
  '/console/organisations': { path: '/console/organisations', needs: 'admin' },
  '/console/organisations/[id]': { path: '/console/organisations/999999', needs: 'admin', status: 404 },
  '/console/announcements': { path: '/console/announcements', needs: 'viewer' },
  // writing a free-form announcement
  '/console/announcements/compose': { path: '/console/announcements/compose', needs: 'responder' },
  '/console/objections': { path: '/console/objections', needs: 'viewer' },
  '/console/objections/[id]': { path: '/console/objections/999999', needs: 'viewer', status: 404 },
  // customers' access to gated documents (personal data): admins and owners
  '/console/access': { path: '/console/access', needs: 'admin' },
  '/console/access/export.csv': { path: '/console/access/export.csv', needs: 'admin' },
  '/console/access/acceptances.csv': { path: '/console/access/acceptances.csv', needs: 'admin' },
  // customers' access to gated documents: requests are personal data (admins and owners)
  '/console/access/requests/[id]': { path: '/console/access/requests/999999', needs: 'admin', status: 404 },
  '/console/access/rules': { path: '/console/access/rules', needs: 'admin' },
  // staff API tokens: admins and owners
  '/console/api-tokens': { path: '/console/api-tokens', needs: 'admin' },
};

export const actions: Record<string, Needs> = {
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
  clearStaffLockout: 'owner',
  // single sign-on: requiring it, and the break-glass owners who keep password sign-in (owners only)
  setBreakGlass: 'owner',
  setSsoRequired: 'owner',
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
  publishAlertDraft: 'responder',
  dismissAlertDraft: 'responder',
  resolveAlertIncident: 'responder',
  cancelScheduledUpdate: 'responder',
  markAuthorityNotified: 'responder',
  publishPostmortem: 'responder',
  editIncidentUpdate: 'responder',
  editIncident: 'responder',
  liftSuppression: 'admin',
  // customer organisations: who receives targeted breach notices
  createOrganisation: 'admin',
  renameOrganisation: 'admin',
  addOrganisationDomain: 'admin',
  removeOrganisationDomain: 'admin',
  deleteOrganisation: 'admin',
  assignOrganisationMember: 'admin',
  approveOrganisationClaim: 'admin',
  removeOrganisationMember: 'admin',
  editNotice: 'responder',
  publishNotice: 'responder',
  unscheduleNotice: 'responder',
  previewAnnouncement: 'responder',
  saveAnnouncement: 'responder',
  publishAnnouncement: 'responder',
  unscheduleAnnouncement: 'responder',
  discardAnnouncement: 'responder',
  updateObjection: 'responder',
  // the customer's own: the signed objection link is checked by the flow itself
  fileObjection: 'public',
  // customers' access to gated documents
  revokeAccessGrant: 'admin',
  // access to gated documents: the public asks and confirms (the emailed link is checked by the flow), admins decide
  requestAccess: 'public',
  verifyAccessRequest: 'public',
  approveAccessRequest: 'admin',
  refuseAccessRequest: 'admin',
  saveAccessRule: 'admin',
  removeAccessRule: 'admin',
  // customers' own (src/actions/reader.ts): each checks the reader session or link itself
  requestReaderLink: 'public',
  completeReaderLink: 'public',
  acceptNda: 'public',
  signOutReader: 'public',
  // staff API tokens
  createApiToken: 'admin',
  revokeApiToken: 'admin',
};

export function expected(needs: Needs, who: Who): 'allow' | 'sign-in' | 'deny' {
  if (needs === 'public') return 'allow';
  if (who === 'anonymous') return 'sign-in';
  if (needs === 'session') return 'allow';
  return ladder.indexOf(who) >= ladder.indexOf(needs) ? 'allow' : 'deny';
}
