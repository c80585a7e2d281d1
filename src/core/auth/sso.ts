/**
 * Staff single sign-on with OpenID Connect, through `openid-client` (discovery, authorization code
 * with PKCE, ID token checked for signature by the provider's JWKS, issuer, audience, expiry and
 * nonce). Configuration: src/core/config/sso.ts.
 *
 * - Start: a fresh state, nonce and PKCE verifier are sealed (AES-GCM, src/core/crypto/seal.ts)
 *   into a short-lived cookie bound to this browser; nothing is written to the database.
 * - Callback: the cookie must open, be unexpired and name the state the provider sent back; the
 *   state is then spent once (a counter in rate_limits), so a replayed callback is refused even with
 *   the cookie. openid-client exchanges the code and verifies the ID token.
 * - The account: found by the provider identity (issuer + `sub`) linked at an earlier SSO sign-in,
 *   else by the ID token's email, only when `email_verified` is true (an unverified address grants
 *   nothing), and then linked. The role comes from the mapping (groups claim, email domain) at every
 *   sign-in: no mapped role, no sign-in (and the member's sessions end); a changed mapping changes
 *   the role (and ends the other sessions, as an owner's role change does). An unknown address gets
 *   an account only in a domain listed for creation.
 * - Refused callbacks are counted per source address (30 in 15 minutes, rate-limit.ts): each may
 *   have cost a request to the provider.
 * - The session is an ordinary staff session (session.ts), marked `sso` and past its second factor:
 *   the provider's own MFA is the norm, so Candor asks for no TOTP on top (README).
 * Every sign-in, refusal, link and account creation is audited; tokens never are.
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Tx } from '../../../db/engine/types.ts';
import { countHit } from '../../stores/rate-limits.ts';
import { activeOwnerCount, insertStaffIfAbsent, staffByEmail, staffBySsoIdentity, updateStaffRow } from '../../stores/staff.ts';
import { writeAudit } from '../audit/log.ts';
import { recordRefusal } from '../audit/repeats.ts';
import type { SsoConfig } from '../config/sso.ts';
import { seal, unseal } from '../crypto/seal.ts';
import type { AuthContext, Outcome } from './console-auth.ts';
import { sourceOf } from './lockouts.ts';
import type { Role } from './permissions.ts';
import { authLimits, hitLimitNow, peekLimitNow } from './rate-limit.ts';
import { createSession, invalidateSessionsOf, type StaffMember } from './session.ts';
import { normaliseEmail, staffLabel } from './staff.ts';

/** How long a started sign-in may take at the provider. */
export const SSO_FLOW_TTL_MS = 10 * 60_000;
const FLOW_CONTEXT = 'sso-flow';
/** A spent state is remembered longer than any flow cookie lives. */
const STATE_MEMORY_MS = 2 * SSO_FLOW_TTL_MS;

const ROLE_RANK: Record<Role, number> = { owner: 4, admin: 3, responder: 2, viewer: 1 };

/**
 * The highest role the member's groups or email domain map to, and what granted it; null when nothing
 * maps. The domain counts only when `domainVouched` (see domainVouchedFor).
 */
export function mappedRole(
  sso: SsoConfig,
  email: string,
  groups: readonly string[],
  domainVouched = true,
): { role: Role; by: 'group' | 'domain' } | null {
  let best: { role: Role; by: 'group' | 'domain' } | null = null;
  for (const group of groups) {
    const role = sso.roleByGroup.get(group);
    if (role && (!best || ROLE_RANK[role] > ROLE_RANK[best.role])) best = { role, by: 'group' };
  }
  const domainRole = domainVouched ? sso.roleByDomain.get(domainOf(email)) : undefined;
  if (domainRole && (!best || ROLE_RANK[domainRole] > ROLE_RANK[best.role])) best = { role: domainRole, by: 'domain' };
  return best;
}

const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1).toLowerCase();

/** Google's issuer: its ID tokens say which Workspace, if any, the account belongs to (`hd`). */
export const GOOGLE_ISSUER = 'https://accounts.google.com';

/**
 * Whether the provider vouches that the email's domain is the organisation's, so that a role or an
 * account may follow from the domain. Google verifies an address of any domain for a personal
 * account too (a former employee's, say, made with their work address): there only the hosted-domain
 * claim `hd`, which Google sets for Workspace accounts alone, says the domain's organisation manages
 * the account. Other providers (Entra ID, Okta, a company's own) issue tokens only for their directory.
 */
