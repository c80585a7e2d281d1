/**
 * Time in the incident loop: updates written now and published later, and
 * reminders to staff before and after the promised next update. Both are
 * durable jobs, so a restart neither loses nor doubles them.
 */
import type { Db } from '../../../db/client.ts';
import type { Component, Site } from '../content/schema.ts';
import { cancelJob, completeJob, type Job, type JobHandler, scheduleJob } from '../jobs/jobs.ts';
import { notifyStaff } from '../notify/legacy.ts';
import type { Keys } from '../notify/recipients.ts';
import { noRecipientsProblem } from '../organisations/reach.ts';
import {
  auditIncidentLegacy,
  type LegacyIncidentContext as IncidentContext,
  incidentReachLegacy,
  postUpdateLegacy,
  type UpdateInput,
  updateProblemLegacy,
} from './legacy.ts';
import { scanForPersonalData } from './pii-guard.ts';
import type { ComponentStatus, IncidentStatus } from './types.ts';

export const REMINDER_LEAD_MS = 15 * 60_000;

export function scheduleUpdate(
  ctx: IncidentContext,
  incidentId: number,
  input: UpdateInput,
  runAt: Date,
): { ok: true; id: number } | { ok: false; message: string; noRecipients?: true } {
  const incident = ctx.db.$client.prepare('SELECT status FROM incidents WHERE id = ?').get(incidentId) as
    | { status: IncidentStatus }
    | undefined;
  if (!incident) return { ok: false, message: 'There is no such incident.' };
  if (incident.status === 'resolved') return { ok: false, message: 'This incident is resolved: it takes no more updates.' };
  if (Number.isNaN(runAt.getTime()) || runAt.getTime() <= ctx.now.getTime() + 30_000)
    return { ok: false, message: 'Choose a time at least a minute from now (UTC).' };
  if (runAt.getTime() > ctx.now.getTime() + 30 * 86_400_000) return { ok: false, message: 'Schedule within the next 30 days.' };
  if (input.body.trim() === '') return { ok: false, message: 'Write what is happening: an update cannot be empty.' };
  // The promise is checked against the time it will be published, as publishing then will check it.
  const problem = updateProblemLegacy({ ...ctx, now: runAt }, incidentId, input);
  if (problem) return { ok: false, message: problem };
  // The guard runs now, while a person can still answer it.
  if (scanForPersonalData(input.body).length > 0 && !input.confirmPersonalData) {
    return {
      ok: false,
      message: 'The update looks like it contains personal data or a secret. Redact it, or confirm that it must be published.',
    };
  }
  // So is whether it reaches anyone: the scheduler publishes it without asking.
  const notify = input.notify !== false;
  const empty = notify ? noRecipientsProblem(incidentReachLegacy(ctx.db, incidentId, Object.keys(input.components))) : null;
  if (empty && !input.confirmNoRecipients) return { ok: false, message: empty, noRecipients: true };
  const sqlite = ctx.db.$client;
  const id = sqlite
    .transaction(() => {
      const { id: scheduledId } = sqlite
        .prepare(
          'INSERT INTO scheduled_updates (incident_id, status, body, components, run_at, created_by, created_at, notify, next_update_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id',
        )
        .get(
          incidentId,
          input.status,
          input.body,
          JSON.stringify(input.components),
          runAt.getTime(),
          ctx.actor.id,
          ctx.now.getTime(),
          notify ? 1 : 0,
          input.nextUpdateBy?.getTime() ?? null,
        ) as {
        id: number;
      };
      scheduleJob(
        ctx.db,
        `scheduled-update:${scheduledId}`,
        'incident.scheduled_update',
        runAt,
        { scheduledUpdateId: scheduledId },
        ctx.now,
      );
      auditIncidentLegacy(ctx, 'incidents.update_scheduled', `incident:${incidentId}`, {
        scheduled: scheduledId,
        runAt: runAt.toISOString(),
        status: input.status,
        notify,
        ...(input.nextUpdateBy ? { nextUpdateBy: input.nextUpdateBy.toISOString() } : {}),
        ...(empty ? { confirmedNoRecipients: true } : {}),
      });
      return scheduledId;
    })
    .immediate();
  return { ok: true, id };
}

export function cancelScheduledUpdate(ctx: IncidentContext, scheduledId: number): { ok: true } | { ok: false; message: string } {
  const sqlite = ctx.db.$client;
  const row = sqlite
    .prepare('SELECT incident_id, cancelled_at, published_update_id FROM scheduled_updates WHERE id = ?')
    .get(scheduledId) as { incident_id: number; cancelled_at: number | null; published_update_id: number | null } | undefined;
  if (!row || row.cancelled_at !== null) return { ok: false, message: 'That scheduled update no longer exists.' };
  if (row.published_update_id !== null) return { ok: false, message: 'That update was already published.' };
  sqlite
    .transaction(() => {
      sqlite.prepare('UPDATE scheduled_updates SET cancelled_at = ? WHERE id = ?').run(ctx.now.getTime(), scheduledId);
      cancelJob(ctx.db, `scheduled-update:${scheduledId}`, ctx.now);
      auditIncidentLegacy(ctx, 'incidents.update_cancelled', `incident:${row.incident_id}`, { scheduled: scheduledId });
    })
    .immediate();
  return { ok: true };
}

