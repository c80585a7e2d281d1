/**
 * The console's security flows: sign-in, second factor, enrolment,
 * one-time links, password changes and staff management. Each takes what it
 * needs, records what happened in the audit log, and answers with a
 * message a person can act on, never with an exception for bad input.
 *
 * On the stores (issue 15): each change is one transaction of `ctx.database`, its audit entry
 * written in it (`writeAudit`); password hashing and anything else that awaits more than the
 * database runs before or after. What keeps concurrent requests (PostgreSQL's transactions run
 * side by side) from losing a count or using a code twice is said where it matters: conditional
 * UPDATEs in src/stores/staff.ts, the account's row lock for a second-factor attempt and for new
 * recovery codes, and SERIALIZABLE for role changes and disabling, where "the last active owner
 * stays" is a read of other rows than the one written.
 */
import QRCode from 'qrcode';
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  activeOwnerCount,
  claimTotpStep,
  enrolTotp,
  insertStaffIfAbsent,
  lockStaffMember,
  raiseDeviceGeneration,
  replaceRecoveryCodes,
  resetStaffRow,
  staffByEmail,
  staffById,
  unusedRecoveryCodeCount,
  updateStaffRow,
  useRecoveryCode,
} from '../../stores/staff.ts';
import type { AuditAction, RefusalAction } from '../audit/actions.ts';
import { type AuditInput, writeAudit } from '../audit/log.ts';
import { recordRefusal } from '../audit/repeats.ts';
import type { SsoConfig } from '../config/sso.ts';
import { seal, unseal } from '../crypto/seal.ts';
import type { StaffChannels } from '../notify/staff-recipients.ts';
import { type Device, issueDevice, recognisedDevice } from './devices.ts';
import { checkLink, consumeLink, createLink, type LinkPurpose, revokeLinksOf } from './links.ts';
import {
  clearLockoutCounts,
  countSecondFactorFailure,
  countSignInAttempt,
  lockoutOf,
  secondFactorRefusal,
  secondFactorSucceeded,
  signInSucceeded,
  sourceOf,
} from './lockouts.ts';
import { hashPassword, passwordProblem, verifyAgainstDummy, verifyPassword } from './password.ts';
import { mfaRequiredRoles, type Role } from './permissions.ts';
import { authLimits, hitLimitNow } from './rate-limit.ts';
import {
  type ClientInfo,
  createSession,
  invalidateSession,
  invalidateSessionsOf,
  markSessionMfaVerified,
  type Session,
  type SessionPolicy,
  type StaffMember,
} from './session.ts';
import { announceBreakGlass, isBreakGlass, ssoRequired, ssoRequiredMessage, ssoRequiredNow } from './sso-requirement.ts';
import { getStaff, normaliseEmail, staffLabel } from './staff.ts';
import { generateRecoveryCodes, generateTotpKey, hashRecoveryCode, matchTotp, totpKeyText, totpKeyUri } from './totp.ts';

export interface AuthContext {
  /** the database (db/engine/types.ts): every flow opens its own transactions on it */
  database: Database;
  now: Date;
  /** encryption keys, the current one first */
  keys: readonly Buffer[];
  policy: SessionPolicy;
  client: ClientInfo;
  /** shown in authenticator apps */
  issuer: string;
  /** CANDOR_SECRET: keys the recovery-code hashes and recognised-device cookies */
  secret: string;
  /** the recognised-device cookie the request presented, not yet checked (devices.ts) */
  device?: string | undefined;
  /** single sign-on, when configured: while an owner requires it, password sign-in is for break-glass owners only (sso-requirement.ts) */
  sso?: SsoConfig | null;
  /** where a break-glass sign-in is announced (the owners' email, the staff Slack channel); none: audited only */
  staffChannels?: StaffChannels;
}

export type Outcome<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string };

/** Where a freshly signed-in person goes next. */
export type NextStep = 'console' | 'mfa' | 'enrol';

