/**
 * Synchronous twins of incidents.ts, breach.ts (issue 15): for code that runs inside a synchronous
 * transaction of its own on the SQLite connection and cannot await yet — the scheduler's jobs and
 * the scheduled updates (schedule.ts, maintenance.ts) and the console dashboard
 * (src/core/console/dashboard.ts). They do what the async functions do, on `ctx.db`, joining the
 * caller's transaction. Remove each when its last caller awaits the async one.
 */
import type { Db } from '../../../db/client.ts';
import type { AuditAction } from '../audit/actions.ts';
import { recordAudit } from '../audit/log.ts';
import type { Component, Site } from '../content/schema.ts';
import { enqueueNotification, notificationReach } from '../notify/legacy.ts';
import { type AudienceReach, audienceReach, noRecipientsProblem } from '../organisations/reach.ts';
import { type BreachClock, type BreachNotice, type BreachRecord, clocksOf, noticesOf } from './breach.ts';
import { recordIncidentStatesLegacy as recordIncidentStates, worstDeclaredLegacy as worstDeclared } from './history.ts';
import {
  type IncidentActor,
  type IncidentRecord,
  incidentAudience,
  incidentAuditInput,
  incidentUrl,
  lifecycleProblem,
  NoRecipients,
  type PublishResult,
  personalDataGuard,
  promisedUpdate,
  publishedResult,
  type UpdateInput,
  updateInputProblem,
} from './incidents.ts';
import { cancelMaintenanceJobs, planMaintenance } from './maintenance.ts';
import { incidentMessages } from './messages.ts';
import { planReminders } from './schedule.ts';
import {
  type ComponentStatus,
  type IncidentKind,
  type IncidentSeverity,
  type IncidentStatus,
  type IncidentView,
  incidentKinds,
  type UpdateView,
} from './types.ts';

export { type IncidentRecord, incidentAudience, incidentUrl, type UpdateInput };

/** The context of the synchronous twins: the SQLite connection instead of the async handle. */
export interface LegacyIncidentContext extends IncidentActor {
  db: Db;
}

/** audienceOrganisations() of a raw row (JSON text columns). */
function rawAudience(row: { audience_organisations: string | null; audience_organisation_ids: string | null }): {
  ids: number[] | null;
  typed: string[] | null;
} {
  const typed = row.audience_organisations ? (JSON.parse(row.audience_organisations) as string[]) : null;
  if (row.audience_organisation_ids) return { ids: JSON.parse(row.audience_organisation_ids) as number[], typed };
  return { ids: typed ? [] : null, typed };
}

/** updateProblem(), synchronously. */
export function updateProblemLegacy(
  ctx: LegacyIncidentContext,
  incidentId: number | null,
  input: UpdateInput & { kind?: IncidentKind },
): string | null {
  const kind =
    incidentId === null
      ? input.kind
      : (ctx.db.$client.prepare('SELECT kind FROM incidents WHERE id = ?').get(incidentId) as { kind: IncidentKind } | undefined)?.kind;
  if (!kind || !incidentKinds.includes(kind)) return 'Choose what kind of incident this is.';
  return updateInputProblem(ctx, kind, input);
}

/** auditIncident(), synchronously on the connection (joining the transaction open on it). */
export function auditIncidentLegacy(
  ctx: LegacyIncidentContext,
  action: AuditAction,
  target: string,
  summary: Record<string, unknown>,
): void {
  recordAudit(ctx.db, incidentAuditInput(ctx, action, target, summary), ctx.now);
}

function refusedWhenNoRecipients(run: () => PublishResult): PublishResult {
  try {
    return run();
  } catch (err) {
    if (err instanceof NoRecipients) return { ok: false, message: err.message, noRecipients: true };
    throw err;
  }
}

