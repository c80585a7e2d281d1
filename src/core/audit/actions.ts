/**
 * Every action the audit log knows. Entries name one of these, so the
 * console can filter by action and a typo in a caller fails type checking
 * instead of creating a new, unsearchable action. To add one, append it
 * here (grouped by area); stored entries keep whatever name they were
 * written with, so never rename an existing action.
 */
export const auditActions = [
  // sign-in and account security
  'auth.sign_in.succeeded',
  'auth.sign_in.failed',
  'auth.sign_in.locked',
  'auth.sign_out',
  'auth.mfa.enrolled',
  'auth.mfa.verified',
  'auth.mfa.failed',
  'auth.mfa.recovery_code_used',
  'auth.recovery_codes.regenerated',
  'auth.password.set',
  'auth.password.changed',
  'auth.session.revoked',
  'auth.link.created',
  'auth.link.used',
  'auth.sso.signed_in',
  'auth.sso.refused',
  'auth.sso.linked',
  'auth.break_glass',
  // staff accounts
  'staff.created',
  'staff.invited',
  'staff.role_changed',
  'staff.disabled',
  'staff.enabled',
  'staff.sign_in_reset',
  'staff.lockout_cleared',
  'staff.created_by_sso',
  'staff.break_glass_changed',
  // subscribers, by themselves (anonymous) and by staff
  'subscriber.unsubscribed',
  'subscriber.erased',
  'subscriber.exported',
  'subscriber.link_refused',
  'subscriber.code_failed',
  'subscriber.locked',
  'subscribers.viewed',
  'subscribers.exported',
  'subscribers.imported',
  'subscribers.import_checked',
  'subscribers.removed',
  'subscribers.unsuppressed',
  // customer organisations (who receives targeted notices), by staff
  'organisations.created',
  'organisations.renamed',
  'organisations.domain_added',
  'organisations.domain_removed',
  'organisations.deleted',
  'organisations.member_assigned',
  'organisations.claim_approved',
  'organisations.member_removed',
  'organisations.viewed',
  // incidents
  'incidents.declared',
  'incidents.updated',
  'incidents.resolved',
  'incidents.personal_data_confirmed',
  'incidents.update_scheduled',
  'incidents.update_cancelled',
  'incidents.authority_notified',
  'incidents.postmortem_published',
  'incidents.update_edited',
  'incidents.edited',
  // change notices and objections
  'changes.detected',
  'changes.notice_edited',
  'changes.notice_period_overridden',
  'changes.published',
  'changes.scheduled',
  'changes.schedule_cancelled',
  'changes.schedule_failed',
  'announcements.saved',
  'announcements.published',
  'announcements.scheduled',
  'announcements.schedule_cancelled',
  'announcements.schedule_failed',
  'announcements.discarded',
  'objections.filed',
  'objections.status_changed',
  'objections.noted',
  'objections.viewed',
  // customers' access to documents
  'access.request.created',
  'access.request.verified',
  'access.request.approved',
  'access.request.refused',
  'access.request.viewed',
  'access.rule.saved',
  'access.rule.removed',
  'access.reader.link_sent',
  'access.reader.signed_in',
  'access.reader.signed_out',
  'access.nda.accepted',
  'access.document.unservable',
  'access.grant.revoked',
  'access.grant.expiry_noticed',
  'access.activity.viewed',
  'access.activity.exported',
  'access.acceptances.exported',
  // automation (issue 17): API tokens, alerts from monitoring, subscriber import
  'api.token.created',
  'api.token.revoked',
  'api.token.used',
  'api.token.refused',
  'alert.received',
  'alert.draft.opened',
  'alert.draft.published',
  'alert.draft.dismissed',
  'alert.draft.closed',
  'component.status.set',
  // notifications
  'deliveries.retried',
  'evidence.viewed',
  'evidence.exported',
  'settings.test_sent',
  'settings.sso_required_changed',
  // operations
  'backup.created',
  'backup.restored',
  'database.copied',
  // the audit log itself
  'audit.exported',
  'audit.purged',
  'audit.viewed',
  'audit.chain_keyed',
  'audit.key_rotated',
  'audit.repeats_discarded',
] as const;

export type AuditAction = (typeof auditActions)[number];

const known: ReadonlySet<string> = new Set(auditActions);

export function isAuditAction(value: string): value is AuditAction {
  return known.has(value);
}

/**
 * The refusals someone may repeat by the hundred (sign-in, second factor,
 * subscriber links and codes): the only actions audit/repeats.ts counts in
 * a window, and the only ones whose entries may say "repeated N more
 * times". The verifier refuses a `repeated` entry of any other action.
 */
export const refusalActions = [
  'auth.sign_in.failed',
  'auth.sign_in.locked',
  'auth.mfa.failed',
  'auth.sso.refused',
  'subscriber.link_refused',
  'subscriber.code_failed',
  'subscriber.locked',
] as const satisfies readonly AuditAction[];

export type RefusalAction = (typeof refusalActions)[number];

const refusals: ReadonlySet<string> = new Set(refusalActions);

export function isRefusalAction(value: string): value is RefusalAction {
  return refusals.has(value);
}
