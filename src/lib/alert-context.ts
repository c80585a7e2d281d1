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

export function alertContext(ctx: RequestLike): AlertContext {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    now: candor.now(),
    site: candor.content.site,
    components: candor.content.components,
    templates: candor.content.templates,
    publicUrl: candor.config.publicUrl,
    staff: { keys: candor.keys, staffSlack: staffSlackOf(candor.config.providers.slack) },
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}

/** The signed-in staff member acting on drafts in the console. */
export function actingAlertContext(ctx: RequestLike): AlertContext & { actor: { id: number; label: string } } {
  const auth = ctx.locals.auth;
  if (!auth) throw new Error('alert drafts need a signed-in staff member');
  return { ...alertContext(ctx), actor: { id: auth.staff.id, label: staffLabel(auth.staff) } };
}

export const alertCaller = (principal: ApiPrincipal): AlertCaller => ({
  tokenId: principal.tokenId,
  prefix: principal.prefix,
  actor: principal.actor,
});