const GENERIC_SIGN_IN_ERROR = 'Email or password is incorrect.';

/** An audit entry for a flow: the staff member (or nobody yet, or the operator: `system`) from the request's address. */
function entry(
  ctx: AuthContext,
  action: AuditAction,
  actor: StaffMember | null | 'system',
  target: string | null,
  summary: Record<string, unknown>,
): AuditInput {
  return {
    actor:
      actor === 'system' ? { type: 'system' } : actor ? { type: 'staff', id: actor.id, label: staffLabel(actor) } : { type: 'anonymous' },
    ip: ctx.client.ip,
    userAgent: ctx.client.userAgent,
    action,
    target,
    summary,
  };
}

/** Appends the entry in the flow's transaction: written when the change commits, not at all when it rolls back. */
async function audit(
  tx: Tx,
  ctx: AuthContext,
  action: AuditAction,
  actor: StaffMember | null | 'system',
  target: string | null,
  summary: Record<string, unknown> = {},
): Promise<void> {
  await writeAudit(tx, entry(ctx, action, actor, target, summary), ctx.now);
}

/**
 * A refusal someone may repeat by the hundred: identical ones within a window are one entry and a
 * count (audit/repeats.ts), in a transaction of its own after the flow's.
 */
async function refuse(
  ctx: AuthContext,
  action: RefusalAction,
  actor: StaffMember | null,
  target: string | null,
  summary: Record<string, unknown> = {},
): Promise<void> {
  await recordRefusal(ctx.database, { ...entry(ctx, action, actor, target, summary), action }, ctx.now);
}

const minutes = (ms: number) => {
  const n = Math.max(1, Math.ceil(ms / 60_000));
  return n === 1 ? '1 minute' : `${n} minutes`;
};
const totpContext = (staffId: number) => `staff:${staffId}:totp`;
const pendingContext = (sessionId: string) => `session:${sessionId}:totp-enrolment`;

function nextStepFor(member: StaffMember): NextStep {
  if (member.totpEnrolledAt) return 'mfa';
  return mfaRequiredRoles.has(member.role) ? 'enrol' : 'console';
}

/** The member's recognised device this request presented, if it is one (devices.ts); anything else is ignored. */
const presentedDevice = (ctx: AuthContext, member: StaffMember | undefined): Device | null =>
  recognisedDevice(ctx.secret, ctx.device, member, ctx.now);

/** What the audit records of a device: whether it was recognised, never the cookie. */
const deviceNote = (device: Device | null) => (device ? { device: 'recognised' } : {});

/**
 * The recognised-device cookie for a member who has just completed sign-in from this browser: a
 * device it already recognised keeps its id. Only for a sign-in that is complete (password, and the
 * second factor when the account uses one).
 */
function deviceFor(ctx: AuthContext, member: StaffMember): string {
  return issueDevice(ctx.secret, member, ctx.now, presentedDevice(ctx, member)?.id);
}

/**
 * A new recognised-device cookie for the member signed in on this request, after their devices were
 * forgotten by something they did here (a password change, ending their other sessions); null when
 * the member is gone or disabled. Callers have already checked the session completed sign-in.
 */
export async function rememberDevice(ctx: AuthContext, staffId: number): Promise<string | null> {
  const member = await getStaff(ctx.database, staffId);
  return member && member.status === 'active' ? deviceFor(ctx, member) : null;
}

