import { staffLabel } from '../core/auth/staff.ts';
import type { NoticeContext } from '../core/changes/notices.ts';
import type { ObjectionDeps, StaffChange } from '../core/changes/objections.ts';
import { staffSlackOf } from '../core/notify/staff-recipients.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
  request: Request;
}

function staffOf(ctx: RequestLike) {
  const { auth } = ctx.locals;
  if (!auth) throw new Error('announcement work needs a signed-in staff member');
  return { id: auth.staff.id, label: staffLabel(auth.staff) };
}

export function noticeContext(ctx: RequestLike): NoticeContext {
  const { candor } = ctx.locals;
  return {
    db: candor.db,
    now: candor.now(),
    site: candor.content.site,
    publicUrl: candor.config.publicUrl,
    actor: staffOf(ctx),
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}

export function objectionStaffContext(ctx: RequestLike): StaffChange {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    now: candor.now(),
    actor: staffOf(ctx),
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}

/** A customer filing an objection: no session; the signed link is the credential. */
export function objectionDeps(ctx: RequestLike): ObjectionDeps {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    keys: candor.keys,
    staffSlack: staffSlackOf(candor.config.providers.slack),
    site: candor.content.site,
    publicUrl: candor.config.publicUrl,
    secret: candor.keys.secret,
    now: candor.now(),
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}