/** postUpdate(), synchronously: for the scheduler, inside its own transaction. */
export function postUpdateLegacy(ctx: LegacyIncidentContext, incidentId: number, input: UpdateInput): PublishResult {
  const current = ctx.db.$client.prepare('SELECT kind, status FROM incidents WHERE id = ?').get(incidentId) as
    | { kind: IncidentKind; status: IncidentStatus }
    | undefined;
  if (!current) return { ok: false, message: 'There is no such incident.' };
  const problem = lifecycleProblem(current, input) ?? updateInputProblem(ctx, current.kind, input);
  if (problem) return { ok: false, message: problem };
  const sqlite = ctx.db.$client;
  return refusedWhenNoRecipients(() =>
    sqlite
      .transaction((): PublishResult => {
        const guarded = personalDataGuard(input);
        if (!guarded.ok) return guarded;
        if (guarded.found)
          auditIncidentLegacy(ctx, 'incidents.personal_data_confirmed', `incident:${incidentId}`, { found: guarded.found });
        const published = publishLegacy(ctx, incidentId, input, false);
        auditIncidentLegacy(ctx, input.status === 'resolved' ? 'incidents.resolved' : 'incidents.updated', `incident:${incidentId}`, {
          before: { status: current.status },
          after: { status: input.status },
          components: input.components,
          deliveries: published.deliveries,
          ...(published.confirmedNoRecipients ? { confirmedNoRecipients: true } : {}),
        });
        return publishedResult(incidentId, published);
      })
      .immediate(),
  );
}

function publishLegacy(
  ctx: LegacyIncidentContext,
  incidentId: number,
  input: UpdateInput,
  first: boolean,
): { updateId: number; notificationId: number | null; deliveries: number; confirmedNoRecipients: boolean } {
  const sqlite = ctx.db.$client;
  return sqlite
    .transaction(() => {
      const row = sqlite
        .prepare(
          'SELECT kind, severity, status, audience_organisations, audience_organisation_ids, window_starts_at, window_ends_at FROM incidents WHERE id = ?',
        )
        .get(incidentId) as {
        kind: IncidentKind;
        severity: IncidentSeverity;
        status: IncidentStatus;
        audience_organisations: string | null;
        audience_organisation_ids: string | null;
        window_starts_at: number | null;
        window_ends_at: number | null;
      };
      const resolved = input.status === 'resolved';
      const nextUpdateBy =
        promisedUpdate(
          ctx,
          { ...row, windowEndsAt: row.window_ends_at === null ? null : new Date(row.window_ends_at) },
          input.status,
          input.nextUpdateBy ?? null,
        )?.getTime() ?? null;
      sqlite
        .prepare('UPDATE incidents SET status = ?, next_update_by = ?, resolved_at = ? WHERE id = ?')
        .run(input.status, nextUpdateBy, resolved ? ctx.now.getTime() : null, incidentId);
      // Maintenance started early (or late) by hand has started now, not at the announced time.
      if (
        row.kind === 'maintenance' &&
        row.status === 'scheduled' &&
        (input.status === 'in_progress' || input.status === 'monitoring') &&
        !first
      )
        sqlite.prepare('UPDATE incidents SET started_at = ? WHERE id = ?').run(ctx.now.getTime(), incidentId);
      // Announced and planned in one transaction: a crash cannot leave maintenance that never starts or ends.
      if (first && row.kind === 'maintenance' && row.window_starts_at !== null && row.window_ends_at !== null)
        planMaintenance(ctx.db, incidentId, { startsAt: new Date(row.window_starts_at), endsAt: new Date(row.window_ends_at) }, ctx.now);
      const setComponent = sqlite.prepare(
        'INSERT INTO incident_components (incident_id, component_id, status) VALUES (?, ?, ?) ON CONFLICT (incident_id, component_id) DO UPDATE SET status = excluded.status',
      );
      for (const [id, status] of Object.entries(input.components)) setComponent.run(incidentId, id, status);
      // A resolved incident leaves every service it touched operational.
      if (resolved) sqlite.prepare(`UPDATE incident_components SET status = 'operational' WHERE incident_id = ?`).run(incidentId);
      const { id: updateId } = sqlite
        .prepare('INSERT INTO incident_updates (incident_id, status, body, published_at, created_by) VALUES (?, ?, ?, ?, ?) RETURNING id')
        .get(incidentId, input.status, input.body, ctx.now.getTime(), ctx.actor.id) as { id: number };
      // The services' history, in this transaction: the scheduler's own steps are the maintenance's.
      recordIncidentStates(ctx.db, incidentId, updateId, ctx.system ? 'maintenance' : 'update', ctx.now);
      const view = incidentViewLegacy(ctx.db, ctx.components, incidentId);
      if (!view) throw new Error(`incident ${incidentId} vanished`);
      const update: UpdateView = { id: updateId, status: input.status, body: input.body, publishedAt: ctx.now };
      const url = incidentUrl(ctx.publicUrl, incidentId);
      const addressed = rawAudience(row);
      const audience = incidentAudience(
        row.kind,
        view.incident.components.map((c) => c.id),
        addressed.ids,
      );
      const notify = input.notify !== false;
      const { notificationId, deliveries } = notify
        ? enqueueNotification(
            ctx.db,
            {
              kind: 'incident',
              title: `${view.incident.title}: ${input.status}`,
              threadKey: `incident:${incidentId}`,
              content: incidentMessages({
                organisation: ctx.site.organisation.name,
                incident: view.incident,
                update,
                incidentUrl: url,
                first,
                phase: view.updates.length,
                worstDeclared: worstDeclared(ctx.db, incidentId),
                ...(view.incident.window ? { calendarUrl: `${url}.ics` } : {}),
              }),
              audience,
              createdBy: ctx.actor.id,
            },
            ctx.now,
          )
        : { notificationId: null, deliveries: 0 };
      // A targeted notice that enqueued nobody: refused unless confirmed, rolling back everything above.
      const empty = notify && addressed.ids !== null && deliveries === 0;
      if (empty && !input.confirmNoRecipients)
        throw new NoRecipients(
          noRecipientsProblem(audienceReach(ctx.db, audience, addressed.typed)) ?? 'This targeted notice reaches no one.',
        );
      sqlite
        .prepare('UPDATE incident_updates SET notification_id = ?, notified = ? WHERE id = ?')
        .run(notificationId, notify ? 1 : 0, updateId);
      // Maintenance keeps its own clock (the window); the cadence reminders are for incidents.
      planReminders(ctx.db, incidentId, nextUpdateBy === null || row.kind === 'maintenance' ? null : new Date(nextUpdateBy), ctx.now);
      if (row.kind === 'maintenance' && resolved) cancelMaintenanceJobs(ctx.db, incidentId, ctx.now);
      return { updateId, notificationId, deliveries, confirmedNoRecipients: empty };
    })
    .immediate();
}