/** `device`: the recognised-device cookie to set when this sign-in is complete (no second factor to give), or null. */
export async function signIn(
  ctx: AuthContext,
  rawEmail: string,
  password: string,
): Promise<Outcome<{ token: string; next: NextStep; device: string | null }>> {
  const email = normaliseEmail(rawEmail) ?? rawEmail.trim().toLowerCase().slice(0, 254);
  const member = await ctx.database.read((r) => staffByEmail(r, email));
  const device = presentedDevice(ctx, member);
  // Counted before the password check, which awaits: attempts made in parallel must each see the others.
  const refused = await ctx.database.transaction((tx) => countSignInAttempt(tx, email, ctx.client.ip, ctx.now, device?.id ?? null));
  if (refused) {
    await verifyAgainstDummy(password);
    await refuse(ctx, 'auth.sign_in.locked', null, member ? `staff:${member.id}` : null, { reason: refused.reason, ...deviceNote(device) });
    return { ok: false, message: `Too many attempts. Try again in ${minutes(refused.retryAfterMs)}.` };
  }
  // While single sign-on is required, only a break-glass owner's password is even checked: anyone else
  // (an unknown address too) is pointed to the provider, whatever they typed.
  const required = await ssoRequiredNow(ctx.database, ctx.sso);
  if (required && !(member && isBreakGlass(member))) {
    await verifyAgainstDummy(password);
    await refuse(ctx, 'auth.sign_in.failed', null, member ? `staff:${member.id}` : null, {
      reason: 'single sign-on required',
      emailDomain: email.split('@')[1] ?? null,
      ...deviceNote(device),
    });
    return { ok: false, message: ssoRequiredMessage(ctx.sso) };
  }
  const passwordOk =
    member?.passwordHash && member.status === 'active'
      ? await verifyPassword(member.passwordHash, password)
      : await verifyAgainstDummy(password);
  if (!member || !passwordOk) {
    await refuse(ctx, 'auth.sign_in.failed', null, member ? `staff:${member.id}` : null, {
      reason: member ? (member.status === 'active' ? 'password' : `account ${member.status}`) : 'unknown account',
      emailDomain: email.split('@')[1] ?? null,
      ...deviceNote(device),
    });
    return { ok: false, message: GENERIC_SIGN_IN_ERROR };
  }
  const next = nextStepFor(member);
  const made = await ctx.database.transaction(async (tx) => {
    // Again where the session is made: an owner may have required SSO while the password was checked.
    if (!required && !isBreakGlass(member) && (await ssoRequired(tx, ctx.sso))) return null;
    await signInSucceeded(tx, email, ctx.client.ip, device?.id ?? null);
    const made = await createSession(tx, member.id, ctx.client, ctx.policy, ctx.now);
    await audit(tx, ctx, 'auth.sign_in.succeeded', member, `staff:${member.id}`, {
      next,
      ...deviceNote(device),
      ...(required ? { breakGlass: true } : {}),
    });
    if (required) await announceBreakGlass(tx, ctx, member);
    return made;
  });
  if (!made) {
    await refuse(ctx, 'auth.sign_in.failed', null, `staff:${member.id}`, { reason: 'single sign-on required', ...deviceNote(device) });
    return { ok: false, message: ssoRequiredMessage(ctx.sso) };
  }
  return { ok: true, token: made.token, next, device: next === 'console' ? deviceFor(ctx, member) : null };
}

/**
 * Claims the TOTP step of `code` or, failing that, an unused recovery code, and marks the session
 * verified: what was used (with the recovery codes left), or null. Each claim is one conditional
 * UPDATE (src/stores/staff.ts), so of two uses of one code one wins, concurrent or not.
 */
async function claimSecondFactor(
  tx: Tx,
  ctx: AuthContext,
  member: StaffMember,
  session: Session,
  code: string,
): Promise<{ kind: 'totp' } | { kind: 'recovery'; left: number } | null> {
  if (!member.totpSecret || !member.totpEnrolledAt) return null;
  const key = Buffer.from(unseal(ctx.keys, member.totpSecret, totpContext(member.id)), 'base64');
  const counter = matchTotp(key, code, ctx.now, member.totpLastCounter);
  if (counter !== null && (await claimTotpStep(tx, member.id, counter, ctx.now))) {
    await markSessionMfaVerified(tx, session.id, ctx.now);
    return { kind: 'totp' };
  }
  if (!(await useRecoveryCode(tx, member.id, hashRecoveryCode(code, ctx.secret), ctx.now))) return null;
  await markSessionMfaVerified(tx, session.id, ctx.now);
  return { kind: 'recovery', left: await unusedRecoveryCodeCount(tx, member.id) };
}

