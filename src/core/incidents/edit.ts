/**
 * Changing what was published: an update's text, an incident's title or
 * severity. Each change keeps the text before and after
 * (incident_revisions, append-only), is audited, and marks the public
 * pages "edited". Subscribers hear of it only when staff ask: then a
 * correction goes out in the incident's thread, to its audience.
 *
 * Each edit is one transaction of `ctx.database` that first takes the
 * incident's row and, for an update's text, the update's row
 * (`incidentForUpdate`, `updateForEdit`: locked on PostgreSQL), so of two
 * concurrent edits the second compares against, and revises, what the first
 * saved. The correction is enqueued in the same transaction (the outbox).
 */
import type { Tx } from '../../../db/engine/types.ts';
import {
  incidentForUpdate,
  insertRevisions,
  setIncidentHeadline,
  setUpdateBody,
  updateForEdit,
  updatesOf,
} from '../../stores/incidents.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { worstDeclared } from './history.ts';
import { auditIncident, type IncidentContext, incidentAudience, incidentUrl, readIncident } from './incidents.ts';
import { incidentMessages } from './messages.ts';
import { type Finding, scanForPersonalData, summariseFindings } from './pii-guard.ts';
import { type IncidentSeverity, incidentSeverities } from './types.ts';

const MAX_BODY = 20_000;

export type EditResult = { ok: true; deliveries: number } | { ok: false; message: string; findings?: Finding[] };

const utc = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** A correction of a targeted incident that would reach no one: thrown inside the transaction, which it rolls back. */
class CorrectionReachesNoOne extends Error {}
const REACHES_NO_ONE =
  'This correction would reach no one: the organisations this incident is addressed to have no verified member following it. Save it without "Notify subscribers", or check their members first.';

async function refusedWhenNoOne(run: () => Promise<EditResult>): Promise<EditResult> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof CorrectionReachesNoOne) return { ok: false, message: REACHES_NO_ONE };
    throw err;
  }
}

/** Replaces a published update's text; with `notify`, subscribers receive the correction. */
export async function editUpdate(
  ctx: IncidentContext,
  incidentId: number,
  updateId: number,
  input: { body: string; notify: boolean; confirmPersonalData: boolean },
): Promise<EditResult> {
  const body = input.body.trim();
  if (body === '') return { ok: false, message: 'An update cannot be empty: write the corrected text.' };
  if (body.length > MAX_BODY)
    return { ok: false, message: `The update is too long (${MAX_BODY.toLocaleString('en')} characters at most).` };
  return refusedWhenNoOne(() =>
    ctx.database.transaction(async (tx): Promise<EditResult> => {
      // The incident, then the update: locked in that order (PostgreSQL), as every change of an incident takes them.
      const incident = await incidentForUpdate(tx, incidentId);
      const row = incident ? await updateForEdit(tx, incidentId, updateId) : undefined;
      if (!incident || !row) return { ok: false, message: 'There is no such update of this incident.' };
      if (row.body === body) return { ok: false, message: 'The text is unchanged: nothing to save.' };
      const findings = scanForPersonalData(body);
      if (findings.length > 0 && !input.confirmPersonalData)
        return {
          ok: false,
          message: 'The corrected text looks like it contains personal data or a secret. Redact it, or confirm that it must be published.',
          findings,
        };
      await insertRevisions(tx, [
        { incidentId, updateId, field: 'body', before: row.body, after: body, notified: input.notify, at: ctx.now, by: ctx.actor.id },
      ]);
      await setUpdateBody(tx, updateId, body);
      const deliveries = input.notify ? await sendCorrection(ctx, tx, incidentId, updateId, row.publishedAt) : 0;
      // Lengths, not the texts: the revision keeps them; the audit log must not hold what the guard looks for.
      await auditIncident(ctx, tx, 'incidents.update_edited', `incident:${incidentId}`, {
        updateId,
        before: { length: row.body.length },
        after: { length: body.length },
        notified: input.notify,
        deliveries,
        ...(findings.length ? { personalDataConfirmed: summariseFindings(findings) } : {}),
      });
      return { ok: true, deliveries };
    }),
  );
}

