/**
 * Time in the incident loop: updates written now and published later, and
 * reminders to staff before and after the promised next update. Both are
 * durable jobs, so a restart neither loses nor doubles them.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  cancelPendingUpdate,
  claimScheduledUpdate,
  incidentStatusOf,
  insertScheduledUpdate,
  markScheduledPublished,
  pendingScheduledUpdatesOf,
  reminderTarget,
  scheduledUpdateById,
  staffEmailOf,
} from '../../stores/scheduled-updates.ts';
import { writeAudit } from '../audit/log.ts';
import type { Component, Site } from '../content/schema.ts';
import { cancelJob, type Job, type JobHandler, scheduleJob } from '../jobs/jobs.ts';
import type { Keys } from '../notify/recipients.ts';
import { notifyStaff } from '../notify/staff-recipients.ts';
import { noRecipientsProblem } from '../organisations/reach.ts';
import { type IncidentActor, type IncidentContext, incidentReach, postUpdateIn, type UpdateInput, updateProblem } from './incidents.ts';
import { scanForPersonalData } from './pii-guard.ts';
import { type ComponentStatus, componentStatuses, type IncidentStatus, incidentStatuses } from './types.ts';

export const REMINDER_LEAD_MS = 15 * 60_000;

/** What scheduling takes: the incident context, with its database handle. */
export type ScheduleContext = IncidentContext;

const auditActor = (ctx: IncidentActor) =>
  ctx.system ? ({ type: 'system' } as const) : ({ type: 'staff', id: ctx.actor.id, label: ctx.actor.label } as const);

export async function scheduleUpdate(
  ctx: ScheduleContext,
  incidentId: number,
  input: UpdateInput,
  runAt: Date,
): Promise<{ ok: true; id: number } | { ok: false; message: string; noRecipients?: true }> {
  const status = await ctx.database.read((r) => incidentStatusOf(r, incidentId));
  if (!status) return { ok: false, message: 'There is no such incident.' };
  if (status === 'resolved') return { ok: false, message: 'This incident is resolved: it takes no more updates.' };
  if (Number.isNaN(runAt.getTime()) || runAt.getTime() <= ctx.now.getTime() + 30_000)
    return { ok: false, message: 'Choose a time at least a minute from now (UTC).' };
  if (runAt.getTime() > ctx.now.getTime() + 30 * 86_400_000) return { ok: false, message: 'Schedule within the next 30 days.' };
  if (input.body.trim() === '') return { ok: false, message: 'Write what is happening: an update cannot be empty.' };
  // The promise is checked against the time it will be published, as publishing then will check it.
  const problem = await updateProblem({ ...ctx, now: runAt }, incidentId, input);
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
  const empty = notify
    ? noRecipientsProblem(await incidentReach(ctx.database, ctx.components, incidentId, Object.keys(input.components)))
    : null;
  if (empty && !input.confirmNoRecipients) return { ok: false, message: empty, noRecipients: true };
  const id = await ctx.database.transaction(async (tx) => {
    const scheduledId = await insertScheduledUpdate(tx, {
      incidentId,
      status: input.status,
      body: input.body,
      components: input.components,
      runAt,
      createdBy: ctx.actor.id,
      createdAt: ctx.now,
      notify,
      nextUpdateBy: input.nextUpdateBy ?? null,
    });
    // In the same transaction: no scheduled update without its job.
    await scheduleJob(
      tx,
      `scheduled-update:${scheduledId}`,
      'incident.scheduled_update',
      runAt,
      { scheduledUpdateId: scheduledId },
      ctx.now,
    );
    await writeAudit(
      tx,
      {
        actor: auditActor(ctx),
        ip: ctx.ip,
        userAgent: ctx.userAgent,
        action: 'incidents.update_scheduled',
        target: `incident:${incidentId}`,
        summary: {
          scheduled: scheduledId,
          runAt: runAt.toISOString(),
          status: input.status,
          notify,
          ...(input.nextUpdateBy ? { nextUpdateBy: input.nextUpdateBy.toISOString() } : {}),
          ...(empty ? { confirmedNoRecipients: true } : {}),
        },
      },
      ctx.now,
    );
    return scheduledId;
  });
  return { ok: true, id };
}

export async function cancelScheduledUpdate(
  ctx: ScheduleContext,
  scheduledId: number,
): Promise<{ ok: true } | { ok: false; message: string }> {
  // A conditional UPDATE: a publish that claimed the update first wins, and this one then reports it.
  const outcome = await ctx.database.transaction(async (tx) => {
    const row = await scheduledUpdateById(tx, scheduledId);
    if (!row || row.cancelledAt !== null) return 'gone' as const;
    if (!(await cancelPendingUpdate(tx, scheduledId, ctx.now))) return 'published' as const;
    await cancelJob(tx, `scheduled-update:${scheduledId}`, ctx.now);
    await writeAudit(
      tx,
      {
        actor: auditActor(ctx),
        ip: ctx.ip,
        userAgent: ctx.userAgent,
        action: 'incidents.update_cancelled',
        target: `incident:${row.incidentId}`,
        summary: { scheduled: scheduledId },
      },
      ctx.now,
    );
    return 'cancelled' as const;
  });
  if (outcome === 'gone') return { ok: false, message: 'That scheduled update no longer exists.' };
  if (outcome === 'published') return { ok: false, message: 'That update was already published.' };
  return { ok: true };
}