export function domainVouchedFor(issuer: string, email: string, hostedDomain: string | null): boolean {
  if (issuer.replace(/\/+$/, '') !== GOOGLE_ISSUER) return true;
  return hostedDomain !== null && hostedDomain.toLowerCase() === domainOf(email);
}

/** Discovery once per process and configuration; a failed discovery is tried again at the next sign-in. */
const discoveries = new WeakMap<SsoConfig, Promise<oidc.Configuration>>();

function discovered(sso: SsoConfig): Promise<oidc.Configuration> {
  let found = discoveries.get(sso);
  if (!found) {
    found = oidc.discovery(sso.issuer, sso.clientId, sso.clientSecret, undefined, {
      timeout: 10,
      // enableNonRepudiationChecks: the ID token's signature is checked against the provider's JWKS
      // too (openid-client otherwise relies on TLS to the token endpoint alone).
      execute: sso.insecureLoopback ? [oidc.enableNonRepudiationChecks, oidc.allowInsecureRequests] : [oidc.enableNonRepudiationChecks],
    });
    found.catch(() => discoveries.delete(sso));
    discoveries.set(sso, found);
  }
  return found;
}

interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  /** where to go after sign-in (already a safe console path) */
  next: string;
  expiresAt: number;
}

export interface SsoStart {
  /** the provider's authorization URL to redirect to */
  url: URL;
  /** the sealed flow, for the short-lived cookie */
  cookie: string;
}

/** A new authorization request: the URL to send the browser to and the sealed flow for its cookie. */
export async function startSso(ctx: AuthContext, sso: SsoConfig, next: string): Promise<Outcome<SsoStart>> {
  let config: oidc.Configuration;
  try {
    config = await discovered(sso);
  } catch (err) {
    console.error(`[candor] SSO discovery at ${sso.issuer.href} failed: ${describeError(err)}`);
    return { ok: false, message: `${sso.providerName} cannot be reached just now. Try again in a moment, or sign in with your password.` };
  }
  const flow: Flow = {
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    verifier: oidc.randomPKCECodeVerifier(),
    next,
    expiresAt: ctx.now.getTime() + SSO_FLOW_TTL_MS,
  };
  const [key] = ctx.keys;
  if (!key) throw new Error('no encryption key configured');
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: sso.redirectUri.href,
    scope: 'openid email profile',
    response_type: 'code',
    state: flow.state,
    nonce: flow.nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
    code_challenge_method: 'S256',
  });
  return { ok: true, url, cookie: seal(key, JSON.stringify(flow), FLOW_CONTEXT) };
}

function openFlow(ctx: AuthContext, cookie: string | undefined): Flow | null {
  if (!cookie) return null;
  try {
    const flow = JSON.parse(unseal(ctx.keys, cookie, FLOW_CONTEXT)) as Flow;
    return flow.expiresAt > ctx.now.getTime() ? flow : null;
  } catch {
    return null;
  }
}

/**
 * An error's code and message for the log and the audit. openid-client wraps oauth4webapi's error,
 * whose message says which check failed ('unexpected ID Token "nonce" claim value', 'JWT signature
 * verification failed'); neither message carries a token or a claim's value, and nothing else of
 * the errors (which hold the claims) is taken.
 */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown error';
  const { code } = err as { code?: unknown };
  const detail = err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  return `${typeof code === 'string' ? `${code}: ` : ''}${detail}`.slice(0, 300);
}

const stateKey = (state: string) => createHash('sha256').update(state).digest('base64url');

type Verdict =
  | { ok: true; token: string; member: StaffMember }
  | { ok: false; reason: string; member: StaffMember | null; sessionsEnded?: number };

/** What the ID token says about the person, as far as sign-in needs. */
interface Identity {
  issuer: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
  groups: string[];
  /** Google's hosted-domain claim (`hd`), set for Workspace accounts only */
  hostedDomain: string | null;
}