/**
 * Checks a TOTP code or, failing that, an unused recovery code; `device` is the recognised-device cookie to set.
 * The limits' check, the claim of the code and the count of a failure are one transaction, which
 * first takes the account's row lock (PostgreSQL; SQLite's transactions never interleave): attempts
 * on one account made in parallel run one after the other, each seeing the failures counted before it.
 */
export async function verifySecondFactor(
  ctx: AuthContext,
  member: StaffMember,
  session: Session,
  code: string,
): Promise<Outcome<{ device: string }>> {
  const account = `staff:${member.id}`;
  const device = presentedDevice(ctx, member);
  const deviceId = device?.id ?? null;
  const verdict = await ctx.database.transaction(async (tx) => {
    // The account as it is now, locked: the key and last step are not judged from the request's earlier read.
    const current = (await lockStaffMember(tx, member.id)) ?? member;
    // A password session opened just before an owner required SSO does not get past its second factor.
    if (session.method !== 'sso' && !isBreakGlass(current) && (await ssoRequired(tx, ctx.sso)))
      return { refused: null, used: null, ssoOnly: true };
    const refused = await secondFactorRefusal(tx, member.id, ctx.client.ip, ctx.now, deviceId);
    if (refused) return { refused, used: null };
    const used = await claimSecondFactor(tx, ctx, current, session, code);
    if (!used) {
      await countSecondFactorFailure(tx, member.id, ctx.client.ip, ctx.now, deviceId);
      return { refused: null, used };
    }
    await secondFactorSucceeded(tx, member.id, ctx.client.ip, deviceId);
    if (used.kind === 'totp') await audit(tx, ctx, 'auth.mfa.verified', member, account, deviceNote(device));
    else await audit(tx, ctx, 'auth.mfa.recovery_code_used', member, account, { unusedLeft: used.left, ...deviceNote(device) });
    return { refused: null, used };
  });
  if ('ssoOnly' in verdict) {
    await refuse(ctx, 'auth.mfa.failed', member, account, { reason: 'single sign-on required', ...deviceNote(device) });
    return { ok: false, message: ssoRequiredMessage(ctx.sso) };
  }
  if (verdict.refused) {
    await refuse(ctx, 'auth.sign_in.locked', member, account, { reason: verdict.refused.reason, ...deviceNote(device) });
    return { ok: false, message: `Too many attempts. Try again in ${minutes(verdict.refused.retryAfterMs)}.` };
  }
  if (verdict.used) return { ok: true, device: deviceFor(ctx, member) };
  await refuse(ctx, 'auth.mfa.failed', member, account, deviceNote(device));
  return { ok: false, message: 'That code is not valid. Enter the current code from your authenticator app, or a recovery code.' };
}

export interface EnrolmentChallenge {
  /** sealed key for the form to carry back: the browser never sees it in clear except as the QR code and text */
  pending: string;
  keyText: string;
  qrSvg: string;
}

/** A new TOTP key to show as a QR code; bound to this session so it cannot be replayed into another. */
export async function startEnrolment(
  ctx: AuthContext,
  member: StaffMember,
  session: Session,
  pending?: string,
): Promise<EnrolmentChallenge> {
  let key: Uint8Array | undefined;
  if (pending) {
    try {
      key = new Uint8Array(Buffer.from(unseal(ctx.keys, pending, pendingContext(session.id)), 'base64'));
    } catch {
      key = undefined;
    }
  }
  key ??= generateTotpKey();
  const [current] = ctx.keys;
  if (!current) throw new Error('no encryption key configured');
  const uri = totpKeyUri(ctx.issuer, member.email, key);
  return {
    pending: seal(current, Buffer.from(key).toString('base64'), pendingContext(session.id)),
    keyText: totpKeyText(key),
    qrSvg: await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }),
  };
}

