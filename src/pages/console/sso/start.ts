/**
 * GET /console/sso/start: begins a staff sign-in at the OpenID provider (src/core/auth/sso.ts). The
 * flow's state, nonce and PKCE verifier go into a sealed, short-lived cookie; the browser goes to
 * the provider. Public (permissions.ts): it is how someone without a session gets one.
 */
import type { APIRoute } from 'astro';
import { startSso } from '../../../core/auth/sso.ts';
import { authContext, setSsoFlowCookie } from '../../../lib/console-auth.ts';
import { errorPage } from '../../../lib/error-page.ts';
import { safeConsolePath } from '../../../lib/safe-redirect.ts';

export const prerender = false;

export const GET: APIRoute = async (ctx) => {
  const { sso } = ctx.locals.candor.config;
  if (!sso) return errorPage(ctx, { status: 404, title: 'Page not found', message: 'Single sign-on is not set up here.', console: true });
  const started = await startSso(authContext(ctx), sso, safeConsolePath(ctx.url.searchParams.get('next')));
  if (!started.ok) return errorPage(ctx, { status: 503, title: 'Single sign-on is unavailable', message: started.message, console: true });
  setSsoFlowCookie(ctx, started.cookie);
  return ctx.redirect(started.url.href, 303);
};
