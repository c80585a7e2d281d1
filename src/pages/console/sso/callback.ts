/**
 * GET /console/sso/callback: where the OpenID provider sends the browser back (the redirect URI,
 * CANDOR_PUBLIC_URL + console/sso/callback). src/core/auth/sso.ts checks the flow cookie and the
 * state, exchanges the code, verifies the ID token and signs the staff member in with an ordinary
 * session cookie, or refuses (audited). Public (permissions.ts): it carries no session yet.
 */
import type { APIRoute } from 'astro';
import { completeSso } from '../../../core/auth/sso.ts';
import { authContext, clearSsoFlowCookie, readSsoFlowCookie, setSessionCookie } from '../../../lib/console-auth.ts';
import { errorPage, PERSONAL } from '../../../lib/error-page.ts';
import { safeConsolePath } from '../../../lib/safe-redirect.ts';

export const prerender = false;

export const GET: APIRoute = async (ctx) => {
  const { sso } = ctx.locals.candor.config;
  if (!sso) return errorPage(ctx, { status: 404, title: 'Page not found', message: 'Single sign-on is not set up here.', console: true });
  const flow = readSsoFlowCookie(ctx);
  // The flow is spent whatever happens: a second try starts again.
  clearSsoFlowCookie(ctx);
  const result = await completeSso(authContext(ctx), sso, ctx.url, flow);
  // PERSONAL: the code and state in this URL never leave in a Referer
  if (!result.ok) return errorPage(ctx, { status: 403, title: 'Sign-in refused', message: result.message, console: true }, PERSONAL);
  setSessionCookie(ctx, result.token);
  return ctx.redirect(safeConsolePath(result.next), 303);
};
