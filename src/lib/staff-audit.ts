import type { AuditAction } from '../core/audit/actions.ts';
import { writeAudit } from '../core/audit/log.ts';
import { staffLabel } from '../core/auth/staff.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
  request: Request;
}

/** Records what the signed-in staff member just did, with their address and browser. */
export async function auditStaffAction(
  ctx: RequestLike,
  action: AuditAction,
  target: string,
  summary: Record<string, unknown> = {},
): Promise<void> {
  const auth = ctx.locals.auth;
  if (!auth) throw new Error('a staff action without a signed-in staff member');
  const { database, now } = ctx.locals.candor;
  const at = now();
  await database.transaction((tx) =>
    writeAudit(
      tx,
      {
        actor: { type: 'staff', id: auth.staff.id, label: staffLabel(auth.staff) },
        ip: clientIp(ctx),
        userAgent: ctx.request.headers.get('user-agent'),
        action,
        target,
        summary,
      },
      at,
    ),
  );
}
