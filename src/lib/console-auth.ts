/**
 * Glue between a request and the console's security core: the session and
 * recognised-device cookies, the client's address, and the context the
 * core's flows take.
 */
import type { AstroCookies } from 'astro';
import type { AuthContext } from '../core/auth/console-auth.ts';
import { DEVICE_TTL_MS, deviceCookie } from '../core/auth/devices.ts';
import { type Access, decide, decideRequest, type Principal } from '../core/auth/permissions.ts';
import { sessionCookie } from '../core/auth/session.ts';
import { SSO_FLOW_TTL_MS } from '../core/auth/sso.ts';
import { staffSlackOf } from '../core/notify/staff-recipients.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  cookies: AstroCookies;
  clientAddress: string;
  request: Request;
}

const https = (locals: App.Locals) => locals.candor.config.publicUrl.protocol === 'https:';

export function authContext(ctx: RequestLike): AuthContext {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    now: candor.now(),
    keys: candor.keys.keys,
    policy: candor.content.site.policies.staffSessions,
    client: { ip: clientIp(ctx), userAgent: ctx.request.headers.get('user-agent') },
    issuer: candor.content.site.organisation.name,
    secret: candor.secrets.secret,
    device: ctx.cookies.get(deviceCookie(https(ctx.locals)).name)?.value,
    sso: candor.config.sso,
    staffChannels: { keys: candor.keys, staffSlack: staffSlackOf(candor.config.providers.slack) },
  };
}

export function readSessionToken(ctx: RequestLike): string | undefined {
  return ctx.cookies.get(sessionCookie(https(ctx.locals)).name)?.value;
}

export function setSessionCookie(ctx: RequestLike, token: string): void {
  const { name, secure } = sessionCookie(https(ctx.locals));
  const { absoluteHours } = ctx.locals.candor.content.site.policies.staffSessions;
  ctx.cookies.set(name, token, { httpOnly: true, secure, sameSite: 'lax', path: '/', maxAge: absoluteHours * 3600 });
}

/** The recognised-device cookie (src/core/auth/devices.ts); nothing to set when the flow gave none. Sign-out leaves it. */
export function setDeviceCookie(ctx: RequestLike, token: string | null): void {
  if (!token) return;
  const { name, secure } = deviceCookie(https(ctx.locals));
  ctx.cookies.set(name, token, { httpOnly: true, secure, sameSite: 'lax', path: '/', maxAge: DEVICE_TTL_MS / 1000 });
}

/** The sealed single sign-on flow (src/core/auth/sso.ts) between the start and the provider's callback. */
const ssoFlowCookie = (ctx: RequestLike) => ({ name: https(ctx.locals) ? '__Host-candor_sso' : 'candor_sso', secure: https(ctx.locals) });

export function setSsoFlowCookie(ctx: RequestLike, sealed: string): void {
  const { name, secure } = ssoFlowCookie(ctx);
  // Lax: the provider sends the browser back with a top-level GET from its own site.
  ctx.cookies.set(name, sealed, { httpOnly: true, secure, sameSite: 'lax', path: '/', maxAge: SSO_FLOW_TTL_MS / 1000 });
}

export function readSsoFlowCookie(ctx: RequestLike): string | undefined {
  return ctx.cookies.get(ssoFlowCookie(ctx).name)?.value;
}

export function clearSsoFlowCookie(ctx: RequestLike): void {
  const { name, secure } = ssoFlowCookie(ctx);
  ctx.cookies.delete(name, { httpOnly: true, secure, sameSite: 'lax', path: '/' });
}

export function clearSessionCookie(ctx: RequestLike): void {
  const { name, secure } = sessionCookie(https(ctx.locals));
  ctx.cookies.delete(name, { httpOnly: true, secure, sameSite: 'lax', path: '/' });
}

export function principalOf(auth: App.Locals['auth']): Principal | null {
  if (!auth) return null;
  // A session opened by single sign-on had its second factor at the provider: it needs no TOTP enrolment here.
  const viaSso = auth.session.method === 'sso';
  return {
    role: auth.staff.role,
    mfaVerified: auth.session.mfaVerifiedAt !== null,
    mfaEnrolled: viaSso || auth.staff.totpEnrolledAt !== null,
  };
}

export function decideFor(access: Access | undefined, auth: App.Locals['auth']) {
  return decide(access, principalOf(auth));
}

export function decideRequestFor(request: Parameters<typeof decideRequest>[0], auth: App.Locals['auth']) {
  return decideRequest(request, principalOf(auth));
}
