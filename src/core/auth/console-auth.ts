/**
 * The console's security flows: sign-in, second factor, enrolment,
 * one-time links, password changes and staff management. Each takes what it
 * needs, records what happened in the audit log, and answers with a
 * message a person can act on, never with an exception for bad input.
 */
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import QRCode from 'qrcode';
import type { Db } from '../../../db/client.ts';
import { databaseOf } from '../../../db/engine/sqlite.ts';
import { recoveryCodes, staff } from '../../../db/schema.ts';
import type { AuditAction, RefusalAction } from '../audit/actions.ts';
import { type AuditInput, recordAudit } from '../audit/log.ts';
import { recordRefusal } from '../audit/repeats.ts';
import { seal, unseal } from '../crypto/seal.ts';
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
import {
  countActiveOwners,
  findStaffByEmail,
  forgetDevices,
  getStaff,
  insertStaff,
  normaliseEmail,
  staffLabel,
  updateStaff,
} from './staff.ts';
import { generateRecoveryCodes, generateTotpKey, hashRecoveryCode, matchTotp, totpKeyText, totpKeyUri } from './totp.ts';

export interface AuthContext {
  /**
   * The database. The flows still do most of their work on it synchronously; what has moved to the
   * stores (the rate limits) runs on `databaseOf(ctx.db)`, the async handle of this same connection,
   * so the two can never name different databases (db/engine/sqlite.ts: the transition rule).
   */
  db: Db;
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
}

export type Outcome<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string };

/** Where a freshly signed-in person goes next. */
export type NextStep = 'console' | 'mfa' | 'enrol';

const GENERIC_SIGN_IN_ERROR = 'Email or password is incorrect.';

/** An audit entry for a sign-in flow: the staff member (or nobody yet) from the request's address. */
function entry(
  ctx: AuthContext,
  action: AuditAction,
  actor: StaffMember | null,
  target: string | null,
  summary: Record<string, unknown>,
): AuditInput {
  return {
    actor: actor ? { type: 'staff', id: actor.id, label: staffLabel(actor) } : { type: 'anonymous' },
    ip: ctx.client.ip,
    userAgent: ctx.client.userAgent,
    action,
    target,
    summary,
  };
}

function audit(
  ctx: AuthContext,
  action: AuditAction,
  actor: StaffMember | null,
  target: string | null,
  summary: Record<string, unknown> = {},
): void {
  recordAudit(ctx.db, entry(ctx, action, actor, target, summary), ctx.now);
}

