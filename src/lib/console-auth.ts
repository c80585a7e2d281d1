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

export function clearSessionCookie(ctx: RequestLike): void {
  const { name, secure } = sessionCookie(https(ctx.locals));
  ctx.cookies.delete(name, { httpOnly: true, secure, sameSite: 'lax', path: '/' });
}

export function principalOf(auth: App.Locals['auth']): Principal | null {
  if (!auth) return null;
  return { role: auth.staff.role, mfaVerified: auth.session.mfaVerifiedAt !== null, mfaEnrolled: auth.staff.totpEnrolledAt !== null };
}

export function decideFor(access: Access | undefined, auth: App.Locals['auth']) {
  return decide(access, principalOf(auth));
}

export function decideRequestFor(request: Parameters<typeof decideRequest>[0], auth: App.Locals['auth']) {
  return decideRequest(request, principalOf(auth));
}
