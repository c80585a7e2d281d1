/** What the access-request flows (src/core/access/requests.ts) need from a request to the running app. */
import type { AccessContext, StaffActor } from '../core/access/requests.ts';
import { staffLabel } from '../core/auth/staff.ts';
import { staffSlackOf } from '../core/notify/staff-recipients.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
  request: Request;
}

export function accessContext(ctx: RequestLike): AccessContext {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    keys: candor.keys,
    now: candor.now(),
    publicUrl: candor.config.publicUrl,
    organisation: candor.content.site.organisation.name,
    gated: gatedDocuments(ctx.locals),
    staff: { keys: candor.keys, staffSlack: staffSlackOf(candor.config.providers.slack) },
    ip: clientIp(ctx),
    userAgent: ctx.request.headers.get('user-agent'),
  };
}

/** The gated documents (content/documents with `access: nda`), slug and title. */
export function gatedDocuments(locals: App.Locals): { slug: string; title: string }[] {
  return locals.candor.content.documents.filter((d) => d.access === 'nda').map((d) => ({ slug: d.slug, title: d.title }));
}

/** The signed-in staff member as the access flows audit them. */
export function staffActor(locals: App.Locals): StaffActor {
  const auth = locals.auth;
  if (!auth) throw new Error('a staff action without a signed-in staff member');
  return { id: auth.staff.id, label: staffLabel(auth.staff) };
}
