/**
 * What the staff API's endpoints hand the core: the same contexts the console's actions build
 * (src/lib/incident-context.ts, notice-context.ts, subscription-context.ts), with the token's principal
 * as the actor, so audit entries name the staff member and the token ("a@x via API token "deploy" (cnd_abc…)").
 * And the core's views as the API shows them (dates as ISO 8601 strings).
 */
import type { NoticeContext } from '../../core/changes/notices.ts';
import type { IncidentContext, PublishResult } from '../../core/incidents/incidents.ts';
import { incidentUrl } from '../../core/incidents/incidents.ts';
import type { IncidentView, UpdateView } from '../../core/incidents/types.ts';
import type { StaffAudit } from '../../core/subscriptions/context.ts';
import { type Answer, type ApiCall, refused } from './endpoint.ts';
import type { ApiIncident } from './operations.ts';

export function apiIncidentContext(call: ApiCall): IncidentContext {
  const { candor } = call;
  return {
    database: candor.database,
    now: candor.now(),
    site: candor.content.site,
    components: candor.content.components,
    publicUrl: candor.config.publicUrl,
    actor: call.principal.actor,
    ip: call.ip,
    userAgent: call.userAgent,
  };
}

export function apiNoticeContext(call: ApiCall): NoticeContext {
  const { candor } = call;
  return {
    database: candor.database,
    now: candor.now(),
    site: candor.content.site,
    publicUrl: candor.config.publicUrl,
    actor: call.principal.actor,
    ip: call.ip,
    userAgent: call.userAgent,
  };
}

export function apiStaffAudit(call: ApiCall): StaffAudit {
  return { actor: { type: 'staff', ...call.principal.actor }, ip: call.ip, userAgent: call.userAgent };
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function apiIncident(view: IncidentView, publicUrl: URL): ApiIncident {
  return {
    id: view.id,
    kind: view.kind,
    severity: view.severity,
    title: view.title,
    status: view.status,
    components: view.components,
    startedAt: view.startedAt.toISOString(),
    resolvedAt: iso(view.resolvedAt),
    nextUpdateBy: iso(view.nextUpdateBy),
    window: view.window ? { startsAt: view.window.startsAt.toISOString(), endsAt: view.window.endsAt.toISOString() } : null,
    url: incidentUrl(publicUrl, view.id),
  };
}

export const apiUpdate = (u: UpdateView) => ({
  id: u.id,
  status: u.status,
  body: u.body,
  publishedAt: u.publishedAt.toISOString(),
  notified: u.notified ?? true,
  editedAt: iso(u.editedAt),
});

/** A keyset cursor `<a>.<b>` (two whole numbers), or null. */
export function readCursor(cursor: string | undefined): [number, number] | null {
  const m = cursor ? /^(\d{1,15})\.(\d{1,10})$/.exec(cursor) : null;
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The page size asked for: 1 to 100, default 25. */
export const pageLimit = (limit: string | undefined) => Math.min(100, Math.max(1, Number(limit ?? 25) || 25));

/** A publishing flow's outcome as the API answers it: the refusal names the field it is about (the guard's: `body`, with its findings). */
export function publishedAnswer(
  result: PublishResult,
  publicUrl: URL,
): Answer<{ incidentId: number; updateId: number; notificationId: number | null; deliveries: number; url: string }> {
  if (result.ok) {
    return {
      ok: true,
      body: {
        incidentId: result.incidentId,
        updateId: result.updateId,
        notificationId: result.notificationId,
        deliveries: result.deliveries,
        url: incidentUrl(publicUrl, result.incidentId),
      },
    };
  }
  if (result.findings?.length) {
    const found = result.findings.map((f) => `${f.label} (${f.preview})`).join(', ');
    return refused(`${result.message} Found: ${found}. Send "confirmPersonalData": true to publish it anyway.`, 'body', {
      findings: result.findings.map((f) => ({ label: f.label, preview: f.preview })),
    });
  }
  if (result.noRecipients)
    return refused(`${result.message} Send "confirmNoRecipients": true to publish it anyway.`, 'confirmNoRecipients');
  return refused(result.message);
}
