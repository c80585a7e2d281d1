import { staffLabel } from '../core/auth/staff.ts';
import type { OrganisationContext } from '../core/organisations/organisations.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
  request: Request;
}

/** The signed-in staff member keeping customer organisations, as the core's audited flows need them. */
export function organisationContext(ctx: RequestLike): OrganisationContext {
  const { candor, auth } = ctx.locals;
  if (!auth) throw new Error('organisation work needs a signed-in staff member');
  return {
    database: candor.database,
    keys: candor.keys,
    now: candor.now(),
    actor: { id: auth.staff.id, label: staffLabel(auth.staff) },
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}
