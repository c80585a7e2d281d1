import { staffLabel } from '../core/auth/staff.ts';
import { followableIds } from '../core/content/groups.ts';
import type { StaffAudit, SubscriptionContext } from '../core/subscriptions/context.ts';
import type { ImportContext } from '../core/subscriptions/import.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
}

export function subscriptionContext(ctx: RequestLike): SubscriptionContext {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    keys: candor.keys,
    now: candor.now(),
    publicUrl: candor.config.publicUrl,
    organisation: candor.content.site.organisation.name,
    componentIds: followableIds(candor.content.components),
    webhookPolicy: { allowHosts: candor.config.providers.webhookAllowHosts },
    ip: clientIp(ctx),
    log: (line) => console.warn(`[candor] ${line}`),
  };
}

/**
 * Who the signed-in staff member's reads and changes of the subscriber directory are audited as (as
 * src/lib/staff-audit.ts's `auditStaffAction` records them), for the audit entry the directory
 * writes in its own transaction.
 */
export function staffAudit(ctx: RequestLike & { request: Request }): StaffAudit {
  const auth = ctx.locals.auth;
  if (!auth) throw new Error('a staff action without a signed-in staff member');
  return {
    actor: { type: 'staff', id: auth.staff.id, label: staffLabel(auth.staff) },
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}

/** What the subscriber import needs from the running app, for the signed-in staff member. */
export function importContext(ctx: RequestLike & { request: Request }): ImportContext {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    keys: candor.keys,
    now: () => candor.now(),
    publicUrl: candor.config.publicUrl,
    organisation: candor.content.site.organisation.name,
    components: candor.content.components.map((c) => ({ id: c.id, name: c.name })),
    audit: staffAudit(ctx),
    staffId: ctx.locals.auth?.staff.id ?? null,
  };
}