/** Changes an incident's title or severity; with `notify`, subscribers receive the corrected incident. */
export async function editIncident(
  ctx: IncidentContext,
  incidentId: number,
  input: { title: string; severity: string; notify: boolean },
): Promise<EditResult> {
  const title = input.title.trim();
  if (title === '' || title.length > 200) return { ok: false, message: 'Give the incident a title of at most 200 characters.' };
  if (!(incidentSeverities as readonly string[]).includes(input.severity)) return { ok: false, message: 'Choose a severity.' };
  const severity = input.severity as IncidentSeverity;
  return refusedWhenNoOne(() =>
    ctx.database.transaction(async (tx): Promise<EditResult> => {
      // Locked on PostgreSQL: a concurrent edit waits, and its "before" is what this one saved.
      const row = await incidentForUpdate(tx, incidentId);
      if (!row) return { ok: false, message: 'There is no such incident.' };
      const changed = [
        ...(row.title !== title ? [['title', row.title, title] as const] : []),
        ...(row.severity !== severity ? [['severity', row.severity, severity] as const] : []),
      ];
      if (changed.length === 0) return { ok: false, message: 'Nothing changed: the title and severity are as they were.' };
      await insertRevisions(
        tx,
        changed.map(([field, before, after]) => ({
          incidentId,
          updateId: null,
          field,
          before,
          after,
          notified: input.notify,
          at: ctx.now,
          by: ctx.actor.id,
        })),
      );
      await setIncidentHeadline(tx, incidentId, title, severity);
      const [latest] = await updatesOf(tx, incidentId, 1);
      const deliveries = input.notify && latest ? await sendCorrection(ctx, tx, incidentId, latest.id, latest.publishedAt) : 0;
      await auditIncident(ctx, tx, 'incidents.edited', `incident:${incidentId}`, {
        before: Object.fromEntries(changed.map(([field, before]) => [field, before])),
        after: Object.fromEntries(changed.map(([field, , after]) => [field, after])),
        notified: input.notify,
        deliveries,
      });
      return { ok: true, deliveries };
    }),
  );
}

/**
 * The correction, in the incident's thread, to whom its notices go: the
 * corrected update as it now reads, introduced as a correction. Enqueued in
 * the caller's transaction (the outbox); the dispatcher sends it.
 */
async function sendCorrection(ctx: IncidentContext, tx: Tx, incidentId: number, updateId: number, publishedAt: Date): Promise<number> {
  const view = await readIncident(tx, ctx.components, incidentId);
  if (!view) throw new Error(`incident ${incidentId} vanished`);
  const oldestFirst = [...view.updates].reverse();
  const position = oldestFirst.findIndex((u) => u.id === updateId);
  const update = oldestFirst[position];
  if (!update) throw new Error(`update ${updateId} vanished`);
  const url = incidentUrl(ctx.publicUrl, incidentId);
  const corrected = { ...update, body: `**Correction** to the update of ${utc(publishedAt)}:\n\n${update.body}` };
  const organisations = view.organisations;
  const { deliveries } = await enqueueNotification(
    tx,
    {
      kind: 'incident',
      title: `${view.incident.title}: correction`,
      threadKey: `incident:${incidentId}`,
      content: incidentMessages({
        organisation: ctx.site.organisation.name,
        incident: view.incident,
        update: corrected,
        incidentUrl: url,
        first: false,
        phase: position + 1,
        worstDeclared: await worstDeclared(tx, incidentId),
        ...(view.incident.window ? { calendarUrl: `${url}.ics` } : {}),
      }),
      audience: incidentAudience(
        view.incident.kind,
        view.incident.components.map((c) => c.id),
        organisations,
        ctx.components,
      ),
      createdBy: ctx.actor.id,
    },
    ctx.now,
  );
  if (organisations !== null && deliveries === 0) throw new CorrectionReachesNoOne();
  return deliveries;
}
