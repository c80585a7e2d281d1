/**
 * Runs for every on-demand page, endpoint and action:
 * 1. the request context (`npm start` passes it from src/server.ts; under
 *    `astro dev` it is built here once, the same way);
 * 2. cross-site refusal for state-changing requests;
 * 3. the console guard: the signed-in session, and the one authorisation
 *    decision (src/core/auth/permissions.ts) for the route or action;
 * 4. security headers on the response.
 */

import { getActionContext } from 'astro:actions';
import { defineMiddleware, sequence } from 'astro:middleware';
import { consoleActions, consoleRoutes } from './core/auth/permissions.ts';
import { validateSessionToken } from './core/auth/session.ts';
import { readConfig } from './core/config/env.ts';
import { mergeCsp, securityHeaders } from './core/http/security-headers.ts';
import { clearSessionCookie, decideFor, readSessionToken } from './lib/console-auth.ts';
import { type AppContext, createAppContext } from './runtime/context.ts';
import { STATUS_PAGES, snapshotResponse } from './runtime/status-snapshots.ts';

let devContext: AppContext | undefined;

const context = defineMiddleware(async (ctx, next) => {
  if (!ctx.isPrerendered && !ctx.locals.candor) {
    devContext ??= createAppContext(readConfig(process.env, process.cwd()), process.cwd());
    ctx.locals.candor = devContext;
  }
  ctx.locals.auth ??= null;
  return next();
});

function lookup<T>(table: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** No form or callback Candor takes comes near this; anything larger is refused before it is read. */
export const MAX_BODY_BYTES = 64 * 1024;

const bodySize = defineMiddleware((ctx, next) => {
  if (ctx.isPrerendered || SAFE_METHODS.has(ctx.request.method)) return next();
  const declared = Number(ctx.request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) {
    return new Response(`The request body is too large (at most ${MAX_BODY_BYTES / 1024} KiB).`, {
      status: 413,
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
  }
  return next();
});

/**
 * Provider callbacks come from providers' servers, and RFC 8058 one-click
 * unsubscribes from mail providers; both carry their own proof (signature,
 * signed token) instead of an Origin.
 */
const CROSS_SITE_ALLOWED = ['/webhooks/', '/unsubscribe/'];

/** Refuses cross-site state changes (forms, JSON, anything): by Sec-Fetch-Site, else by Origin. */
const crossSite = defineMiddleware((ctx, next) => {
  if (ctx.isPrerendered || SAFE_METHODS.has(ctx.request.method) || CROSS_SITE_ALLOWED.some((p) => ctx.url.pathname.startsWith(p)))
    return next();
  const fetchSite = ctx.request.headers.get('sec-fetch-site');
  const origin = ctx.request.headers.get('origin');
  const allowed = new Set([ctx.url.origin, ctx.locals.candor.config.publicUrl.origin]);
  if ((fetchSite && fetchSite !== 'same-origin' && fetchSite !== 'none') || (origin && !allowed.has(origin))) {
    return new Response('Cross-site requests are refused.', { status: 403, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }
  return next();
});

const consoleGuard = defineMiddleware((ctx, next) => {
  if (ctx.isPrerendered) return next();
  const { action } = getActionContext(ctx);
  const isConsole = ctx.routePattern === '/console' || ctx.routePattern.startsWith('/console/');
  if (!isConsole && !action) return next();

  const token = readSessionToken(ctx);
  if (token) {
    const { candor } = ctx.locals;
    ctx.locals.auth = validateSessionToken(candor.db, token, candor.content.site.policies.staffSessions, candor.now());
    if (!ctx.locals.auth) clearSessionCookie(ctx);
  }
  // Own properties only: a name like `toString` must not find Object.prototype.
  const access = action ? lookup(consoleActions, action.name) : lookup(consoleRoutes, ctx.routePattern);
  const decision = decideFor(access, ctx.locals.auth);
  if (decision === 'allow') return next();
  if (decision === 'deny' || action || !SAFE_METHODS.has(ctx.request.method)) {
    const status = decision === 'sign-in' ? 401 : 403;
    return ctx.rewrite(new Request(new URL(`/console/denied?status=${status}`, ctx.url), { headers: ctx.request.headers }));
  }
  const target = { 'sign-in': '/console/sign-in', mfa: '/console/mfa', enrol: '/console/mfa/enrol' }[decision];
  const back = decision === 'sign-in' ? `?next=${encodeURIComponent(ctx.url.pathname + ctx.url.search)}` : '';
  return ctx.redirect(`${target}${back}`, 303);
});

/**
 * Public pages that show incidents are rendered once per status version and
 * kept with their final headers (src/runtime/status-snapshots.ts), which
 * src/server.ts then serves without Astro.
 */
const statusSnapshot = defineMiddleware(async (ctx, next) => {
  if (ctx.isPrerendered || ctx.request.method !== 'GET' || !STATUS_PAGES.test(ctx.url.pathname) || ctx.url.search !== '') return next();
  const { candor } = ctx.locals;
  const { snapshots } = candor;
  const version = snapshots.version();
  const key = ctx.url.pathname;
  const acceptEncoding = ctx.request.headers.get('accept-encoding') ?? '';
  const ready = snapshots.current(key, version) ?? (await snapshots.rendering(key, version));
  if (ready) return snapshotResponse(ready, acceptEncoding);
  const flight = snapshots.begin(key, version);
  try {
    const response = await next();
    // A cookie is for one reader, a snapshot for all of them.
    if (
      (response.status !== 200 && response.status !== 404) ||
      response.headers.has('content-encoding') ||
      response.headers.has('set-cookie')
    ) {
      flight.abandon();
      return response;
    }
    const body = Buffer.from(await response.arrayBuffer());
    const headers = new Headers(response.headers);
    secure(headers, candor.config.publicUrl.protocol === 'https:', ctx.routePattern);
    return snapshotResponse(flight.keep({ status: response.status, headers, body }), acceptEncoding);
  } catch (err) {
    flight.abandon();
    throw err;
  }
});

/** The security headers, merged with what Astro set (its CSP carries the page's script and style hashes). */
function secure(headers: Headers, https: boolean, routePattern: string): void {
  for (const [name, value] of Object.entries(securityHeaders({ https }))) {
    const astroValue = headers.get(name);
    if (astroValue === null) headers.set(name, value);
    else if (name === 'Content-Security-Policy') headers.set(name, mergeCsp(astroValue, value));
  }
  if (routePattern.startsWith('/console')) headers.set('Cache-Control', 'no-store');
}

const headers = defineMiddleware(async (ctx, next) => {
  const response = await next();
  if (ctx.isPrerendered) return response;
  secure(response.headers, ctx.locals.candor.config.publicUrl.protocol === 'https:', ctx.routePattern);
  return response;
});

export const onRequest = sequence(context, headers, bodySize, crossSite, consoleGuard, statusSnapshot);