function identityOf(claims: oidc.IDToken, sso: SsoConfig): Identity {
  const rawEmail = typeof claims.email === 'string' ? claims.email : null;
  const groupsClaim = claims[sso.groupsClaim];
  const groups = Array.isArray(groupsClaim)
    ? groupsClaim.filter((g): g is string => typeof g === 'string')
    : typeof groupsClaim === 'string'
      ? [groupsClaim]
      : [];
  return {
    issuer: claims.iss,
    subject: claims.sub,
    email: rawEmail ? (normaliseEmail(rawEmail) ?? null) : null,
    emailVerified: claims.email_verified === true,
    groups,
    hostedDomain: typeof claims.hd === 'string' ? claims.hd : null,
  };
}

/**
 * Finishes a sign-in at the callback: `callbackUrl` is the URL the provider sent the browser to,
 * `flowCookie` the sealed flow from startSso. A session token and where to go, or a refusal (audited).
 */
export async function completeSso(
  ctx: AuthContext,
  sso: SsoConfig,
  callbackUrl: URL,
  flowCookie: string | undefined,
): Promise<Outcome<{ token: string; next: string }>> {
  const failed = { ok: false as const, message: `Signing in with ${sso.providerName} did not work. Try again, or ask an owner.` };
  const limited = await peekLimitNow(ctx.database, authLimits.ssoFailuresPerIp, sourceOf(ctx.client.ip), ctx.now);
  if (limited.limited) {
    await refuseSso(ctx, null, 'too many refused attempts from this address', undefined, {}, false);
    return { ok: false, message: `Too many attempts. Try again in ${Math.max(1, Math.ceil(limited.retryAfterMs / 60_000))} minutes.` };
  }
  const flow = openFlow(ctx, flowCookie);
  const returnedState = callbackUrl.searchParams.get('state');
  if (!flow || returnedState !== flow.state) {
    await refuseSso(ctx, null, flow ? 'state does not match' : 'no sign-in in progress (unknown or expired state)');
    return { ok: false, message: 'This sign-in link has expired or was not started here. Start again.' };
  }
  const providerError = callbackUrl.searchParams.get('error');
  if (providerError) {
    await refuseSso(ctx, null, `provider answered ${providerError.slice(0, 60)}`);
    return failed;
  }
  const spent = await ctx.database.transaction((tx) => countHit(tx, 'sso-state', stateKey(flow.state), ctx.now, STATE_MEMORY_MS));
  if (spent.count > 1) {
    await refuseSso(ctx, null, 'state already used (replayed callback)');
    return { ok: false, message: 'This sign-in was already completed. Start again.' };
  }
  let identity: Identity;
  try {
    const config = await discovered(sso);
    // The URL as registered at the provider (CANDOR_PUBLIC_URL), with the parameters the provider sent.
    const current = new URL(sso.redirectUri);
    current.search = callbackUrl.search;
    const tokens = await oidc.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('the token response carried no ID token');
    identity = identityOf(claims, sso);
  } catch (err) {
    await refuseSso(ctx, null, `ID token or code refused: ${describeError(err)}`);
    return failed;
  }
  const verdict = await ctx.database.transaction((tx) => signInIdentity(tx, ctx, sso, identity), { serializable: true });
  if (!verdict.ok) {
    await refuseSso(ctx, verdict.member, verdict.reason, identity, verdict.sessionsEnded ? { sessionsEnded: verdict.sessionsEnded } : {});
    return { ok: false, message: refusalMessage(verdict.reason, sso) };
  }
  return { ok: true, token: verdict.token, next: flow.next };
}

function refusalMessage(reason: string, sso: SsoConfig): string {
  if (reason.startsWith('email not verified'))
    return `${sso.providerName} did not confirm your email address is verified, so it cannot sign you in here.`;
  if (reason.startsWith('no role')) return 'Your groups or email domain do not give you access to this console. Ask an owner.';
  if (reason.startsWith('unknown account')) return 'There is no staff account for your email address. Ask an owner to invite you.';
  if (reason.startsWith('account disabled')) return 'Your account is disabled. Ask an owner.';
  return `Signing in with ${sso.providerName} did not work. Ask an owner.`;
}

const audited = (ctx: AuthContext, actor: StaffMember | null) => ({
  actor: actor ? ({ type: 'staff', id: actor.id, label: staffLabel(actor) } as const) : ({ type: 'anonymous' } as const),
  ip: ctx.client.ip,
  userAgent: ctx.client.userAgent,
});

/**
 * A refusal, audited (identical ones in a window are counted, audit/repeats.ts): the reason and the
 * email's domain, never a token; `count`: it counts toward the source's limit of refused callbacks.
 */
