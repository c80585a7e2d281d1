/**
 * "Require single sign-on" and break-glass owners (issue 16): an owner can require staff to sign in
 * through the OpenID provider (src/core/auth/sso.ts). While it is required, password sign-in is
 * refused for every account but the break-glass owners' (active owners an owner marked so), who keep
 * password + TOTP for when the provider is down; each of their password sign-ins is audited
 * (`auth.break_glass`) and announced to every active owner by email and on the staff Slack channel.
 *
 * The requirement counts only while SSO is configured: an operator who removes CANDOR_SSO_ISSUER
 * gets password sign-in back for everyone. Nobody is locked out by a change here: turning the
 * requirement on, or taking the mark off the last break-glass owner while it is on, is refused unless
 * an active owner stays break-glass or the owner making the change signed in with SSO in this session.
 * Turning it on ends every password session but the break-glass owners' (the count is audited).
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import { putSetting, settingOf } from '../../stores/console-settings.ts';
import { deletePasswordSessionsButBreakGlass, deletePasswordSessionsOf } from '../../stores/sessions.ts';
import { breakGlassOwnerCount, staffById, staffRows, updateStaffRow } from '../../stores/staff.ts';
import type { AuditAction } from '../audit/actions.ts';
import { writeAudit } from '../audit/log.ts';
import type { SsoConfig } from '../config/sso.ts';
import { notifyOwners } from '../notify/staff-recipients.ts';
import type { AuthContext, Outcome } from './console-auth.ts';
import type { Session, StaffMember } from './session.ts';
import { staffLabel } from './staff.ts';

/** The setting's key in the console settings store (src/stores/console-settings.ts). */
export const SSO_REQUIRED_SETTING = 'auth.sso_required';

/** Whether an owner turned the requirement on, whatever the configuration says. */
export async function ssoRequiredSetting(r: Parameters<typeof settingOf>[0]): Promise<boolean> {
  return (await settingOf(r, SSO_REQUIRED_SETTING))?.value === true;
}

/** Whether password sign-in is refused now (but for break-glass owners): turned on, and SSO configured. */
export async function ssoRequired(r: Parameters<typeof settingOf>[0], sso: SsoConfig | null | undefined): Promise<boolean> {
  return Boolean(sso) && (await ssoRequiredSetting(r));
}

/** ssoRequired in a read of its own, opened only when SSO is configured (every sign-in asks). */
export async function ssoRequiredNow(database: Database, sso: SsoConfig | null | undefined): Promise<boolean> {
  return Boolean(sso) && (await database.read((r) => ssoRequiredSetting(r)));
}

/** The email addresses of the break-glass owners (the settings page names them). */
export async function breakGlassOwners(database: Database): Promise<string[]> {
  return (await database.read((r) => staffRows(r))).filter(isBreakGlass).map((m) => m.email);
}

/** A break-glass owner: marked so, and an active owner (the mark of a demoted or disabled account counts for nothing). */
export function isBreakGlass(member: Pick<StaffMember, 'role' | 'status' | 'breakGlass'>): boolean {
  return member.breakGlass && member.role === 'owner' && member.status === 'active';
}

/** What a person trying a password while SSO is required is told: where to go instead. */
export function ssoRequiredMessage(sso: SsoConfig | null | undefined): string {
  const name = sso?.providerName ?? 'single sign-on';
  return `Single sign-on is required here: use the "Sign in with ${name}" button below. Password sign-in is kept only for break-glass owner accounts.`;
}

const lockOutMessage = (sso: SsoConfig, what: string) =>
  `${what} would leave nobody able to sign in while ${sso.providerName} is down. Either mark an active owner account break-glass first (Staff page), or sign in with ${sso.providerName} and make this change from that session.`;

async function audit(
  tx: Tx,
  ctx: AuthContext,
  action: AuditAction,
  actor: StaffMember,
  target: string,
  summary: Record<string, unknown>,
): Promise<void> {
  await writeAudit(
    tx,
    {
      actor: { type: 'staff', id: actor.id, label: staffLabel(actor) },
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent,
      action,
      target,
      summary,
    },
    ctx.now,
  );
}

export interface SsoRequirementChange {
  required: boolean;
  /** whether the setting changed (false: it already was so) */
  changed: boolean;
  /** password sessions ended by turning it on */
  sessionsEnded: number;
  /** the acting owner's own session was one of them */
  ownSessionEnded: boolean;
}

