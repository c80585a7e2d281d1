import { staffLabel } from '../core/auth/staff.ts';
import type { IncidentContext } from '../core/incidents/incidents.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
  request: Request;
}

/** The signed-in staff member's incident context, on the async `database` (src/core/incidents). */
export function incidentContext(ctx: RequestLike): IncidentContext {
  const { candor, auth } = ctx.locals;
  if (!auth) throw new Error('incident work needs a signed-in staff member');
  return {
    database: candor.database,
    now: candor.now(),
    site: candor.content.site,
    components: candor.content.components,
    publicUrl: candor.config.publicUrl,
    actor: { id: auth.staff.id, label: staffLabel(auth.staff) },
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}