/** A refusal someone may repeat by the hundred: identical ones within a window are one entry and a count (audit/repeats.ts). */
function refuse(
  ctx: AuthContext,
  action: RefusalAction,
  actor: StaffMember | null,
  target: string | null,
  summary: Record<string, unknown> = {},
): void {
  recordRefusal(ctx.db, { ...entry(ctx, action, actor, target, summary), action }, ctx.now);
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
export function rememberDevice(ctx: AuthContext, staffId: number): string | null {
  const member = getStaff(ctx.db, staffId);
  return member && member.status === 'active' ? deviceFor(ctx, member) : null;
}

/** `device`: the recognised-device cookie to set when this sign-in is complete (no second factor to give), or null. */
export async function signIn(
  ctx: AuthContext,
  rawEmail: string,
  password: string,
): Promise<Outcome<{ token: string; next: NextStep; device: string | null }>> {
  const email = normaliseEmail(rawEmail) ?? rawEmail.trim().toLowerCase().slice(0, 254);
  const member = findStaffByEmail(ctx.db, email);
  const device = presentedDevice(ctx, member);
  // Counted before the password check, which awaits: attempts made in parallel must each see the others.
  const refused = await databaseOf(ctx.db).transaction((tx) => countSignInAttempt(tx, email, ctx.client.ip, ctx.now, device?.id ?? null));
  if (refused) {
    await verifyAgainstDummy(password);
    refuse(ctx, 'auth.sign_in.locked', null, member ? `staff:${member.id}` : null, { reason: refused.reason, ...deviceNote(device) });
    return { ok: false, message: `Too many attempts. Try again in ${minutes(refused.retryAfterMs)}.` };
  }
  const passwordOk =
    member?.passwordHash && member.status === 'active'
      ? await verifyPassword(member.passwordHash, password)
      : await verifyAgainstDummy(password);
  if (!member || !passwordOk) {
    refuse(ctx, 'auth.sign_in.failed', null, member ? `staff:${member.id}` : null, {
      reason: member ? (member.status === 'active' ? 'password' : `account ${member.status}`) : 'unknown account',
      emailDomain: email.split('@')[1] ?? null,
      ...deviceNote(device),
    });
    return { ok: false, message: GENERIC_SIGN_IN_ERROR };
  }
  await databaseOf(ctx.db).transaction((tx) => signInSucceeded(tx, email, ctx.client.ip, device?.id ?? null));
  const { token } = createSession(ctx.db, member.id, ctx.client, ctx.policy, ctx.now);
  const next = nextStepFor(member);
  audit(ctx, 'auth.sign_in.succeeded', member, `staff:${member.id}`, { next, ...deviceNote(device) });
  return { ok: true, token, next, device: next === 'console' ? deviceFor(ctx, member) : null };
}

/**
 * Claims the TOTP step of `code` or, failing that, an unused recovery code, and marks the session
 * verified: what was used (with the recovery codes left), or null. Synchronous, on `ctx.db`.
 */
function claimSecondFactor(
  ctx: AuthContext,
  member: StaffMember,
  session: Session,
  code: string,
): { kind: 'totp' } | { kind: 'recovery'; left: number } | null {
  if (!member.totpSecret || !member.totpEnrolledAt) return null;
  const key = Buffer.from(unseal(ctx.keys, member.totpSecret, totpContext(member.id)), 'base64');
  const counter = matchTotp(key, code, ctx.now, member.totpLastCounter);
  // The step is claimed in the database, not judged from `member` as read earlier in the request: of two uses of one code, one wins.
  const claimed =
    counter !== null &&
    ctx.db
      .update(staff)
      .set({ totpLastCounter: counter, updatedAt: ctx.now })
      .where(and(eq(staff.id, member.id), or(isNull(staff.totpLastCounter), lt(staff.totpLastCounter, counter))))
      .run().changes === 1;
  if (claimed) {
    markSessionMfaVerified(ctx.db, session.id, ctx.now);
    return { kind: 'totp' };
  }
  const used = ctx.db
    .update(recoveryCodes)
    .set({ usedAt: ctx.now })
    .where(
      and(
        eq(recoveryCodes.staffId, member.id),
        eq(recoveryCodes.codeHash, hashRecoveryCode(code, ctx.secret)),
        isNull(recoveryCodes.usedAt),
      ),
    )
    .run();
  if (used.changes !== 1) return null;
  markSessionMfaVerified(ctx.db, session.id, ctx.now);
  const left = ctx.db
    .select({ id: recoveryCodes.id })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.staffId, member.id), isNull(recoveryCodes.usedAt)))
    .all().length;
  return { kind: 'recovery', left };
}