async function refuseSso(
  ctx: AuthContext,
  member: StaffMember | null,
  reason: string,
  identity?: Identity,
  extra: Record<string, unknown> = {},
  count = true,
): Promise<void> {
  if (count) await hitLimitNow(ctx.database, authLimits.ssoFailuresPerIp, sourceOf(ctx.client.ip), ctx.now);
  await recordRefusal(
    ctx.database,
    {
      ...audited(ctx, member),
      action: 'auth.sso.refused',
      target: member ? `staff:${member.id}` : null,
      summary: { reason, ...(identity?.email ? { emailDomain: domainOf(identity.email) } : {}), ...extra },
    },
    ctx.now,
  );
}

/**
 * The account for the identity, its role from the mapping, and a new SSO session, in one
 * SERIALIZABLE transaction (a role change reads the other owners, as console-auth.ts's does).
 * Refusals write nothing here; the caller audits them.
 */
async function signInIdentity(tx: Tx, ctx: AuthContext, sso: SsoConfig, identity: Identity): Promise<Verdict> {
  let member = await staffBySsoIdentity(tx, identity.issuer, identity.subject);
  let created = false;
  if (!member) {
    if (!identity.email) return { ok: false, reason: 'no email in the ID token', member: null };
    if (!identity.emailVerified) return { ok: false, reason: 'email not verified by the provider', member: null };
    member = await staffByEmail(tx, identity.email);
    if (member?.ssoSubject) return { ok: false, reason: 'account linked to another provider identity', member };
    if (!member) {
      const vouched = domainVouchedFor(identity.issuer, identity.email, identity.hostedDomain);
      if (!vouched || !sso.autoCreateDomains.has(domainOf(identity.email))) return { ok: false, reason: 'unknown account', member: null };
      const mapped = mappedRole(sso, identity.email, identity.groups, vouched);
      if (!mapped) return { ok: false, reason: 'no role mapped for a new account', member: null };
      member = await insertStaffIfAbsent(tx, identity.email, mapped.role, ctx.now);
      if (!member) return { ok: false, reason: 'account created concurrently', member: null };
      created = true;
    }
  }
  const target = `staff:${member.id}`;
  if (member.status === 'disabled') return { ok: false, reason: 'account disabled', member };
  const mapped = mappedRole(sso, member.email, identity.groups, domainVouchedFor(identity.issuer, member.email, identity.hostedDomain));
  if (!mapped) {
    // The provider says this person no longer has access: their sessions here end now, not at their expiry.
    const sessionsEnded = await invalidateSessionsOf(tx, member.id);
    return { ok: false, reason: 'no role mapped (groups or email domain)', member, sessionsEnded };
  }
  if (mapped.role !== member.role && member.role === 'owner' && member.status === 'active' && (await activeOwnerCount(tx, member.id)) === 0)
    return { ok: false, reason: `no role change: the only active owner would become ${mapped.role}`, member };
  const write = (action: Parameters<typeof writeAudit>[1]['action'], summary: Record<string, unknown>) =>
    writeAudit(tx, { ...audited(ctx, member ?? null), action, target, summary }, ctx.now);
  if (created) await write('staff.created_by_sso', { email: member.email, role: mapped.role, by: mapped.by });
  if (mapped.role !== member.role) {
    await updateStaffRow(tx, member.id, { role: mapped.role }, ctx.now);
    const ended = await invalidateSessionsOf(tx, member.id);
    await write('staff.role_changed', {
      before: { role: member.role },
      after: { role: mapped.role },
      via: 'sso mapping',
      sessionsEnded: ended,
    });
  }
  if (!member.ssoSubject) {
    await updateStaffRow(tx, member.id, { ssoIssuer: identity.issuer, ssoSubject: identity.subject }, ctx.now);
    await write('auth.sso.linked', { email: member.email });
  }
  if (member.status === 'invited') await updateStaffRow(tx, member.id, { status: 'active' }, ctx.now);
  const { token } = await createSession(tx, member.id, ctx.client, ctx.policy, ctx.now, 'sso');
  const signedIn = { ...member, role: mapped.role, status: 'active' as const };
  await writeAudit(
    tx,
    { ...audited(ctx, signedIn), action: 'auth.sso.signed_in', target, summary: { role: mapped.role, by: mapped.by } },
    ctx.now,
  );
  return { ok: true, token, member: signedIn };
}
