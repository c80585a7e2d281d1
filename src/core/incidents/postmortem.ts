/**
 * The postmortem of a resolved incident: markdown, guarded like an update,
 * published once and announced to the incident's audience in its thread.
 * One transaction of `ctx.database`: it takes the incident's row first
 * (`incidentForUpdate`, locked on PostgreSQL), so of concurrent publishers
 * one publishes and the others find the postmortem there; the announcement
 * is enqueued in it (the outbox).
 */
import type { Database } from '../../../db/engine/types.ts';
import { incidentForUpdate, insertPostmortem, postmortemRow } from '../../stores/incidents.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { audienceReach, noRecipientsProblem } from '../organisations/reach.ts';
import { auditIncident, type IncidentContext, incidentAudience, incidentUrl, readIncident } from './incidents.ts';
import { incidentMessages } from './messages.ts';
import { scanForPersonalData } from './pii-guard.ts';

export type PostmortemResult =
  | { ok: true; notificationId: number; deliveries: number }
  | { ok: false; message: string; noRecipients?: true };

export async function publishPostmortem(
  ctx: IncidentContext,
  incidentId: number,
  body: string,
  confirmPersonalData: boolean,
  /** the incident is addressed to organisations none of whose verified members follow it */
  confirmNoRecipients = false,
): Promise<PostmortemResult> {
  // Checked after the incident's own (below), in this order, as before.
  const bodyProblem =
    body.trim() === ''
      ? 'Write the postmortem: it cannot be empty.'
      : body.length > 50_000
        ? 'The postmortem is too long (50,000 characters at most).'
        : scanForPersonalData(body).length > 0 && !confirmPersonalData
          ? 'The postmortem looks like it contains personal data or a secret. Redact it, or confirm that it must be published.'
          : null;
  try {
    return await ctx.database.transaction(async (tx): Promise<PostmortemResult> => {
      // The incident's row, locked on PostgreSQL: a concurrent publisher waits, then finds this postmortem.
      if (!(await incidentForUpdate(tx, incidentId))) return { ok: false, message: 'There is no such incident.' };
      const record = await readIncident(tx, ctx.components, incidentId);
      if (!record) return { ok: false, message: 'There is no such incident.' };
      if (record.incident.status !== 'resolved') return { ok: false, message: 'Resolve the incident before publishing its postmortem.' };
      if (await postmortemRow(tx, incidentId)) return { ok: false, message: 'This incident already has a postmortem.' };
      if (bodyProblem) return { ok: false, message: bodyProblem };
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
        ctx.components,
      );
      const { notificationId, deliveries } = await enqueueNotification(
        tx,
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
        // Whom it would reach, in words, read in this transaction.
        throw new NoRecipients(
          noRecipientsProblem(await audienceReach(tx, audience, record.typedOrganisations)) ?? 'This targeted notice reaches no one.',
        );
      await insertPostmortem(tx, { incidentId, body, publishedAt: ctx.now, publishedBy: ctx.actor.id, notificationId });
      await auditIncident(ctx, tx, 'incidents.postmortem_published', `incident:${incidentId}`, {
        deliveries,
        ...(empty ? { confirmedNoRecipients: true } : {}),
      });
      return { ok: true, notificationId, deliveries };
    });
  } catch (err) {
    if (err instanceof NoRecipients) return { ok: false, message: err.message, noRecipients: true };
    throw err;
  }
}

/** A targeted postmortem found to reach no one inside its transaction, which it rolls back. */
class NoRecipients extends Error {}

export async function postmortemOf(database: Database, incidentId: number): Promise<{ body: string; publishedAt: Date } | null> {
  const row = await database.read((r) => postmortemRow(r, incidentId));
  return row ? { body: row.body, publishedAt: row.publishedAt } : null;
}