interface IncidentRow {
  id: number;
  kind: IncidentKind;
  severity: IncidentSeverity;
  title: string;
  status: IncidentStatus;
  public: number;
  audience_organisations: string | null;
  audience_organisation_ids: string | null;
  started_at: number;
  resolved_at: number | null;
  next_update_by: number | null;
  window_starts_at: number | null;
  window_ends_at: number | null;
}

function toView(db: Db, components: readonly Component[], row: IncidentRow): IncidentView {
  const affected = db.$client
    .prepare('SELECT component_id, status FROM incident_components WHERE incident_id = ? ORDER BY component_id')
    .all(row.id) as {
    component_id: string;
    status: ComponentStatus;
  }[];
  return {
    id: row.id,
    kind: row.kind,
    severity: row.severity,
    title: row.title,
    status: row.status,
    components: affected.map((a) => ({
      id: a.component_id,
      name: components.find((c) => c.id === a.component_id)?.name ?? a.component_id,
      status: a.status,
    })),
    startedAt: new Date(row.started_at),
    resolvedAt: row.resolved_at === null ? null : new Date(row.resolved_at),
    nextUpdateBy: row.next_update_by === null ? null : new Date(row.next_update_by),
    window:
      row.window_starts_at === null || row.window_ends_at === null
        ? null
        : { startsAt: new Date(row.window_starts_at), endsAt: new Date(row.window_ends_at) },
  };
}