export interface ScheduledUpdateView {
  id: number;
  status: IncidentStatus;
  body: string;
  runAt: Date;
}

const isIncidentStatus = (value: string): value is IncidentStatus => (incidentStatuses as readonly string[]).includes(value);
const isComponentStatus = (value: string): value is ComponentStatus => (componentStatuses as readonly string[]).includes(value);

function incidentStatus(value: string): IncidentStatus {
  if (!isIncidentStatus(value)) throw new Error(`a scheduled update holds an unknown status: ${value}`);
  return value;
}

function componentStates(value: Record<string, string>): Record<string, ComponentStatus> {
  const result: Record<string, ComponentStatus> = {};
  for (const [id, status] of Object.entries(value)) {
    if (!isComponentStatus(status)) throw new Error(`a scheduled update holds an unknown service state: ${status}`);
    result[id] = status;
  }
  return result;
}

export async function pendingScheduledUpdates(database: Database, incidentId: number): Promise<ScheduledUpdateView[]> {
  const rows = await database.read((r) => pendingScheduledUpdatesOf(r, incidentId));
  return rows.map((r) => ({ id: r.id, status: incidentStatus(r.status), body: r.body, runAt: r.runAt }));
}

/** After each publish, in its transaction: remind staff 15 minutes before the promised update and again when it is overdue. */
export async function planReminders(tx: Tx, incidentId: number, nextUpdateBy: Date | null, now: Date): Promise<void> {
  if (nextUpdateBy === null) {
    await cancelJob(tx, `reminder:${incidentId}:soon`, now);
    await cancelJob(tx, `reminder:${incidentId}:overdue`, now);
    return;
  }
  const payload = { incidentId, due: nextUpdateBy.getTime() };
  await scheduleJob(
    tx,
    `reminder:${incidentId}:soon`,
    'incident.reminder',
    new Date(nextUpdateBy.getTime() - REMINDER_LEAD_MS),
    { ...payload, when: 'soon' },
    now,
  );
  await scheduleJob(tx, `reminder:${incidentId}:overdue`, 'incident.reminder', nextUpdateBy, { ...payload, when: 'overdue' }, now);
}

export interface JobDeps {
  database: Database;
  keys: Keys;
  site: Site;
  components: readonly Component[];
  publicUrl: URL;
  /** SLACK_STAFF_CHANNEL with the bot token, when both are set */
  staffSlack: { channel: string; token: string } | null;
}

function reminder(deps: JobDeps): JobHandler {
  return async (job: Job, now: Date) => {
    const incidentId = Number(job.payload.incidentId);
    // One transaction: the promise read and the reminder enqueued (src/core/notify/outbox.ts) agree.
    await deps.database.transaction(async (tx) => {
      const row = await reminderTarget(tx, incidentId);
      // An update published since this reminder was planned moved the promise: this one is stale.
      if (!row || row.status === 'resolved' || row.nextUpdateBy?.getTime() !== Number(job.payload.due)) return;
      const due = row.nextUpdateBy;
      const when = `${due.toISOString().slice(11, 16)} UTC`;
      const overdue = job.payload.when === 'overdue';
      const subject = overdue
        ? `Overdue: the next update on "${row.title}" was promised by ${when}`
        : `Due in 15 minutes: the next update on "${row.title}" (by ${when})`;
      const link = new URL(`console/incidents/${incidentId}`, deps.publicUrl).href;
      const text = `${subject}. Customers were told to expect it. Post it here: ${link}`;
      await notifyStaff(tx, deps, { kind: 'staff-reminder', subject, text }, now);
    });
  };
}

/**
 * Publishes a due scheduled update once: claimed, published and marked in one transaction
 * (src/stores/scheduled-updates.ts), so two nodes, or a job run again after its lease ran out,
 * never publish it twice; the job itself is completed by the runner afterwards, and a run that
 * finds it no longer pending does nothing.
 */
function publishScheduled(deps: JobDeps): JobHandler {
  return async (job: Job, now: Date) => {
    const scheduledId = Number(job.payload.scheduledUpdateId);
    await deps.database.transaction(async (tx) => {
      const row = await claimScheduledUpdate(tx, scheduledId);
      if (!row) return;
      const author = await staffEmailOf(tx, row.createdBy);
      const ctx: IncidentContext = {
        database: deps.database,
        now,
        site: deps.site,
        components: deps.components,
        publicUrl: deps.publicUrl,
        actor: { id: row.createdBy, label: author ?? `staff #${row.createdBy}` },
        ip: null,
        userAgent: 'candor scheduler',
      };
      // Published in this transaction: the claim, the update (with its notice) and the mark commit together.
      const result = await postUpdateIn(ctx, tx, row.incidentId, {
        status: incidentStatus(row.status),
        body: row.body,
        components: componentStates(row.components),
        confirmPersonalData: true,
        // whether it reaches anyone was settled with the person who scheduled it
        confirmNoRecipients: true,
        notify: row.notify,
        nextUpdateBy: row.nextUpdateBy,
      });
      if (!result.ok) await cancelPendingUpdate(tx, scheduledId, now);
      else await markScheduledPublished(tx, scheduledId, result.updateId);
    });
  };
}

export function incidentJobHandlers(deps: JobDeps): Record<string, JobHandler> {
  return { 'incident.reminder': reminder(deps), 'incident.scheduled_update': publishScheduled(deps) };
}
