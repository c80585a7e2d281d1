/**
 * Runs for every on-demand page, endpoint and action:
 * 1. the request context (`npm start` passes it from src/server.ts; under
 *    `astro dev` it is built here once, the same way);
 * 2. request bodies refused before they are read (too large, chunked,
 *    malformed JSON) or before anything uses them (a NUL character), and
 *    cross-site refusal for state-changing requests;
 * 3. the console guard: the signed-in session, and the one authorisation
 *    decision (src/core/auth/permissions.ts): a console route's permission
 *    first, then the permission of the action the request carries, if any;
 * 4. the action, if any, so that an unexpected failure is logged, not shown;
 * 5. security headers on the response.
 */

import { ActionError, getActionContext } from 'astro:actions';
import { defineMiddleware, sequence } from 'astro:middleware';
import type { APIContext } from 'astro';
import { consoleActions, consoleRoutes } from './core/auth/permissions.ts';
import { validateSessionToken } from './core/auth/session.ts';
import { readConfig } from './core/config/env.ts';
import { carriesNul } from './core/http/nul.ts';
import { mergeCsp, securityHeaders } from './core/http/security-headers.ts';
import { staffApiRoutes } from './lib/api/operations.ts';
import { problem } from './lib/api-request.ts';
import { clearSessionCookie, decideRequestFor, readSessionToken } from './lib/console-auth.ts';
import { type AppContext, createAppContext } from './runtime/context.ts';
import { snapshotResponse, snapshotted } from './runtime/status-snapshots.ts';

let devContext: Promise<AppContext> | undefined;

const plain = (status: number, text: string) => new Response(text, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });

/**
 * Astro adds an image-transforming endpoint (/_image) to every server build. Candor renders no image
 * through it; it only offered anyone CPU and memory for resizing, and a 500 for an SVG.
 */
const unusedEndpoints = defineMiddleware((ctx, next) => (ctx.routePattern === '/_image' ? plain(404, 'Not found\n') : next()));