/**
 * Checks a TOTP code or, failing that, an unused recovery code; `device` is the recognised-device cookie to set.
 * The limits' check, the claim of the code and the count of a failure are one transaction of the
 * connection's handle (the claim, still synchronous code on `ctx.db`, runs inside it without an await
 * and is part of it): attempts made in parallel run one after the other, each seeing the failures
 * counted before it.
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
  const verdict = await databaseOf(ctx.db).transaction(async (tx) => {
    const refused = await secondFactorRefusal(tx, member.id, ctx.client.ip, ctx.now, deviceId);
    if (refused) return { refused, used: null };
    const used = claimSecondFactor(ctx, member, session, code);
    if (used) await secondFactorSucceeded(tx, member.id, ctx.client.ip, deviceId);
    else await countSecondFactorFailure(tx, member.id, ctx.client.ip, ctx.now, deviceId);
    return { refused: null, used };
  });
  if (verdict.refused) {
    refuse(ctx, 'auth.sign_in.locked', member, account, { reason: verdict.refused.reason, ...deviceNote(device) });
    return { ok: false, message: `Too many attempts. Try again in ${minutes(verdict.refused.retryAfterMs)}.` };
  }
  if (verdict.used?.kind === 'totp') {
    audit(ctx, 'auth.mfa.verified', member, account, deviceNote(device));
    return { ok: true, device: deviceFor(ctx, member) };
  }
  if (verdict.used?.kind === 'recovery') {
    audit(ctx, 'auth.mfa.recovery_code_used', member, account, { unusedLeft: verdict.used.left, ...deviceNote(device) });
    return { ok: true, device: deviceFor(ctx, member) };
  }
  refuse(ctx, 'auth.mfa.failed', member, account, deviceNote(device));
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

export function completeEnrolment(
  ctx: AuthContext,
  member: StaffMember,
  session: Session,
  pending: string,
  code: string,
): Outcome<{ recoveryCodes: string[]; device: string }> {
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
  ctx.db.transaction((tx) => {
    tx.update(staff)
      .set({
        totpSecret: seal(current, keyBase64, totpContext(member.id)),
        totpEnrolledAt: ctx.now,
        totpLastCounter: counter,
        updatedAt: ctx.now,
      })
      .where(eq(staff.id, member.id))
      .run();
    tx.delete(recoveryCodes).where(eq(recoveryCodes.staffId, member.id)).run();
    tx.insert(recoveryCodes)
      .values(codes.map((c) => ({ staffId: member.id, codeHash: hashRecoveryCode(c, ctx.secret) })))
      .run();
  });
  markSessionMfaVerified(ctx.db, session.id, ctx.now);
  audit(ctx, 'auth.mfa.enrolled', member, `staff:${member.id}`, { backupCount: codes.length });
  // The session now has both factors: sign-in is complete on this device.
  return { ok: true, recoveryCodes: codes, device: deviceFor(ctx, member) };
}

export function regenerateRecoveryCodes(ctx: AuthContext, member: StaffMember): string[] {
  const codes = generateRecoveryCodes();
  ctx.db.transaction((tx) => {
    tx.delete(recoveryCodes).where(eq(recoveryCodes.staffId, member.id)).run();
    tx.insert(recoveryCodes)
      .values(codes.map((c) => ({ staffId: member.id, codeHash: hashRecoveryCode(c, ctx.secret) })))
      .run();
  });
  audit(ctx, 'auth.recovery_codes.regenerated', member, `staff:${member.id}`, { backupCount: codes.length });
  return codes;
}

export type LinkState = Outcome<{ member: StaffMember; purpose: LinkPurpose }>;

const linkMessages = {
  invalid: 'This link is not valid. Ask an owner for a new one.',
  used: 'This link has already been used. Sign in, or ask an owner for a new link.',
  expired: 'This link has expired (links are valid for 24 hours). Ask an owner for a new one.',
} as const;

export function inspectLink(ctx: AuthContext, token: string): LinkState {
  const check = checkLink(ctx.db, token, ctx.now);
  if (!check.ok) return { ok: false, message: linkMessages[check.reason] };
  const member = getStaff(ctx.db, check.link.staffId);
  if (!member || member.status === 'disabled') return { ok: false, message: linkMessages.invalid };
  return { ok: true, member, purpose: check.link.purpose };
}

/**
 * Sets the password from a one-time link and signs the person in. A new password forgets the
 * member's recognised devices; `device` is this one's cookie when sign-in is complete.
 */
export async function completeLink(
  ctx: AuthContext,
  token: string,
  password: string,
  confirm: string,
): Promise<Outcome<{ token: string; next: NextStep; device: string | null }>> {
  if ((await hitLimitNow(databaseOf(ctx.db), authLimits.linkPerIp, sourceOf(ctx.client.ip), ctx.now)).limited)
    return { ok: false, message: 'Too many attempts. Try again later.' };
  const state = inspectLink(ctx, token);
  if (!state.ok) return state;
  const { member } = state;
  if (password !== confirm) return { ok: false, message: 'The two passwords do not match.' };
  const problem = passwordProblem(password, member.email);
  if (problem) return { ok: false, message: problem };
  const passwordHash = await hashPassword(password);
  const check = checkLink(ctx.db, token, ctx.now);
  if (!check.ok || !consumeLink(ctx.db, check.link.id, ctx.now)) return { ok: false, message: linkMessages.used };
  updateStaff(ctx.db, member.id, { passwordHash, status: 'active' }, ctx.now);
  forgetDevices(ctx.db, member.id, ctx.now);
  invalidateSessionsOf(ctx.db, member.id);
  const { token: sessionToken } = createSession(ctx.db, member.id, ctx.client, ctx.policy, ctx.now);
  audit(ctx, 'auth.link.used', member, `staff:${member.id}`, { purpose: check.link.purpose });
  audit(ctx, 'auth.password.set', member, `staff:${member.id}`);
  const refreshed = getStaff(ctx.db, member.id) ?? member;
  const next = nextStepFor(refreshed);
  return { ok: true, token: sessionToken, next, device: next === 'console' ? issueDevice(ctx.secret, refreshed, ctx.now) : null };
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
  updateStaff(ctx.db, member.id, { passwordHash: await hashPassword(next) }, ctx.now);
  // Every recognised device is forgotten; the action gives this one a new cookie (rememberDevice).
  forgetDevices(ctx.db, member.id, ctx.now);
  const endedSessions = invalidateSessionsOf(ctx.db, member.id, session.id);
  audit(ctx, 'auth.password.changed', member, `staff:${member.id}`, { otherSessionsEnded: endedSessions });
  return { ok: true, endedSessions };
}

