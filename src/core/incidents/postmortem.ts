/**
 * The postmortem of a resolved incident: markdown, guarded like an update,
 * published once and announced to the incident's audience in its thread.
 */
import type { Db } from '../../../db/client.ts';
import { enqueueNotification } from '../notify/legacy.ts';
import { audienceReach, noRecipientsProblem } from '../organisations/reach.ts';
import { auditIncident, type IncidentContext, incidentAudience, incidentUrl, incidentView } from './incidents.ts';
import { incidentMessages } from './messages.ts';
import { scanForPersonalData } from './pii-guard.ts';

export type PostmortemResult =
  | { ok: true; notificationId: number; deliveries: number }
  | { ok: false; message: string; noRecipients?: true };

export function publishPostmortem(
  ctx: IncidentContext,
  incidentId: number,
  body: string,
  confirmPersonalData: boolean,
  /** the incident is addressed to organisations none of whose verified members follow it */
  confirmNoRecipients = false,
): PostmortemResult {
  const record = incidentView(ctx.db, ctx.components, incidentId);
  if (!record) return { ok: false, message: 'There is no such incident.' };
  if (record.incident.status !== 'resolved') return { ok: false, message: 'Resolve the incident before publishing its postmortem.' };
  if (postmortemOf(ctx.db, incidentId)) return { ok: false, message: 'This incident already has a postmortem.' };
  if (body.trim() === '') return { ok: false, message: 'Write the postmortem: it cannot be empty.' };
  if (body.length > 50_000) return { ok: false, message: 'The postmortem is too long (50,000 characters at most).' };
  if (scanForPersonalData(body).length > 0 && !confirmPersonalData) {
    return {
      ok: false,
      message: 'The postmortem looks like it contains personal data or a secret. Redact it, or confirm that it must be published.',
    };
  }
  const sqlite = ctx.db.$client;
  try {
    return sqlite
      .transaction((): PostmortemResult => {
        const content = incidentMessages({
          organisation: ctx.site.organisation.name,
          incident: { ...record.incident, title: `Postmortem: ${record.incident.title}` },
          update: { id: 0, status: 'resolved', body, publishedAt: ctx.now },
          incidentUrl: incidentUrl(ctx.publicUrl, incidentId),
        });
        if (content.webhook) content.webhook = { ...content.webhook, type: 'incident.postmortem' };
        // The Slack thread's root keeps showing the incident itself, not the postmortem's title.
        const update = { id: 0, status: 'resolved' as const, body, publishedAt: ctx.now };
        const root = incidentMessages({
          organisation: ctx.site.organisation.name,
          incident: record.incident,
          update,
          incidentUrl: incidentUrl(ctx.publicUrl, incidentId),
        }).slack?.root;
        if (content.slack && root) content.slack = { ...content.slack, root };
        const audience = incidentAudience(
          record.incident.kind,
          record.incident.components.map((c) => c.id),
          record.organisations,
        );
        const { notificationId, deliveries } = enqueueNotification(
          ctx.db,
          {
            kind: 'postmortem',
            title: `Postmortem: ${record.incident.title}`,
            threadKey: `incident:${incidentId}`,
            content,
            audience,
            createdBy: ctx.actor.id,
          },
          ctx.now,
        );
        // A targeted postmortem that enqueued nobody: refused unless confirmed, rolling the notification back.
        const empty = record.organisations !== null && deliveries === 0;
        if (empty && !confirmNoRecipients)
          throw new NoRecipients(
            noRecipientsProblem(audienceReach(ctx.db, audience, record.typedOrganisations)) ?? 'This targeted notice reaches no one.',
          );
        sqlite
          .prepare('INSERT INTO postmortems (incident_id, body, published_at, published_by, notification_id) VALUES (?, ?, ?, ?, ?)')
          .run(incidentId, body, ctx.now.getTime(), ctx.actor.id, notificationId);
        auditIncident(ctx, 'incidents.postmortem_published', `incident:${incidentId}`, {
          deliveries,
          ...(empty ? { confirmedNoRecipients: true } : {}),
        });
        return { ok: true, notificationId, deliveries };
      })
      .immediate();
  } catch (err) {
    if (err instanceof NoRecipients) return { ok: false, message: err.message, noRecipients: true };
    throw err;
  }
}

/** A targeted postmortem found to reach no one inside its transaction, which it rolls back. */
class NoRecipients extends Error {}

export function postmortemOf(db: Db, incidentId: number): { body: string; publishedAt: Date } | null {
  const row = db.$client.prepare('SELECT body, published_at FROM postmortems WHERE incident_id = ?').get(incidentId) as
    | { body: string; published_at: number }
    | undefined;
  return row ? { body: row.body, publishedAt: new Date(row.published_at) } : null;
}
