import { legacyConnection } from '../../db/engine/sqlite.ts';
import { staffLabel } from '../core/auth/staff.ts';
import type { IncidentContext } from '../core/incidents/incidents.ts';
import type { LegacyIncidentContext } from '../core/incidents/legacy.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
  request: Request;
}

/**
 * The signed-in staff member's incident context: the async `database` for incidents.ts and the rest
 * of the package, and the connection (`db`) for what schedule.ts still does synchronously.
 */
export function incidentContext(ctx: RequestLike): IncidentContext & LegacyIncidentContext {
  const { candor, auth } = ctx.locals;
  if (!auth) throw new Error('incident work needs a signed-in staff member');
  return {
    database: candor.database,
    db: legacyConnection(candor.database),
    now: candor.now(),
    site: candor.content.site,
    components: candor.content.components,
    publicUrl: candor.config.publicUrl,
    actor: { id: auth.staff.id, label: staffLabel(auth.staff) },
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}