export async function completeEnrolment(
  ctx: AuthContext,
  member: StaffMember,
  session: Session,
  pending: string,
  code: string,
): Promise<Outcome<{ recoveryCodes: string[]; device: string }>> {
  // The enrolment page is open to sessions still lacking their second factor: without this, a password alone could replace it.
  if (member.totpEnrolledAt && !session.mfaVerifiedAt) {
    return { ok: false, message: 'Enter a code from your current authenticator app first; then you can set up a new one.' };
  }
  const [current] = ctx.keys;
  if (!current) throw new Error('no encryption key configured');
  let keyBase64: string;
  try {
    keyBase64 = unseal(ctx.keys, pending, pendingContext(session.id));
  } catch {
    return { ok: false, message: 'This enrolment form has expired. Scan the new QR code and try again.' };
  }
  const counter = matchTotp(Buffer.from(keyBase64, 'base64'), code, ctx.now, null);
  if (counter === null)
    return { ok: false, message: 'That code does not match. Check the time on your phone and enter the current 6-digit code.' };
  const codes = generateRecoveryCodes();
  const sealedKey = seal(current, keyBase64, totpContext(member.id));
  const hashes = codes.map((c) => hashRecoveryCode(c, ctx.secret));
  await ctx.database.transaction(async (tx) => {
    // The account's row lock: two enrolments at once leave one key and its ten codes, not twenty.
    await lockStaffMember(tx, member.id);
    await enrolTotp(tx, member.id, sealedKey, counter, ctx.now);
    await replaceRecoveryCodes(tx, member.id, hashes);
    await markSessionMfaVerified(tx, session.id, ctx.now);
    await audit(tx, ctx, 'auth.mfa.enrolled', member, `staff:${member.id}`, { backupCount: codes.length });
  });
  // The session now has both factors: sign-in is complete on this device.
  return { ok: true, recoveryCodes: codes, device: deviceFor(ctx, member) };
}

export async function regenerateRecoveryCodes(ctx: AuthContext, member: StaffMember): Promise<string[]> {
  const codes = generateRecoveryCodes();
  const hashes = codes.map((c) => hashRecoveryCode(c, ctx.secret));
  await ctx.database.transaction(async (tx) => {
    // The account's row lock: of two regenerations at once, the codes of the one that commits last are the codes.
    await lockStaffMember(tx, member.id);
    await replaceRecoveryCodes(tx, member.id, hashes);
    await audit(tx, ctx, 'auth.recovery_codes.regenerated', member, `staff:${member.id}`, { backupCount: codes.length });
  });
  return codes;
}

export type LinkState = Outcome<{ member: StaffMember; purpose: LinkPurpose }>;

const linkMessages = {
  invalid: 'This link is not valid. Ask an owner for a new one.',
  used: 'This link has already been used. Sign in, or ask an owner for a new link.',
  expired: 'This link has expired (links are valid for 24 hours). Ask an owner for a new one.',
} as const;

export function inspectLink(ctx: AuthContext, token: string): Promise<LinkState> {
  return ctx.database.read(async (r): Promise<LinkState> => {
    const check = await checkLink(r, token, ctx.now);
    if (!check.ok) return { ok: false, message: linkMessages[check.reason] };
    const member = await staffById(r, check.link.staffId);
    if (!member || member.status === 'disabled') return { ok: false, message: linkMessages.invalid };
    return { ok: true, member, purpose: check.link.purpose };
  });
}

/**
 * Sets the password from a one-time link and signs the person in. A new password forgets the
 * member's recognised devices; `device` is this one's cookie when sign-in is complete. The link is
 * consumed by a conditional UPDATE in the transaction that sets the password: of two tabs, one does.
 */