export function incidentViewLegacy(db: Db, components: readonly Component[], id: number): IncidentRecord | null {
  const row = db.$client.prepare('SELECT * FROM incidents WHERE id = ?').get(id) as IncidentRow | undefined;
  if (!row) return null;
  const updates = db.$client
    .prepare(`${UPDATE_COLUMNS} WHERE u.incident_id = ? ORDER BY u.published_at DESC, u.id DESC`)
    .all(id) as UpdateRow[];
  const edited = db.$client.prepare('SELECT max(at) AS at FROM incident_revisions WHERE incident_id = ? AND update_id IS NULL').get(id) as {
    at: number | null;
  };
  return {
    incident: toView(db, components, row),
    public: row.public === 1,
    organisations: rawAudience(row).ids,
    typedOrganisations: rawAudience(row).typed,
    updates: updates.map(updateView),
    editedAt: edited.at === null ? null : new Date(edited.at),
  };
}

/** An update as the pages show it: with whether subscribers were told, and when its text was last edited. */
const UPDATE_COLUMNS = `SELECT u.id, u.status, u.body, u.published_at, u.notified,
  (SELECT max(r.at) FROM incident_revisions r WHERE r.update_id = u.id) AS edited_at FROM incident_updates u`;

interface UpdateRow {
  id: number;
  status: IncidentStatus;
  body: string;
  published_at: number;
  notified: number;
  edited_at: number | null;
}

const updateView = (u: UpdateRow): UpdateView => ({
  id: u.id,
  status: u.status,
  body: u.body,
  publishedAt: new Date(u.published_at),
  notified: u.notified === 1,
  editedAt: u.edited_at === null ? null : new Date(u.edited_at),
});

/**
 * Whom the next notice of a targeted incident reaches as things stand (the
 * update composer shows it before anything is written); null for an
 * incident addressed to every subscriber of the topic, or none.
 */
export function incidentReachLegacy(db: Db, id: number, alsoComponents: readonly string[] = []): AudienceReach | null {
  const row = db.$client.prepare('SELECT * FROM incidents WHERE id = ?').get(id) as IncidentRow | undefined;
  if (!row) return null;
  const addressed = rawAudience(row);
  if (addressed.ids === null) return null;
  const components = [...new Set([...toView(db, [], row).components.map((c) => c.id), ...alsoComponents])];
  return audienceReach(db, incidentAudience(row.kind, components, addressed.ids), addressed.typed);
}

/** breachRecord(), synchronously. */
export function breachRecordLegacy(db: Db, incidentId: number): BreachRecord | null {
  const row = db.$client.prepare('SELECT * FROM breach_details WHERE incident_id = ?').get(incidentId) as
    | {
        aware_at: number;
        occurred_at: number | null;
        nature: string;
        subjects: string;
        records: string;
        consequences: string;
        measures: string;
        authority_notified_at: number | null;
      }
    | undefined;
  if (!row) return null;
  return {
    awareAt: new Date(row.aware_at),
    occurredAt: row.occurred_at === null ? null : new Date(row.occurred_at),
    nature: row.nature,
    subjects: row.subjects,
    records: row.records,
    consequences: row.consequences,
    measures: row.measures,
    authorityNotifiedAt: row.authority_notified_at === null ? null : new Date(row.authority_notified_at),
  };
}

function breachNoticesLegacy(db: Db, incidentId: number): BreachNotice[] {
  const updates = (
    db.$client
      .prepare('SELECT id, status, published_at, notification_id FROM incident_updates WHERE incident_id = ? ORDER BY published_at, id')
      .all(incidentId) as { id: number; status: IncidentStatus; published_at: number; notification_id: number | null }[]
  ).map((u) => ({ id: u.id, status: u.status, publishedAt: new Date(u.published_at), notificationId: u.notification_id }));
  return noticesOf(
    updates,
    notificationReach(
      db,
      updates.flatMap((u) => (u.notificationId === null ? [] : [u.notificationId])),
    ),
  );
}

/** breachClocks(), synchronously. */
export function breachClocksLegacy(
  db: Db,
  site: { policies: Pick<Site['policies'], 'breachClocks'> },
  incidentId: number,
  record: BreachRecord,
  now: Date,
): BreachClock[] {
  return clocksOf(site, breachNoticesLegacy(db, incidentId), record, now);
}