const context = defineMiddleware(async (ctx, next) => {
  if (!ctx.isPrerendered && !ctx.locals.candor) {
    devContext ??= createAppContext(readConfig(process.env, process.cwd()), process.cwd());
    ctx.locals.candor = await devContext;
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

/**
 * The staff API (/api/v1, src/lib/api/operations.ts) answers every refusal as an RFC 9457 problem, and
 * refuses a NUL in a field itself (422, naming the field): its bodies are JSON, checked by its schemas.
 */
const staffApiRefusal = (ctx: APIContext, status: number, text: string) =>
  staffApiRoutes.has(ctx.routePattern) && !getActionContext(ctx).action
    ? problem(ctx.locals.candor.config.publicUrl, {
        status,
        type: status === 413 ? 'payload-too-large' : 'malformed-request',
        title: status === 413 ? 'The request body is too large.' : 'The request is malformed.',
        detail: text,
      })
    : plain(status, text);

/**
 * The subscriber import's upload (issue 17): a file of up to this size, on that route only, sent as a
 * form (multipart/form-data) and not carrying an action. It is not read here: the page spools it to
 * a temporary file as it arrives (src/lib/multipart.ts). The adapter's own limit (astro.config.mjs
 * `bodySizeLimit`) is this.
 */
export const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;
const UPLOAD_ROUTES = new Set(['/console/subscribers/import']);

const bodySize = defineMiddleware(async (ctx, next) => {
  if (ctx.isPrerendered || SAFE_METHODS.has(ctx.request.method)) return next();
  const { headers } = ctx.request;
  // A chunked body declares no length: it would pass the check below and reach the adapter's own limit,
  // which fails with a 500. Browsers and providers always send Content-Length with a form or callback.
  if (headers.has('transfer-encoding') && !headers.has('content-length'))
    return staffApiRefusal(ctx, 411, 'Send the request body with a Content-Length.');
  const declared = Number(headers.get('content-length') ?? '0');
  if (
    UPLOAD_ROUTES.has(ctx.routePattern) &&
    /^multipart\/form-data\s*;/i.test(headers.get('content-type') ?? '') &&
    !getActionContext(ctx).action
  ) {
    if (declared > MAX_UPLOAD_BYTES) return plain(413, `The file is too large (at most ${MAX_UPLOAD_BYTES / 2 ** 20} MiB).`);
    return next();
  }
  if (declared > MAX_BODY_BYTES) return staffApiRefusal(ctx, 413, `The request body is too large (at most ${MAX_BODY_BYTES / 1024} KiB).`);
  // Read once, from a clone (at most MAX_BODY_BYTES, checked above): the checks below look at it.
  const body = ctx.request.body ? new Uint8Array(await ctx.request.clone().arrayBuffer()) : new Uint8Array(0);
  const type = headers.get('content-type') ?? '';
  // Astro parses a JSON action body before anything else and answers a malformed one with a 500; it is the client's error.
  // So for a page's form action (`?_action=`) as for /_actions: Astro reads JSON from either by its content type.
  const { action } = getActionContext(ctx);
  if (action && /\bjson\b/i.test(type)) {
    try {
      JSON.parse(new TextDecoder().decode(body));
    } catch {
      return plain(400, 'The request body is not valid JSON.');
    }
  }
  if (staffApiRoutes.has(ctx.routePattern) && !action) return next();
  if (carriesNul(body, type)) return plain(400, 'The request body contains a NUL character, which no field takes.');
  return next();
});

/**
 * Provider callbacks come from providers' servers, and RFC 8058 one-click
 * unsubscribes from mail providers; both carry their own proof (signature,
 * signed token) instead of an Origin; so does the staff API (a Bearer token; it reads no cookie, src/lib/api/endpoint.ts),
 * which answers its own refusals as problem details. The exemption goes by the route that
 * answers and never covers an action: it once went by path prefix, so
 * `/unsubscribe/x?_action=inviteStaff` from a same-site page ran the action
 * with the staff member's (SameSite=Lax) session cookie.
 */
const crossSiteAllowed = (ctx: APIContext) =>
  (ctx.routePattern.startsWith('/webhooks/') || ctx.routePattern === '/unsubscribe/[token]' || staffApiRoutes.has(ctx.routePattern)) &&
  !getActionContext(ctx).action;

/** Refuses cross-site state changes (forms, JSON, anything): by Sec-Fetch-Site, else by Origin. */
const crossSite = defineMiddleware((ctx, next) => {
  if (ctx.isPrerendered || SAFE_METHODS.has(ctx.request.method) || crossSiteAllowed(ctx)) return next();
  const fetchSite = ctx.request.headers.get('sec-fetch-site');
  const origin = ctx.request.headers.get('origin');
  const allowed = new Set([ctx.url.origin, ctx.locals.candor.config.publicUrl.origin]);
  if ((fetchSite && fetchSite !== 'same-origin' && fetchSite !== 'none') || (origin && !allowed.has(origin))) {
    return new Response('Cross-site requests are refused.', { status: 403, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }
  return next();
});

/**
 * The console guard. A request to a console route must pass that route's
 * permission before anything else happens, whatever action or method it
 * carries; an action (on any route, or at /_actions/<name>) must pass its own
 * permission too (src/core/auth/permissions.ts, decideRequest). It once
 * decided by the action alone, so `POST /console/incidents/7?_action=subscribe`
 * (a public action) rendered the console page for anyone when the action failed.
 */
const consoleGuard = defineMiddleware(async (ctx, next) => {
  if (ctx.isPrerendered) return next();
  const { action } = getActionContext(ctx);
  const isConsole = ctx.routePattern === '/console' || ctx.routePattern.startsWith('/console/');
  if (!isConsole && !action) return next();

  const token = readSessionToken(ctx);
  if (token) {
    const { candor } = ctx.locals;
    ctx.locals.auth = await validateSessionToken(candor.database, token, candor.content.site.policies.staffSessions, candor.now());
    if (!ctx.locals.auth) clearSessionCookie(ctx);
  }
  // Own properties only: a name like `toString` must not find Object.prototype.
  const decision = decideRequestFor(
    {
      route: isConsole ? lookup(consoleRoutes, ctx.routePattern) : null,
      action: action ? lookup(consoleActions, action.name) : null,
    },
    ctx.locals.auth,
  );
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
 * An action that throws anything but an ActionError (a database failure, a bug) reached Astro's catch-all,
 * which showed the exception's message to the client (on the page, or as /_actions JSON) and logged
 * nothing. Actions run here instead, after the console guard: the message goes to the log, the client
 * gets a generic one.
 */
const actionFailures = defineMiddleware(async (ctx, next) => {
  const { action, setActionResult, serializeActionResult } = getActionContext(ctx);
  if (!action) return next();
  let result = await action.handler();
  if (result.error?.code === 'INTERNAL_SERVER_ERROR') {
    console.error(`[candor] action ${action.name} failed: ${result.error.message}`);
    result = {
      data: undefined,
      error: new ActionError({
        code: 'INTERNAL_SERVER_ERROR',
        message: 'Something went wrong on our side and it was logged. Please try again.',
      }),
    };
  }
  const serialized = serializeActionResult(result);
  if (action.calledFrom === 'rpc') {
    return serialized.type === 'empty'
      ? new Response(null, { status: serialized.status })
      : new Response(serialized.body, { status: serialized.status, headers: { 'Content-Type': serialized.contentType } });
  }
  setActionResult(action.name, serialized);
  return next();
});

/**
 * Public pages that show incidents are rendered once per status version,
 * those that show the published subprocessor history once per changes
 * version, and kept with their final headers (src/runtime/status-snapshots.ts),
 * which src/server.ts then serves without Astro.
 */
const statusSnapshot = defineMiddleware(async (ctx, next) => {
  if (ctx.isPrerendered || ctx.request.method !== 'GET' || !snapshotted(ctx.url.pathname) || ctx.url.search !== '') return next();
  const { candor } = ctx.locals;
  const { snapshots } = candor;
  const key = ctx.url.pathname;
  let version: string;
  try {
    version = await snapshots.version(key);
  } catch (err) {
    // Not kept when the version cannot be read; the page itself says what is wrong, or renders.
    console.error(`[candor] status version of ${key}: ${err instanceof Error ? err.message : String(err)}`);
    return next();
  }
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

export const onRequest = sequence(unusedEndpoints, context, headers, bodySize, crossSite, consoleGuard, actionFailures, statusSnapshot);