export async function completeLink(
  ctx: AuthContext,
  token: string,
  password: string,
  confirm: string,
): Promise<Outcome<{ token: string; next: NextStep; device: string | null }>> {
  if ((await hitLimitNow(ctx.database, authLimits.linkPerIp, sourceOf(ctx.client.ip), ctx.now)).limited)
    return { ok: false, message: 'Too many attempts. Try again later.' };
  const state = await inspectLink(ctx, token);
  if (!state.ok) return state;
  const { member } = state;
  // A link sets a password and signs in with it: while single sign-on is required, for break-glass owners only.
  if ((await ssoRequiredNow(ctx.database, ctx.sso)) && !isBreakGlass(member))
    return {
      ok: false,
      message: `Single sign-on is required here: sign in with ${ctx.sso?.providerName ?? 'single sign-on'} on the sign-in page instead. This link was not used.`,
    };
  if (password !== confirm) return { ok: false, message: 'The two passwords do not match.' };
  const problem = passwordProblem(password, member.email);
  if (problem) return { ok: false, message: problem };
  const passwordHash = await hashPassword(password);
  const done = await ctx.database.transaction(async (tx) => {
    const check = await checkLink(tx, token, ctx.now);
    if (!check.ok || check.link.staffId !== member.id || !(await consumeLink(tx, check.link.id, ctx.now))) return null;
    await updateStaffRow(tx, member.id, { passwordHash, status: 'active' }, ctx.now);
    await raiseDeviceGeneration(tx, member.id, ctx.now);
    await invalidateSessionsOf(tx, member.id);
    const { token: sessionToken } = await createSession(tx, member.id, ctx.client, ctx.policy, ctx.now);
    await audit(tx, ctx, 'auth.link.used', member, `staff:${member.id}`, { purpose: check.link.purpose });
    await audit(tx, ctx, 'auth.password.set', member, `staff:${member.id}`);
    return { sessionToken, refreshed: (await staffById(tx, member.id)) ?? member };
  });
  if (!done) return { ok: false, message: linkMessages.used };
  const next = nextStepFor(done.refreshed);
  return {
    ok: true,
    token: done.sessionToken,
    next,
    device: next === 'console' ? issueDevice(ctx.secret, done.refreshed, ctx.now) : null,
  };
}

export async function changePassword(
  ctx: AuthContext,
  member: StaffMember,
  session: Session,
  current: string,
  next: string,
  confirm: string,
): Promise<Outcome<{ endedSessions: number }>> {
  if (!member.passwordHash || !(await verifyPassword(member.passwordHash, current)))
    return { ok: false, message: 'Your current password is not correct.' };
  if (next !== confirm) return { ok: false, message: 'The two new passwords do not match.' };
  const problem = passwordProblem(next, member.email);
  if (problem) return { ok: false, message: problem };
  const passwordHash = await hashPassword(next);
  const endedSessions = await ctx.database.transaction(async (tx) => {
    await updateStaffRow(tx, member.id, { passwordHash }, ctx.now);
    // Every recognised device is forgotten; the action gives this one a new cookie (rememberDevice).
    await raiseDeviceGeneration(tx, member.id, ctx.now);
    const ended = await invalidateSessionsOf(tx, member.id, session.id);
    await audit(tx, ctx, 'auth.password.changed', member, `staff:${member.id}`, { otherSessionsEnded: ended });
    return ended;
  });
  return { ok: true, endedSessions };
}

export async function signOut(ctx: AuthContext, member: StaffMember, session: Session): Promise<void> {
  await ctx.database.transaction(async (tx) => {
    await invalidateSession(tx, session.id);
    await audit(tx, ctx, 'auth.sign_out', member, `staff:${member.id}`);
  });
}

/** Ends one session: one's own, or anyone's for those who manage staff. */
export async function revokeSession(ctx: AuthContext, actor: StaffMember, target: Session): Promise<void> {
  await ctx.database.transaction(async (tx) => {
    await invalidateSession(tx, target.id);
    await audit(tx, ctx, 'auth.session.revoked', actor, `session:${target.id.slice(0, 8)}`, { ofStaff: target.staffId });
  });
}