export function signOut(ctx: AuthContext, member: StaffMember, session: Session): void {
  invalidateSession(ctx.db, session.id);
  audit(ctx, 'auth.sign_out', member, `staff:${member.id}`);
}

/** Ends one session: one's own, or anyone's for those who manage staff. */
export function revokeSession(ctx: AuthContext, actor: StaffMember, target: Session): void {
  invalidateSession(ctx.db, target.id);
  audit(ctx, 'auth.session.revoked', actor, `session:${target.id.slice(0, 8)}`, { ofStaff: target.staffId });
}

/** Signs the member out everywhere (but `keepId`) and forgets their recognised devices. */
export function revokeAllSessionsOf(ctx: AuthContext, actor: StaffMember, target: StaffMember, keepId?: string): number {
  const ended = invalidateSessionsOf(ctx.db, target.id, keepId);
  forgetDevices(ctx.db, target.id, ctx.now);
  audit(ctx, 'auth.session.revoked', actor, `staff:${target.id}`, { sessionsEnded: ended });
  return ended;
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
): Outcome<{ token: string; member: StaffMember }> {
  const email = normaliseEmail(rawEmail);
  const target = email ? findStaffByEmail(ctx.db, email) : undefined;
  if (!target) return { ok: false, message: 'There is no staff account with that email address.' };
  if (target.status === 'disabled') return { ok: false, message: `${target.email} is disabled; enable the account first.` };
  if (actor && target.id === actor.id)
    return { ok: false, message: 'Use your recovery codes, or ask another owner, to reset your own sign-in.' };
  ctx.db.transaction((tx) => {
    tx.update(staff)
      .set({
        passwordHash: null,
        totpSecret: null,
        totpEnrolledAt: null,
        totpLastCounter: null,
        status: 'invited',
        // every recognised device of theirs is forgotten: the reset may be because one was lost
        deviceGeneration: sql`${staff.deviceGeneration} + 1`,
        updatedAt: ctx.now,
      })
      .where(eq(staff.id, target.id))
      .run();
    tx.delete(recoveryCodes).where(eq(recoveryCodes.staffId, target.id)).run();
  });
  const ended = invalidateSessionsOf(ctx.db, target.id);
  const { token } = createLink(ctx.db, target.id, 'reset', actor?.id ?? null, ctx.now);
  recordAudit(
    ctx.db,
    {
      actor: actor ? { type: 'staff', id: actor.id, label: staffLabel(actor) } : { type: 'system' },
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent,
      action: 'staff.sign_in_reset',
      target: `staff:${target.id}`,
      summary: { email: target.email, sessionsEnded: ended, secondFactorRemoved: Boolean(target.totpEnrolledAt) },
    },
    ctx.now,
  );
  return { ok: true, token, member: { ...target, status: 'invited' } };
}

/**
 * An owner lets a locked-out member try again at once: every count against their account (sign-in
 * and second factor, per address and the account's ceiling) is forgotten. The counts of addresses
 * across accounts stay: they are about the addresses, not the person.
 */