export interface ScheduledUpdateView {
  id: number;
  status: IncidentStatus;
  body: string;
  runAt: Date;
}

export function pendingScheduledUpdates(db: Db, incidentId: number): ScheduledUpdateView[] {
  const rows = db.$client
    .prepare(
      'SELECT id, status, body, run_at FROM scheduled_updates WHERE incident_id = ? AND cancelled_at IS NULL AND published_update_id IS NULL ORDER BY run_at',
    )
    .all(incidentId) as { id: number; status: IncidentStatus; body: string; run_at: number }[];
  return rows.map((r) => ({ id: r.id, status: r.status, body: r.body, runAt: new Date(r.run_at) }));
}

/** After each publish: remind staff 15 minutes before the promised update and again when it is overdue. */
export function planReminders(db: Db, incidentId: number, nextUpdateBy: Date | null, now: Date): void {
  if (nextUpdateBy === null) {
    cancelJob(db, `reminder:${incidentId}:soon`, now);
    cancelJob(db, `reminder:${incidentId}:overdue`, now);
    return;
  }
  const payload = { incidentId, due: nextUpdateBy.getTime() };
  scheduleJob(
    db,
    `reminder:${incidentId}:soon`,
    'incident.reminder',
    new Date(nextUpdateBy.getTime() - REMINDER_LEAD_MS),
    { ...payload, when: 'soon' },
    now,
  );
  scheduleJob(db, `reminder:${incidentId}:overdue`, 'incident.reminder', nextUpdateBy, { ...payload, when: 'overdue' }, now);
}

export interface JobDeps {
  db: Db;
  keys: Keys;
  site: Site;
  components: readonly Component[];
  publicUrl: URL;
  /** SLACK_STAFF_CHANNEL with the bot token, when both are set */
  staffSlack: { channel: string; token: string } | null;
}

function reminder(deps: JobDeps): JobHandler {
  return (job: Job, now: Date) => {
    const incidentId = Number(job.payload.incidentId);
    const row = deps.db.$client.prepare('SELECT title, status, next_update_by FROM incidents WHERE id = ?').get(incidentId) as
      | { title: string; status: IncidentStatus; next_update_by: number | null }
      | undefined;
    // An update published since this reminder was planned moved the promise: this one is stale.
    if (!row || row.status === 'resolved' || row.next_update_by !== Number(job.payload.due)) return;
    const due = new Date(row.next_update_by);
    const when = `${due.toISOString().slice(11, 16)} UTC`;
    const overdue = job.payload.when === 'overdue';
    const subject = overdue
      ? `Overdue: the next update on "${row.title}" was promised by ${when}`
      : `Due in 15 minutes: the next update on "${row.title}" (by ${when})`;
    const link = new URL(`console/incidents/${incidentId}`, deps.publicUrl).href;
    const text = `${subject}. Customers were told to expect it. Post it here: ${link}`;
    notifyStaff(deps, { kind: 'staff-reminder', subject, text }, now);
  };
}

function publishScheduled(deps: JobDeps): JobHandler {
  return (job: Job, now: Date) => {
    const sqlite = deps.db.$client;
    const scheduledId = Number(job.payload.scheduledUpdateId);
    // One transaction: the publish, the record that it happened, and the job's completion.
    sqlite
      .transaction(() => {
        const row = sqlite.prepare('SELECT * FROM scheduled_updates WHERE id = ?').get(scheduledId) as
          | {
              incident_id: number;
              status: IncidentStatus;
              body: string;
              components: string;
              created_by: number;
              cancelled_at: number | null;
              published_update_id: number | null;
              notify: number;
              next_update_by: number | null;
            }
          | undefined;
        if (!row || row.cancelled_at !== null || row.published_update_id !== null) return completeJob(deps.db, job.id, now);
        const author = sqlite.prepare('SELECT email FROM staff WHERE id = ?').get(row.created_by) as { email: string } | undefined;
        const ctx: IncidentContext = {
          db: deps.db,
          now,
          site: deps.site,
          components: deps.components,
          publicUrl: deps.publicUrl,
          actor: { id: row.created_by, label: author?.email ?? `staff #${row.created_by}` },
          ip: null,
          userAgent: 'candor scheduler',
        };
        const result = postUpdateLegacy(ctx, row.incident_id, {
          status: row.status,
          body: row.body,
          components: JSON.parse(row.components) as Record<string, ComponentStatus>,
          confirmPersonalData: true,
          // whether it reaches anyone was settled with the person who scheduled it
          confirmNoRecipients: true,
          notify: row.notify === 1,
          nextUpdateBy: row.next_update_by === null ? null : new Date(row.next_update_by),
        });
        if (!result.ok) {
          sqlite.prepare('UPDATE scheduled_updates SET cancelled_at = ? WHERE id = ?').run(now.getTime(), scheduledId);
          return completeJob(deps.db, job.id, now);
        }
        sqlite.prepare('UPDATE scheduled_updates SET published_update_id = ? WHERE id = ?').run(result.updateId, scheduledId);
        completeJob(deps.db, job.id, now);
      })
      .immediate();
  };
}

export function incidentJobHandlers(deps: JobDeps): Record<string, JobHandler> {
  return { 'incident.reminder': reminder(deps), 'incident.scheduled_update': publishScheduled(deps) };
}