/** Signs the member out everywhere (but `keepId`) and forgets their recognised devices. */
export function revokeAllSessionsOf(ctx: AuthContext, actor: StaffMember, target: StaffMember, keepId?: string): Promise<number> {
  return ctx.database.transaction(async (tx) => {
    const ended = await invalidateSessionsOf(tx, target.id, keepId);
    await raiseDeviceGeneration(tx, target.id, ctx.now);
    await audit(tx, ctx, 'auth.session.revoked', actor, `staff:${target.id}`, { sessionsEnded: ended });
    return ended;
  });
}

/**
 * For someone who lost both their authenticator and their recovery codes:
 * removes password, second factor and sessions, and issues a one-time link
 * to set them again. By an owner from the console, or by the operator's CLI
 * when no owner can sign in (actor null).
 */
export function resetStaffSignIn(
  ctx: AuthContext,
  actor: StaffMember | null,
  rawEmail: string,
): Promise<Outcome<{ token: string; member: StaffMember }>> {
  const email = normaliseEmail(rawEmail);
  return ctx.database.transaction(async (tx): Promise<Outcome<{ token: string; member: StaffMember }>> => {
    const target = email ? await staffByEmail(tx, email) : undefined;
    if (!target) return { ok: false, message: 'There is no staff account with that email address.' };
    if (target.status === 'disabled') return { ok: false, message: `${target.email} is disabled; enable the account first.` };
    if (actor && target.id === actor.id)
      return { ok: false, message: 'Use your recovery codes, or ask another owner, to reset your own sign-in.' };
    // Every recognised device of theirs is forgotten with the rest: the reset may be because one was lost.
    await resetStaffRow(tx, target.id, ctx.now);
    await replaceRecoveryCodes(tx, target.id, []);
    const ended = await invalidateSessionsOf(tx, target.id);
    const { token } = await createLink(tx, target.id, 'reset', actor?.id ?? null, ctx.now);
    await audit(tx, ctx, 'staff.sign_in_reset', actor ?? 'system', `staff:${target.id}`, {
      email: target.email,
      sessionsEnded: ended,
      secondFactorRemoved: Boolean(target.totpEnrolledAt),
    });
    return { ok: true, token, member: { ...target, status: 'invited' } };
  });
}

/**
 * An owner lets a locked-out member try again at once: every count against their account (sign-in
 * and second factor, per address and the account's ceiling) is forgotten. The counts of addresses
 * across accounts stay: they are about the addresses, not the person.
 */
export function clearLockout(ctx: AuthContext, actor: StaffMember, targetId: number): Promise<Outcome<{ member: StaffMember }>> {
  return ctx.database.transaction(async (tx): Promise<Outcome<{ member: StaffMember }>> => {
    const target = await staffById(tx, targetId);
    if (!target) return { ok: false, message: 'No such staff member.' };
    const lockout = await lockoutOf(tx, target, ctx.now);
    if (!lockout) return { ok: false, message: `${target.email} is not locked out.` };
    await clearLockoutCounts(tx, target);
    await audit(tx, ctx, 'staff.lockout_cleared', actor, `staff:${target.id}`, {
      email: target.email,
      signInAddresses: lockout.signIn.addresses,
      accountCeiling: lockout.signIn.ceilingUntil !== null,
      secondFactorAddresses: lockout.secondFactor.addresses,
      secondFactorCeiling: lockout.secondFactor.ceilingUntil !== null,
    });
    return { ok: true, member: target };
  });
}

