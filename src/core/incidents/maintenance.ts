/**
 * Scheduled maintenance: announced when it is created, subscribers reminded
 * 24 hours and 1 hour before, started (services under maintenance) and
 * completed at the window's edges, each step notifying subscribers. Every
 * step is a durable job that checks the maintenance's state in the same
 * transaction as its effect, so a restart neither loses nor doubles one,
 * and a step that came due while nothing ran goes once, late, when it still
 * makes sense (a reminder after the start does not).
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import { jobsByKeyPrefix, lockMaintenance } from '../../stores/maintenance-windows.ts';
import type { TemplateSource } from '../content/load.ts';
import type { Component, Site } from '../content/schema.ts';
import { cancelJob, completeJob, type Job, type JobHandler, scheduleJob } from '../jobs/jobs.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { type IncidentContext, type IncidentRecord, incidentAudience, incidentUrl, postUpdateIn, readIncident } from './incidents.ts';
import { incidentMessages } from './messages.ts';
import { fillTemplate, requireTemplate, templateValues } from './templates.ts';
import type { MaintenanceWindow } from './types.ts';

const HOUR = 3_600_000;
const MAX_WINDOW_MS = 7 * 24 * HOUR;
const MAX_AHEAD_MS = 366 * 24 * HOUR;
export const REMINDERS = [
  { id: 'remind-24h', before: 24 * HOUR, label: '24 hours' },
  { id: 'remind-1h', before: HOUR, label: '1 hour' },
] as const;

/** Why this window cannot be announced, or null. */
export function windowProblem(window: MaintenanceWindow | null, now: Date): string | null {
  if (!window || Number.isNaN(window.startsAt.getTime()) || Number.isNaN(window.endsAt.getTime()))
    return 'Scheduled maintenance needs a window: when it starts and when it ends (UTC).';
  if (window.endsAt <= window.startsAt) return 'The maintenance window must end after it starts.';
  if (window.endsAt.getTime() - window.startsAt.getTime() > MAX_WINDOW_MS) return 'A maintenance window can last 7 days at most.';
  if (window.endsAt <= now) return 'That maintenance window is already over: choose a window that ends in the future.';
  if (window.startsAt.getTime() > now.getTime() + MAX_AHEAD_MS) return 'Schedule maintenance within the next year.';
  return null;
}

const jobKey = (incidentId: number, step: string) => `maintenance:${incidentId}:${step}`;

/**
 * The reminders, start and completion still ahead of `now`; a window already open starts at once instead.
 * In the transaction that announces the maintenance: it is never announced without its plan.
 */
export async function planMaintenance(tx: Tx, incidentId: number, window: MaintenanceWindow, now: Date): Promise<void> {
  const payload = { incidentId, startsAt: window.startsAt.getTime(), endsAt: window.endsAt.getTime() };
  for (const reminder of REMINDERS) {
    const at = new Date(window.startsAt.getTime() - reminder.before);
    if (at > now)
      await scheduleJob(tx, jobKey(incidentId, reminder.id), 'maintenance.reminder', at, { ...payload, before: reminder.id }, now);
  }
  if (window.startsAt > now) await scheduleJob(tx, jobKey(incidentId, 'start'), 'maintenance.start', window.startsAt, payload, now);
  await scheduleJob(tx, jobKey(incidentId, 'complete'), 'maintenance.complete', window.endsAt, payload, now);
}

/** In the transaction that resolves the maintenance: nothing of its plan runs after it. */
export async function cancelMaintenanceJobs(tx: Tx, incidentId: number, now: Date): Promise<void> {
  for (const step of [...REMINDERS.map((r) => r.id), 'start', 'complete']) await cancelJob(tx, jobKey(incidentId, step), now);
}

export interface MaintenanceJobDeps {
  database: Database;
  site: Site;
  components: readonly Component[];
  templates: readonly TemplateSource[];
  publicUrl: URL;
}

function automaticContext(deps: MaintenanceJobDeps, createdBy: number | null, now: Date): IncidentContext {
  return {
    database: deps.database,
    now,
    site: deps.site,
    components: deps.components,
    publicUrl: deps.publicUrl,
    actor: { id: createdBy ?? 0, label: 'candor scheduler' },
    system: true,
    ip: null,
    userAgent: 'candor scheduler',
  };
}

/** The maintenance as a step sees it: the incident with its window, and who announced it. */
interface Planned {
  record: IncidentRecord;
  window: MaintenanceWindow;
  createdBy: number | null;
  /** the step's transaction */
  tx: Tx;
}

/**
 * Runs one step in one transaction with the job's completion; the step runs
 * only while the maintenance's window is the one the job was planned for.
 * The maintenance's row is read locked (src/stores/maintenance-windows.ts),
 * so two steps of one maintenance never interleave on PostgreSQL.
 */