export async function clearLockout(ctx: AuthContext, actor: StaffMember, targetId: number): Promise<Outcome<{ member: StaffMember }>> {
  const target = getStaff(ctx.db, targetId);
  if (!target) return { ok: false, message: 'No such staff member.' };
  const lockout = await databaseOf(ctx.db).transaction(async (tx) => {
    const found = await lockoutOf(tx, target, ctx.now);
    if (found) await clearLockoutCounts(tx, target);
    return found;
  });
  if (!lockout) return { ok: false, message: `${target.email} is not locked out.` };
  audit(ctx, 'staff.lockout_cleared', actor, `staff:${target.id}`, {
    email: target.email,
    signInAddresses: lockout.signIn.addresses,
    accountCeiling: lockout.signIn.ceilingUntil !== null,
    secondFactorAddresses: lockout.secondFactor.addresses,
    secondFactorCeiling: lockout.secondFactor.ceilingUntil !== null,
  });
  return { ok: true, member: target };
}

export function inviteStaff(
  ctx: AuthContext,
  actor: StaffMember | null,
  rawEmail: string,
  role: Role,
): Outcome<{ token: string; member: StaffMember }> {
  const email = normaliseEmail(rawEmail);
  if (!email) return { ok: false, message: 'Enter a valid email address.' };
  const existing = findStaffByEmail(ctx.db, email);
  if (existing?.status === 'active') return { ok: false, message: `${email} already has an account.` };
  if (existing?.status === 'disabled') return { ok: false, message: `${email} has a disabled account; enable it instead.` };
  const member = existing ?? insertStaff(ctx.db, email, role, ctx.now);
  if (existing && existing.role !== role) updateStaff(ctx.db, existing.id, { role }, ctx.now);
  const purpose: LinkPurpose = actor ? 'invite' : 'setup';
  const { token } = createLink(ctx.db, member.id, purpose, actor?.id ?? null, ctx.now);
  recordAudit(
    ctx.db,
    {
      actor: actor ? { type: 'staff', id: actor.id, label: staffLabel(actor) } : { type: 'system' },
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent,
      action: actor ? 'staff.invited' : 'staff.created',
      target: `staff:${member.id}`,
      summary: { email, role, reissued: Boolean(existing) },
    },
    ctx.now,
  );
  return { ok: true, token, member: { ...member, role } };
}

function guardLastOwner(ctx: AuthContext, target: StaffMember): string | null {
  if (target.role === 'owner' && target.status === 'active' && countActiveOwners(ctx.db) <= 1) {
    return 'This is the only active owner; make someone else an owner first.';
  }
  return null;
}

export function changeRole(ctx: AuthContext, actor: StaffMember, targetId: number, role: Role): Outcome {
  const target = getStaff(ctx.db, targetId);
  if (!target) return { ok: false, message: 'No such staff member.' };
  if (target.role === role) return { ok: true };
  const blocked = role !== 'owner' ? guardLastOwner(ctx, target) : null;
  if (blocked) return { ok: false, message: blocked };
  updateStaff(ctx.db, target.id, { role }, ctx.now);
  const ended = invalidateSessionsOf(ctx.db, target.id);
  audit(ctx, 'staff.role_changed', actor, `staff:${target.id}`, { before: { role: target.role }, after: { role }, sessionsEnded: ended });
  return { ok: true };
}

export function setStaffEnabled(ctx: AuthContext, actor: StaffMember, targetId: number, enabled: boolean): Outcome {
  const target = getStaff(ctx.db, targetId);
  if (!target) return { ok: false, message: 'No such staff member.' };
  if (target.id === actor.id && !enabled) return { ok: false, message: 'You cannot disable your own account.' };
  if (!enabled) {
    const blocked = guardLastOwner(ctx, target);
    if (blocked) return { ok: false, message: blocked };
    updateStaff(ctx.db, target.id, { status: 'disabled' }, ctx.now);
    forgetDevices(ctx.db, target.id, ctx.now);
    // An invitation sent before the account was disabled must not revive it later.
    revokeLinksOf(ctx.db, target.id, ctx.now);
    const ended = invalidateSessionsOf(ctx.db, target.id);
    audit(ctx, 'staff.disabled', actor, `staff:${target.id}`, {
      before: { status: target.status },
      after: { status: 'disabled' },
      sessionsEnded: ended,
    });
  } else {
    if (target.status !== 'disabled') return { ok: true };
    const status = target.passwordHash ? 'active' : 'invited';
    updateStaff(ctx.db, target.id, { status }, ctx.now);
    audit(ctx, 'staff.enabled', actor, `staff:${target.id}`, { before: { status: 'disabled' }, after: { status } });
  }
  return { ok: true };
}
