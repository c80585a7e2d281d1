/**
 * Changing what was published: an update's text, an incident's title or
 * severity. Each change keeps the text before and after
 * (incident_revisions, append-only), is audited, and marks the public
 * pages "edited". Subscribers hear of it only when staff ask: then a
 * correction goes out in the incident's thread, to its audience.
 */
import { enqueueNotification } from '../notify/legacy.ts';
import { worstDeclared } from './history.ts';
import { audienceOrganisations, auditIncident, type IncidentContext, incidentAudience, incidentUrl, incidentView } from './incidents.ts';
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

function refusedWhenNoOne(run: () => EditResult): EditResult {
  try {
    return run();
  } catch (err) {
    if (err instanceof CorrectionReachesNoOne) return { ok: false, message: REACHES_NO_ONE };
    throw err;
  }
}

/** Replaces a published update's text; with `notify`, subscribers receive the correction. */
export function editUpdate(
  ctx: IncidentContext,
  incidentId: number,
  updateId: number,
  input: { body: string; notify: boolean; confirmPersonalData: boolean },
): EditResult {
  const body = input.body.trim();
  if (body === '') return { ok: false, message: 'An update cannot be empty: write the corrected text.' };
  if (body.length > MAX_BODY)
    return { ok: false, message: `The update is too long (${MAX_BODY.toLocaleString('en')} characters at most).` };
  const sqlite = ctx.db.$client;
  return refusedWhenNoOne(() =>
    sqlite
      .transaction((): EditResult => {
        const row = sqlite
          .prepare(
            `SELECT u.body, u.published_at, i.kind, i.audience_organisations, i.audience_organisation_ids
           FROM incident_updates u JOIN incidents i ON i.id = u.incident_id WHERE u.id = ? AND u.incident_id = ?`,
          )
          .get(updateId, incidentId) as
          | {
              body: string;
              published_at: number;
              kind: string;
              audience_organisations: string | null;
              audience_organisation_ids: string | null;
            }
          | undefined;
        if (!row) return { ok: false, message: 'There is no such update of this incident.' };
        if (row.body === body) return { ok: false, message: 'The text is unchanged: nothing to save.' };
        const findings = scanForPersonalData(body);
        if (findings.length > 0 && !input.confirmPersonalData)
          return {
            ok: false,
            message:
              'The corrected text looks like it contains personal data or a secret. Redact it, or confirm that it must be published.',
            findings,
          };
        sqlite
          .prepare(
            `INSERT INTO incident_revisions (incident_id, update_id, field, "before", "after", notified, at, "by") VALUES (?, ?, 'body', ?, ?, ?, ?, ?)`,
          )
          .run(incidentId, updateId, row.body, body, input.notify ? 1 : 0, ctx.now.getTime(), ctx.actor.id);
        sqlite.prepare('UPDATE incident_updates SET body = ? WHERE id = ?').run(body, updateId);
        const deliveries = input.notify ? sendCorrection(ctx, incidentId, updateId, new Date(row.published_at)) : 0;
        // Lengths, not the texts: the revision keeps them; the audit log must not hold what the guard looks for.
        auditIncident(ctx, 'incidents.update_edited', `incident:${incidentId}`, {
          updateId,
          before: { length: row.body.length },
          after: { length: body.length },
          notified: input.notify,
          deliveries,
          ...(findings.length ? { personalDataConfirmed: summariseFindings(findings) } : {}),
        });
        return { ok: true, deliveries };
      })
      .immediate(),
  );
}

/** Changes an incident's title or severity; with `notify`, subscribers receive the corrected incident. */
export function editIncident(
  ctx: IncidentContext,
  incidentId: number,
  input: { title: string; severity: string; notify: boolean },
): EditResult {
  const title = input.title.trim();
  if (title === '' || title.length > 200) return { ok: false, message: 'Give the incident a title of at most 200 characters.' };
  if (!(incidentSeverities as readonly string[]).includes(input.severity)) return { ok: false, message: 'Choose a severity.' };
  const severity = input.severity as IncidentSeverity;
  const sqlite = ctx.db.$client;
  return refusedWhenNoOne(() =>
    sqlite
      .transaction((): EditResult => {
        const row = sqlite.prepare('SELECT title, severity FROM incidents WHERE id = ?').get(incidentId) as
          | { title: string; severity: IncidentSeverity }
          | undefined;
        if (!row) return { ok: false, message: 'There is no such incident.' };
        const changed = [
          ...(row.title !== title ? [['title', row.title, title] as const] : []),
          ...(row.severity !== severity ? [['severity', row.severity, severity] as const] : []),
        ];
        if (changed.length === 0) return { ok: false, message: 'Nothing changed: the title and severity are as they were.' };
        const revise = sqlite.prepare(
          `INSERT INTO incident_revisions (incident_id, update_id, field, "before", "after", notified, at, "by") VALUES (?, NULL, ?, ?, ?, ?, ?, ?)`,
        );
        for (const [field, before, after] of changed)
          revise.run(incidentId, field, before, after, input.notify ? 1 : 0, ctx.now.getTime(), ctx.actor.id);
        sqlite.prepare('UPDATE incidents SET title = ?, severity = ? WHERE id = ?').run(title, severity, incidentId);
        const latest = sqlite
          .prepare('SELECT id, published_at FROM incident_updates WHERE incident_id = ? ORDER BY published_at DESC, id DESC LIMIT 1')
          .get(incidentId) as { id: number; published_at: number } | undefined;
        const deliveries = input.notify && latest ? sendCorrection(ctx, incidentId, latest.id, new Date(latest.published_at)) : 0;
        auditIncident(ctx, 'incidents.edited', `incident:${incidentId}`, {
          before: Object.fromEntries(changed.map(([field, before]) => [field, before])),
          after: Object.fromEntries(changed.map(([field, , after]) => [field, after])),
          notified: input.notify,
          deliveries,
        });
        return { ok: true, deliveries };
      })
      .immediate(),
  );
}

/**
 * The correction, in the incident's thread, to whom its notices go: the
 * corrected update as it now reads, introduced as a correction. Written in
 * the caller's transaction; the dispatcher sends it.
 */
function sendCorrection(ctx: IncidentContext, incidentId: number, updateId: number, publishedAt: Date): number {
  const view = incidentView(ctx.db, ctx.components, incidentId);
  if (!view) throw new Error(`incident ${incidentId} vanished`);
  const oldestFirst = [...view.updates].reverse();
  const position = oldestFirst.findIndex((u) => u.id === updateId);
  const update = oldestFirst[position];
  if (!update) throw new Error(`update ${updateId} vanished`);
  const row = ctx.db.$client
    .prepare('SELECT audience_organisations, audience_organisation_ids FROM incidents WHERE id = ?')
    .get(incidentId) as { audience_organisations: string | null; audience_organisation_ids: string | null };
  const url = incidentUrl(ctx.publicUrl, incidentId);
  const corrected = { ...update, body: `**Correction** to the update of ${utc(publishedAt)}:\n\n${update.body}` };
  const organisations = audienceOrganisations(row).ids;
  const { deliveries } = enqueueNotification(
    ctx.db,
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
        worstDeclared: worstDeclared(ctx.db, incidentId),
        ...(view.incident.window ? { calendarUrl: `${url}.ics` } : {}),
      }),
      audience: incidentAudience(
        view.incident.kind,
        view.incident.components.map((c) => c.id),
        organisations,
      ),
      createdBy: ctx.actor.id,
    },
    ctx.now,
  );
  if (organisations !== null && deliveries === 0) throw new CorrectionReachesNoOne();
  return deliveries;
}