function step(deps: MaintenanceJobDeps, run: (planned: Planned, job: Job, now: Date) => void | Promise<void>): JobHandler {
  return async (job, now) => {
    const incidentId = Number(job.payload.incidentId);
    await deps.database.transaction(async (tx) => {
      const state = await lockMaintenance(tx, incidentId);
      // The incident is read and updated in this transaction: the step's effect and its completion commit together.
      const window = state?.window;
      if (window && window.startsAt.getTime() === Number(job.payload.startsAt) && window.endsAt.getTime() === Number(job.payload.endsAt)) {
        const record = await readIncident(tx, deps.components, incidentId);
        if (record) await run({ record, window, createdBy: state.createdBy, tx }, job, now);
      }
      await completeJob(tx, job.id, now);
    });
  };
}

function filled(deps: MaintenanceJobDeps, id: string, { record, window }: Planned): string {
  return fillTemplate(
    requireTemplate(deps.templates, id).body,
    templateValues({ site: deps.site, title: record.incident.title, services: record.incident.components.map((c) => c.name), window }),
  );
}

/** A reminder is a notification, not an update: the timeline stays the record of what changed. */
const remind = (deps: MaintenanceJobDeps) =>
  step(deps, async (planned, job, now) => {
    const { record, window } = planned;
    const { incident } = record;
    // Late reminders mislead: the 24-hour one is pointless inside the last hour, both after the start.
    const latest = job.payload.before === 'remind-24h' ? window.startsAt.getTime() - HOUR : window.startsAt.getTime();
    if (incident.status !== 'scheduled' || now.getTime() >= latest) return;
    const url = incidentUrl(deps.publicUrl, incident.id);
    await enqueueNotification(
      planned.tx,
      {
        kind: 'incident',
        title: `${incident.title}: reminder`,
        threadKey: `incident:${incident.id}`,
        content: incidentMessages({
          organisation: deps.site.organisation.name,
          incident,
          update: { id: 0, status: 'scheduled', body: filled(deps, 'maintenance-reminder', planned), publishedAt: now },
          incidentUrl: url,
          event: 'maintenance.reminder',
          calendarUrl: `${url}.ics`,
        }),
        audience: incidentAudience(
          incident.kind,
          incident.components.map((c) => c.id),
          record.organisations,
          deps.components,
        ),
        createdBy: planned.createdBy,
      },
      now,
    );
  });

const start = (deps: MaintenanceJobDeps) =>
  step(deps, async (planned, _job, now) => {
    const { incident } = planned.record;
    // A window that passed while nothing ran is simply completed; announcing its start now would be false.
    if (incident.status !== 'scheduled' || now >= planned.window.endsAt) return;
    const result = await postUpdateIn(automaticContext(deps, planned.createdBy, now), planned.tx, incident.id, {
      status: 'in_progress',
      body: filled(deps, 'maintenance-started', planned),
      components: Object.fromEntries(incident.components.map((c) => [c.id, 'under_maintenance' as const])),
      confirmPersonalData: true,
      // announced to this audience when staff declared it; the scheduler has no one to ask
      confirmNoRecipients: true,
    });
    if (!result.ok) throw new Error(result.message);
  });

const complete = (deps: MaintenanceJobDeps) =>
  step(deps, async (planned, _job, now) => {
    const { incident } = planned.record;
    if (incident.status === 'resolved') return;
    const result = await postUpdateIn(automaticContext(deps, planned.createdBy, now), planned.tx, incident.id, {
      status: 'resolved',
      body: filled(deps, 'maintenance-completed', planned),
      components: {},
      confirmPersonalData: true,
      confirmNoRecipients: true,
    });
    if (!result.ok) throw new Error(result.message);
  });

export function maintenanceJobHandlers(deps: MaintenanceJobDeps): Record<string, JobHandler> {
  return { 'maintenance.reminder': remind(deps), 'maintenance.start': start(deps), 'maintenance.complete': complete(deps) };
}

const stepLabels: Record<string, string> = {
  'remind-24h': 'Reminder to subscribers, 24 hours before',
  'remind-1h': 'Reminder to subscribers, 1 hour before',
  start: 'Start: services under maintenance, subscribers told',
  complete: 'Completion: services operational, subscribers told',
};

/** What the scheduler will do (or did) for this maintenance, in time order, for the console. */
export async function maintenancePlan(
  database: Database,
  incidentId: number,
): Promise<{ step: string; label: string; at: Date; state: string }[]> {
  const prefix = jobKey(incidentId, '');
  const rows = await database.read((r) => jobsByKeyPrefix(r, prefix));
  return rows.map((r) => {
    const step = r.key.slice(prefix.length);
    return {
      step,
      label: stepLabels[step] ?? step,
      at: r.finishedAt ?? r.runAt,
      state: { pending: 'planned', running: 'running', done: 'done', cancelled: 'cancelled', failed: 'failed' }[r.status] ?? r.status,
    };
  });
}