/** An owner turns the requirement on or off (audited with before and after). */
export async function setSsoRequired(
  ctx: AuthContext,
  actor: StaffMember,
  session: Session,
  required: boolean,
): Promise<Outcome<SsoRequirementChange>> {
  const { sso } = ctx;
  if (!sso) return { ok: false, message: 'Single sign-on is not set up here (CANDOR_SSO_ISSUER), so it cannot be required.' };
  return ctx.database.transaction(
    async (tx): Promise<Outcome<SsoRequirementChange>> => {
      const before = await ssoRequiredSetting(tx);
      if (before === required) return { ok: true, required, changed: false, sessionsEnded: 0, ownSessionEnded: false };
      if (required && session.method !== 'sso' && (await breakGlassOwnerCount(tx)) === 0)
        return { ok: false, message: lockOutMessage(sso, 'Requiring single sign-on now') };
      await putSetting(tx, SSO_REQUIRED_SETTING, required, ctx.now, actor.id);
      const ownSessionEnded = required && session.method === 'password' && !isBreakGlass(actor);
      const sessionsEnded = required ? await deletePasswordSessionsButBreakGlass(tx) : 0;
      await audit(tx, ctx, 'settings.sso_required_changed', actor, SSO_REQUIRED_SETTING, {
        before: { required: before },
        after: { required },
        ...(required ? { sessionsEnded: sessionsEnded } : {}),
      });
      return { ok: true, required, changed: true, sessionsEnded, ownSessionEnded };
    },
    { serializable: true },
  );
}

/**
 * An owner marks an owner account break-glass, or takes the mark off (audited with before and after).
 * Taking it off while SSO is required ends that account's password sessions.
 */
export async function setBreakGlass(
  ctx: AuthContext,
  actor: StaffMember,
  session: Session,
  targetId: number,
  breakGlass: boolean,
): Promise<Outcome<{ email: string; breakGlass: boolean; sessionsEnded: number }>> {
  return ctx.database.transaction(
    async (tx): Promise<Outcome<{ email: string; breakGlass: boolean; sessionsEnded: number }>> => {
      const target = await staffById(tx, targetId);
      if (!target) return { ok: false, message: 'No such staff member.' };
      if (target.breakGlass === breakGlass) return { ok: true, email: target.email, breakGlass, sessionsEnded: 0 };
      if (breakGlass && (target.role !== 'owner' || target.status !== 'active'))
        return {
          ok: false,
          message: `Only an active owner account can be break-glass; ${target.email} is ${target.status} ${target.role}.`,
        };
      const required = await ssoRequired(tx, ctx.sso);
      if (!breakGlass && required && ctx.sso && session.method !== 'sso' && (await breakGlassOwnerCount(tx, target.id)) === 0)
        return { ok: false, message: lockOutMessage(ctx.sso, `Taking the break-glass mark off ${target.email}`) };
      await updateStaffRow(tx, target.id, { breakGlass }, ctx.now);
      const sessionsEnded = !breakGlass && required ? await deletePasswordSessionsOf(tx, target.id) : 0;
      await audit(tx, ctx, 'staff.break_glass_changed', actor, `staff:${target.id}`, {
        email: target.email,
        before: { breakGlass: target.breakGlass },
        after: { breakGlass },
        ...(sessionsEnded > 0 ? { sessionsEnded: sessionsEnded } : {}),
      });
      return { ok: true, email: target.email, breakGlass, sessionsEnded };
    },
    { serializable: true },
  );
}

/**
 * A break-glass owner signed in with their password while SSO is required: audited, and told to every
 * active owner (email, and the staff Slack channel when set) with who, when and from which address,
 * in the caller's transaction (the one that opens the session).
 */
export async function announceBreakGlass(tx: Tx, ctx: AuthContext, member: StaffMember): Promise<void> {
  const at = `${ctx.now.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
  const from = ctx.client.ip ?? 'an unknown address';
  await audit(tx, ctx, 'auth.break_glass', member, `staff:${member.id}`, { email: member.email, at: ctx.now.toISOString() });
  if (!ctx.staffChannels) return;
  const provider = ctx.sso?.providerName ?? 'single sign-on';
  const subject = `Break-glass sign-in: ${member.email}`;
  const text =
    `${member.email} signed in to the console with the break-glass password at ${at} from ${from}, ` +
    `while single sign-on through ${provider} is required (the second factor is asked next). ` +
    'If nobody expected this, reset the account’s sign-in on the Staff page and check the audit log.';
  await notifyOwners(tx, ctx.staffChannels, { kind: 'staff-break-glass', subject, text }, ctx.now);
}
