/** What the alert flows (src/core/alerts/drafts.ts) need from a request to the running app. */
import type { AlertCaller, AlertContext } from '../core/alerts/drafts.ts';
import type { ApiPrincipal } from '../core/api/tokens.ts';
import { staffLabel } from '../core/auth/staff.ts';
import { staffSlackOf } from '../core/notify/staff-recipients.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
  request: Request;
}

/** The app and who is asking: a console request, or a staff API call (src/lib/api/endpoint.ts `ApiCall`). */
interface Caller {
  candor: App.Locals['candor'];
  ip: string | null;
  userAgent: string | null;
}

export function alertContext({ candor, ip, userAgent }: Caller): AlertContext {
  return {
    database: candor.database,
    now: candor.now(),
    site: candor.content.site,
    components: candor.content.components,
    templates: candor.content.templates,
    publicUrl: candor.config.publicUrl,
    staff: { keys: candor.keys, staffSlack: staffSlackOf(candor.config.providers.slack) },
    ip,
    userAgent,
  };
}

/** The signed-in staff member acting on drafts in the console. */
export function actingAlertContext(ctx: RequestLike): AlertContext & { actor: { id: number; label: string } } {
  const auth = ctx.locals.auth;
  if (!auth) throw new Error('alert drafts need a signed-in staff member');
  const context = alertContext({ candor: ctx.locals.candor, ip: clientIp(ctx), userAgent: ctx.request.headers.get('user-agent') });
  return { ...context, actor: { id: auth.staff.id, label: staffLabel(auth.staff) } };
}

export const alertCaller = (principal: ApiPrincipal): AlertCaller => ({
  tokenId: principal.tokenId,
  prefix: principal.prefix,
  actor: principal.actor,
  mayDeclare: principal.scopes.has('incidents.manage'),
});