export async function inviteStaff(
  ctx: AuthContext,
  actor: StaffMember | null,
  rawEmail: string,
  role: Role,
): Promise<Outcome<{ token: string; member: StaffMember }>> {
  const email = normaliseEmail(rawEmail);
  if (!email) return { ok: false, message: 'Enter a valid email address.' };
  return ctx.database.transaction(async (tx): Promise<Outcome<{ token: string; member: StaffMember }>> => {
    let existing = await staffByEmail(tx, email);
    const inserted = existing ? undefined : await insertStaffIfAbsent(tx, email, role, ctx.now);
    // Nothing inserted: a concurrent invitation made the account meanwhile (the unique email); it is the one there.
    if (!existing && !inserted) existing = await staffByEmail(tx, email);
    if (existing?.status === 'active') return { ok: false, message: `${email} already has an account.` };
    if (existing?.status === 'disabled') return { ok: false, message: `${email} has a disabled account; enable it instead.` };
    const member = inserted ?? existing;
    if (!member) throw new Error(`the staff account of ${email} was neither found nor made`);
    if (existing && existing.role !== role) await updateStaffRow(tx, existing.id, { role }, ctx.now);
    const purpose: LinkPurpose = actor ? 'invite' : 'setup';
    const { token } = await createLink(tx, member.id, purpose, actor?.id ?? null, ctx.now);
    await audit(tx, ctx, actor ? 'staff.invited' : 'staff.created', actor ?? 'system', `staff:${member.id}`, {
      email,
      role,
      reissued: Boolean(existing),
    });
    return { ok: true, token, member: { ...member, role } };
  });
}

/**
 * Why the change must not be made to `target` (the only active owner), or null. Called in a
 * SERIALIZABLE transaction: two owners demoting or disabling each other at once read the count
 * each other's write changes, and PostgreSQL fails one of them, which then runs again and is refused.
 */
async function guardLastOwner(tx: Tx, target: StaffMember): Promise<string | null> {
  if (target.role === 'owner' && target.status === 'active' && (await activeOwnerCount(tx, target.id)) === 0) {
    return 'This is the only active owner; make someone else an owner first.';
  }
  return null;
}

export function changeRole(ctx: AuthContext, actor: StaffMember, targetId: number, role: Role): Promise<Outcome> {
  return ctx.database.transaction(
    async (tx): Promise<Outcome> => {
      const target = await staffById(tx, targetId);
      if (!target) return { ok: false, message: 'No such staff member.' };
      if (target.role === role) return { ok: true };
      const blocked = role !== 'owner' ? await guardLastOwner(tx, target) : null;
      if (blocked) return { ok: false, message: blocked };
      await updateStaffRow(tx, target.id, { role }, ctx.now);
      const ended = await invalidateSessionsOf(tx, target.id);
      await audit(tx, ctx, 'staff.role_changed', actor, `staff:${target.id}`, {
        before: { role: target.role },
        after: { role },
        sessionsEnded: ended,
      });
      return { ok: true };
    },
    { serializable: true },
  );
}

export function setStaffEnabled(ctx: AuthContext, actor: StaffMember, targetId: number, enabled: boolean): Promise<Outcome> {
  return ctx.database.transaction(
    async (tx): Promise<Outcome> => {
      const target = await staffById(tx, targetId);
      if (!target) return { ok: false, message: 'No such staff member.' };
      if (target.id === actor.id && !enabled) return { ok: false, message: 'You cannot disable your own account.' };
      if (!enabled) {
        const blocked = await guardLastOwner(tx, target);
        if (blocked) return { ok: false, message: blocked };
        await updateStaffRow(tx, target.id, { status: 'disabled' }, ctx.now);
        await raiseDeviceGeneration(tx, target.id, ctx.now);
        // An invitation sent before the account was disabled must not revive it later.
        await revokeLinksOf(tx, target.id, ctx.now);
        const ended = await invalidateSessionsOf(tx, target.id);
        await audit(tx, ctx, 'staff.disabled', actor, `staff:${target.id}`, {
          before: { status: target.status },
          after: { status: 'disabled' },
          sessionsEnded: ended,
        });
        return { ok: true };
      }
      if (target.status !== 'disabled') return { ok: true };
      const status = target.passwordHash ? 'active' : 'invited';
      await updateStaffRow(tx, target.id, { status }, ctx.now);
      await audit(tx, ctx, 'staff.enabled', actor, `staff:${target.id}`, { before: { status: 'disabled' }, after: { status } });
      return { ok: true };
    },
    { serializable: true },
  );
}
