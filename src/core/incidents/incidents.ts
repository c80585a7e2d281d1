/**
 * Declaring and updating incidents. Each published update is one
 * transaction: the update, the incident's new state, the components' new
 * status and the notification with all its deliveries. Transitions only
 * move forward to resolved; a resolved incident takes no more updates.
 */
import type { Db } from '../../../db/client.ts';
import type { AuditAction } from '../audit/actions.ts';
import { recordAudit } from '../audit/log.ts';
import type { Component, Site } from '../content/schema.ts';
import { enqueueNotification } from '../notify/legacy.ts';
import type { Audience } from '../notify/outbox.ts';
import { organisationNames } from '../organisations/organisations.ts';
import { type AudienceReach, audienceReach, noRecipientsProblem } from '../organisations/reach.ts';
import { type BreachFields, breachFieldsProblem, breachNoticeSection, saveBreachFields } from './breach.ts';
import { recordIncidentStates, worstDeclared } from './history.ts';
import { cancelMaintenanceJobs, planMaintenance, windowProblem } from './maintenance.ts';
import { incidentMessages } from './messages.ts';
import { type Finding, scanForPersonalData, summariseFindings } from './pii-guard.ts';
import { planReminders } from './schedule.ts';
import {
  type ComponentStatus,
  componentStatuses,
  type IncidentKind,
  type IncidentSeverity,
  type IncidentStatus,
  type IncidentView,
  incidentKinds,
  incidentSeverities,
  type MaintenanceWindow,
  statusesFor,
  statusLabel,
  type UpdateView,
  worstStatus,
} from './types.ts';

export interface IncidentContext {
  db: Db;
  now: Date;
  site: Site;
  components: readonly Component[];
  publicUrl: URL;
  actor: { id: number; label: string };
  /** the scheduler acting on its own (maintenance start and completion): audited as the system */
  system?: boolean;
  ip: string | null;
  userAgent: string | null;
}

export interface UpdateInput {
  status: IncidentStatus;
  body: string;
  /** component id → its status after this update */
  components: Record<string, ComponentStatus>;
  /** publishing text the guard flagged needs this, and is audited */
  confirmPersonalData: boolean;
  /** a targeted notice that reaches no one needs this, and is audited */
  confirmNoRecipients?: boolean;
  /** false: publish on the pages only, without telling subscribers (a small correction); default true */
  notify?: boolean;
  /** when the next update is promised; default the severity's cadence (content/site.yaml) */
  nextUpdateBy?: Date | null;
}

export interface DeclareInput extends UpdateInput {
  kind: IncidentKind;
  severity: IncidentSeverity;
  title: string;
  /** ids of customer organisations (src/core/organisations); empty: every subscriber of the topic */
  organisations: number[];
  /** breaches: shown on the public status page only when staff choose */
  publicNotice: boolean;
  /** breaches: the Art. 33(3) facts, required for the first notice */
  breach: BreachFields | null;
  /** scheduled maintenance: the window it is announced for */
  window: MaintenanceWindow | null;
}

export type PublishResult =
  | { ok: true; incidentId: number; updateId: number; notificationId: number | null; deliveries: number }
  | { ok: false; message: string; findings?: Finding[]; noRecipients?: true };

/** A targeted notice found to reach no one inside the publishing transaction, which it rolls back. */
class NoRecipients extends Error {}

const MAX_ORGANISATIONS = 50;

/** Whom an incident's notices go to: one definition for publishing, previews, postmortems and maintenance steps. */
export function incidentAudience(kind: IncidentKind, componentIds: readonly string[], organisations: readonly number[] | null): Audience {
  return {
    kind: 'topic',
    topic: kind === 'maintenance' ? 'maintenance' : 'incidents',
    components: [...componentIds],
    ...(organisations ? { organisations: [...organisations] } : {}),
  };
}

/**
 * The organisations an incident is addressed to: their ids, or null for
 * everyone. An incident from before organisations were kept by staff has
 * only the company names typed then: those prove nothing, so it is
 * addressed to no one (`[]`), and `typed` keeps the names to show.
 */
export function audienceOrganisations(row: { audience_organisations: string | null; audience_organisation_ids: string | null }): {
  ids: number[] | null;
  typed: string[] | null;
} {
  const typed = row.audience_organisations ? (JSON.parse(row.audience_organisations) as string[]) : null;
  if (row.audience_organisation_ids) return { ids: JSON.parse(row.audience_organisation_ids) as number[], typed };
  return { ids: typed ? [] : null, typed };
}

const MAX_BODY = 20_000;
/** How far ahead the next update may be promised. */
const MAX_PROMISE_MS = 7 * 86_400_000;

/** Minutes until the next promised update, from content/site.yaml. */
export function cadenceMinutes(site: Site, kind: IncidentKind, severity: IncidentSeverity): number {
  return kind === 'breach' ? site.policies.updateCadenceMinutes.breach : site.policies.updateCadenceMinutes[severity];
}

/** Why an update to this incident cannot be published as given (status, text, services, promise), or null. */
export function updateProblem(
  ctx: IncidentContext,
  incidentId: number | null,
  input: UpdateInput & { kind?: IncidentKind },
): string | null {
  const kind =
    incidentId === null
      ? input.kind
      : (ctx.db.$client.prepare('SELECT kind FROM incidents WHERE id = ?').get(incidentId) as { kind: IncidentKind } | undefined)?.kind;
  if (!kind || !incidentKinds.includes(kind)) return 'Choose what kind of incident this is.';
  return check(ctx, kind, input);
}

function check(ctx: IncidentContext, kind: IncidentKind, input: UpdateInput): string | null {
  const allowed = statusesFor(kind);
  if (!allowed.includes(input.status))
    return `Choose a status: ${kind === 'maintenance' ? 'maintenance' : 'an incident'} goes ${allowed.map((s) => statusLabel(kind, s).toLowerCase()).join(', ')}.`;
  if (input.body.trim() === '') return 'Write what is happening: an update cannot be empty.';
  if (kind === 'breach' && input.notify === false)
    return 'Every notice of a data breach goes to the customers concerned (GDPR Art. 33(4) numbers them): leave "Notify subscribers" ticked. To correct a published notice, edit it.';
  if (input.nextUpdateBy) {
    const at = input.nextUpdateBy.getTime();
    if (Number.isNaN(at)) return 'The next update time is not a time: write it as YYYY-MM-DD HH:MM (UTC).';
    if (at <= ctx.now.getTime()) return 'The next update must be promised for a time still to come (UTC).';
    if (at > ctx.now.getTime() + MAX_PROMISE_MS) return 'Promise the next update within 7 days; post an update before then.';
  }
  if (input.body.length > MAX_BODY) return `The update is too long (${MAX_BODY.toLocaleString('en')} characters at most).`;
  for (const [id, status] of Object.entries(input.components)) {
    if (!ctx.components.some((c) => c.id === id)) return `There is no service called "${id.slice(0, 60)}".`;
    if (!componentStatuses.includes(status)) return `"${String(status).slice(0, 40)}" is not a service status.`;
  }
  return null;
}

function guard(
  ctx: IncidentContext,
  input: UpdateInput,
  incidentId: number | null,
): { ok: true } | { ok: false; message: string; findings: Finding[] } {
  const findings = scanForPersonalData(input.body);
  if (findings.length === 0) return { ok: true };
  if (!input.confirmPersonalData) {
    return {
      ok: false,
      message: 'The update looks like it contains personal data or a secret. Redact it, or confirm that it must be published.',
      findings,
    };
  }
  // Kinds and counts only: the audit log must not hold the data the guard found (nor a key named "secret").
  const found = Object.entries(summariseFindings(findings))
    .filter(([, n]) => n > 0)
    .map(([kind, count]) => ({ kind, count }));
  auditIncident(ctx, 'incidents.personal_data_confirmed', incidentId === null ? 'incident:new' : `incident:${incidentId}`, { found });
  return { ok: true };
}

/** Records what staff (or, for automatic steps, the system) did to an incident. */
export function auditIncident(ctx: IncidentContext, action: AuditAction, target: string, summary: Record<string, unknown>): void {
  recordAudit(
    ctx.db,
    {
      actor: ctx.system ? { type: 'system' } : { type: 'staff', id: ctx.actor.id, label: ctx.actor.label },
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      action,
      target,
      summary,
    },
    ctx.now,
  );
}

/** The window decides where new maintenance starts, and every service it names is what it takes down. */
function asAnnounced(input: UpdateInput & { window: MaintenanceWindow | null }, now: Date): Pick<UpdateInput, 'status' | 'components'> {
  return {
    status: input.window && input.window.startsAt > now ? 'scheduled' : 'in_progress',
    components: Object.fromEntries(Object.keys(input.components).map((id) => [id, 'under_maintenance' as const])),
  };
}

export function declareIncident(ctx: IncidentContext, input: DeclareInput): PublishResult {
  if (!incidentKinds.includes(input.kind)) return { ok: false, message: 'Choose what kind of incident this is.' };
  if (!incidentSeverities.includes(input.severity)) return { ok: false, message: 'Choose a severity.' };
  const title = input.title.trim();
  if (title === '' || title.length > 200) return { ok: false, message: 'Give the incident a title of at most 200 characters.' };
  if (Object.keys(input.components).length === 0) return { ok: false, message: 'Choose at least one affected service.' };
  const maintenance = input.kind === 'maintenance' ? input.window : null;
  if (input.kind === 'maintenance') {
    const windowIssue = windowProblem(input.window, ctx.now);
    if (windowIssue) return { ok: false, message: windowIssue };
    input = { ...input, ...asAnnounced(input, ctx.now) };
  }
  if (input.status === 'resolved')
    return { ok: false, message: 'A new incident starts open: choose investigating, identified or monitoring.' };
  const problem = check(ctx, input.kind, input);
  if (problem) return { ok: false, message: problem };
  if (input.kind === 'breach') {
    if (!input.breach)
      return {
        ok: false,
        message: 'A data breach needs its facts: nature, data subjects, records, likely consequences, measures and when you became aware.',
      };
    const breachProblem = breachFieldsProblem(input.breach, ctx.now);
    if (breachProblem) return { ok: false, message: breachProblem };
  }
  const organisations = [...new Set(input.organisations)];
  const organisationIssue = organisationsProblem(ctx.db, organisations);
  if (organisationIssue) return { ok: false, message: organisationIssue };
  const sqlite = ctx.db.$client;
  const isPublic = input.kind !== 'breach' || input.publicNotice;
  // One transaction: the incident, its breach facts and its first notice all exist, or none does.
  return refusedWhenNoRecipients(() =>
    sqlite
      .transaction((): PublishResult => {
        const guarded = guard(ctx, input, null);
        if (!guarded.ok) return guarded;
        const { id: incidentId } = sqlite
          .prepare(
            `INSERT INTO incidents (kind, severity, title, status, public, audience_organisation_ids, started_at, window_starts_at, window_ends_at, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
          )
          .get(
            input.kind,
            input.severity,
            title,
            input.status,
            isPublic ? 1 : 0,
            organisations.length ? JSON.stringify(organisations) : null,
            // maintenance starts when its window opens
            maintenance && maintenance.startsAt > ctx.now ? maintenance.startsAt.getTime() : ctx.now.getTime(),
            maintenance?.startsAt.getTime() ?? null,
            maintenance?.endsAt.getTime() ?? null,
            ctx.actor.id,
            ctx.now.getTime(),
          ) as { id: number };
        // The Art. 33(3) facts go after the guard ran on what staff wrote (the DPO's address is meant to be there).
        const breach = input.kind === 'breach' ? input.breach : null;
        if (breach) saveBreachFields(ctx.db, incidentId, breach);
        const published = publish(
          ctx,
          incidentId,
          breach ? { ...input, body: `${input.body.trim()}\n\n${breachNoticeSection(breach, ctx.site)}` } : input,
          true,
        );
        auditIncident(ctx, 'incidents.declared', `incident:${incidentId}`, {
          ...(maintenance ? { window: { startsAt: maintenance.startsAt.toISOString(), endsAt: maintenance.endsAt.toISOString() } } : {}),
          kind: input.kind,
          severity: input.severity,
          components: Object.keys(input.components),
          deliveries: published.deliveries,
          targeted: organisations.length > 0,
          ...(organisations.length ? { organisations } : {}),
          ...(published.confirmedNoRecipients ? { confirmedNoRecipients: true } : {}),
        });
        return publishedResult(incidentId, published);
      })
      .immediate(),
  );
}

/** Why these organisation ids cannot be an audience, or null. */
function organisationsProblem(db: Db, ids: readonly number[]): string | null {
  if (ids.length > MAX_ORGANISATIONS) return `Choose at most ${MAX_ORGANISATIONS} organisations.`;
  const names = organisationNames(db, ids);
  const missing = ids.filter((id) => !names.has(id));
  return missing.length
    ? `There is no customer organisation #${missing.join(', #')} (it may have been deleted): choose from the list.`
    : null;
}

function publishedResult(
  incidentId: number,
  published: { updateId: number; notificationId: number | null; deliveries: number },
): PublishResult {
  return { ok: true, incidentId, updateId: published.updateId, notificationId: published.notificationId, deliveries: published.deliveries };
}

function refusedWhenNoRecipients(run: () => PublishResult): PublishResult {
  try {
    return run();
  } catch (err) {
    if (err instanceof NoRecipients) return { ok: false, message: err.message, noRecipients: true };
    throw err;
  }
}

export function postUpdate(ctx: IncidentContext, incidentId: number, input: UpdateInput): PublishResult {
  const current = ctx.db.$client.prepare('SELECT kind, status FROM incidents WHERE id = ?').get(incidentId) as
    | { kind: IncidentKind; status: IncidentStatus }
    | undefined;
  if (!current) return { ok: false, message: 'There is no such incident.' };
  if (current.status === 'resolved')
    return { ok: false, message: 'This incident is resolved: it takes no more updates. Declare a new incident if the problem came back.' };
  if (current.kind === 'maintenance' && input.status === 'scheduled' && current.status !== 'scheduled')
    return { ok: false, message: 'This maintenance has already started: it cannot go back to scheduled.' };
  const problem = check(ctx, current.kind, input);
  if (problem) return { ok: false, message: problem };
  const sqlite = ctx.db.$client;
  return refusedWhenNoRecipients(() =>
    sqlite
      .transaction((): PublishResult => {
        const guarded = guard(ctx, input, incidentId);
        if (!guarded.ok) return guarded;
        const published = publish(ctx, incidentId, input, false);
        auditIncident(ctx, input.status === 'resolved' ? 'incidents.resolved' : 'incidents.updated', `incident:${incidentId}`, {
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

function publish(
  ctx: IncidentContext,
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
      const nextUpdateBy = promisedUpdate(ctx, row, input.status, input.nextUpdateBy ?? null);
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
      const view = incidentView(ctx.db, ctx.components, incidentId);
      if (!view) throw new Error(`incident ${incidentId} vanished`);
      const update: UpdateView = { id: updateId, status: input.status, body: input.body, publishedAt: ctx.now };
      const url = incidentUrl(ctx.publicUrl, incidentId);
      const addressed = audienceOrganisations(row);
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

/**
 * When the next public update is promised: the severity's cadence for
 * incidents; for maintenance under way, the end of its window (the
 * completion notice), and nothing while it is only scheduled.
 */
function promisedUpdate(
  ctx: IncidentContext,
  row: { kind: IncidentKind; severity: IncidentSeverity; window_ends_at: number | null },
  status: IncidentStatus,
  chosen: Date | null,
): number | null {
  if (status === 'resolved') return null;
  if (row.kind === 'maintenance') return status === 'scheduled' ? null : row.window_ends_at;
  return chosen ? chosen.getTime() : ctx.now.getTime() + cadenceMinutes(ctx.site, row.kind, row.severity) * 60_000;
}

export const incidentUrl = (publicUrl: URL, id: number) => new URL(`incidents/${id}`, publicUrl).href;

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

export interface IncidentRecord {
  incident: IncidentView;
  public: boolean;
  /** the customer organisations its notices are addressed to (ids); null: every subscriber of the topic */
  organisations: number[] | null;
  /** the company names typed before organisations were kept by staff (they reach no one) */
  typedOrganisations: string[] | null;
  updates: UpdateView[];
  /** when its title or severity was last edited after publishing */
  editedAt: Date | null;
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

export function incidentView(db: Db, components: readonly Component[], id: number): IncidentRecord | null {
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
    organisations: audienceOrganisations(row).ids,
    typedOrganisations: audienceOrganisations(row).typed,
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

export function listIncidents(
  db: Db,
  components: readonly Component[],
  options: { open?: boolean; publicOnly?: boolean; since?: Date; limit?: number },
): IncidentView[] {
  const rows = db.$client
    .prepare(
      `SELECT * FROM incidents WHERE (? = 0 OR status != 'resolved') AND (? = 0 OR public = 1) AND started_at >= ? ORDER BY started_at DESC LIMIT ?`,
    )
    .all(
      options.open ? 1 : 0,
      options.publicOnly ? 1 : 0,
      options.since?.getTime() ?? 0,
      Math.min(options.limit ?? 50, 500),
    ) as IncidentRow[];
  return rows.map((r) => toView(db, components, r));
}

/**
 * Public incidents that touched the days from `from` to `to`: begun by `to`
 * (maintenance still waiting for its window has not) and not resolved before
 * `from`; open ones included. Newest first.
 */
export function publicIncidentsBetween(db: Db, components: readonly Component[], from: Date, to: Date, limit = 200): IncidentView[] {
  const rows = db.$client
    .prepare(
      `SELECT * FROM incidents
        WHERE public = 1 AND status != 'scheduled' AND started_at <= ?
          AND (status != 'resolved' OR coalesce(resolved_at, started_at) >= ?)
        ORDER BY started_at DESC, id DESC LIMIT ?`,
    )
    .all(to.getTime(), from.getTime(), Math.min(limit, 500)) as IncidentRow[];
  return rows.map((r) => toView(db, components, r));
}

/** The newest update of an incident, or null. */
export function latestUpdate(db: Db, incidentId: number): UpdateView | null {
  const row = db.$client
    .prepare(`${UPDATE_COLUMNS} WHERE u.incident_id = ? ORDER BY u.published_at DESC, u.id DESC LIMIT 1`)
    .get(incidentId) as UpdateRow | undefined;
  return row ? updateView(row) : null;
}

/** Each service's state now: the worst any open incident puts it in. */
export function currentComponentStatus(db: Db, components: readonly Component[]): { component: Component; status: ComponentStatus }[] {
  const rows = db.$client
    .prepare(
      `SELECT c.component_id, c.status FROM incident_components c JOIN incidents i ON i.id = c.incident_id WHERE i.status NOT IN ('resolved', 'scheduled') AND i.public = 1`,
    )
    .all() as { component_id: string; status: ComponentStatus }[];
  return components.map((component) => {
    return { component, status: worstStatus(rows.filter((r) => r.component_id === component.id).map((r) => r.status)) };
  });
}

export interface Preview {
  findings: Finding[];
  content: ReturnType<typeof incidentMessages>;
  recipients: Partial<Record<'email' | 'sms' | 'slack' | 'webhook', number>>;
  /** whom it reaches: per organisation, channel and basis when targeted */
  reach: AudienceReach;
}

/** Exactly what each channel would send, and to how many, without publishing anything. */
export interface IncidentDraft {
  id: number | null;
  kind: IncidentKind;
  severity: IncidentSeverity;
  title: string;
  /** null: every subscriber of the topic */
  organisations: number[] | null;
  /** an incident addressed by typed company names before organisations were kept */
  typedOrganisations?: string[] | null;
  window: MaintenanceWindow | null;
}

/** What the composer previews an update against: the incident as it stands. */
export function incidentDraft(db: Db, id: number): IncidentDraft | null {
  const row = db.$client.prepare('SELECT * FROM incidents WHERE id = ?').get(id) as IncidentRow | undefined;
  if (!row) return null;
  const view = toView(db, [], row);
  return {
    id,
    kind: view.kind,
    severity: view.severity,
    title: view.title,
    organisations: audienceOrganisations(row).ids,
    typedOrganisations: audienceOrganisations(row).typed,
    window: view.window,
  };
}

export function previewIncidentUpdate(ctx: IncidentContext, draft: IncidentDraft, given: UpdateInput): Preview {
  const existing = draft.id === null ? null : incidentView(ctx.db, ctx.components, draft.id);
  const input =
    draft.id === null && draft.kind === 'maintenance' ? { ...given, ...asAnnounced({ ...given, window: draft.window }, ctx.now) } : given;
  const merged = new Map((existing?.incident.components ?? []).map((c) => [c.id, c]));
  for (const [id, status] of Object.entries(input.components))
    merged.set(id, { id, name: ctx.components.find((c) => c.id === id)?.name ?? id, status });
  const resolved = input.status === 'resolved';
  const window = existing?.incident.window ?? draft.window;
  const nextUpdateBy = promisedUpdate(
    ctx,
    { ...draft, window_ends_at: window?.endsAt.getTime() ?? null },
    input.status,
    input.nextUpdateBy ?? null,
  );
  const incident: IncidentView = {
    id: draft.id ?? 0,
    kind: draft.kind,
    severity: draft.severity,
    title: draft.title || 'Untitled incident',
    status: input.status,
    components: [...merged.values()].map((c) => (resolved ? { ...c, status: 'operational' } : c)),
    startedAt: existing?.incident.startedAt ?? (input.status === 'scheduled' && window ? window.startsAt : ctx.now),
    resolvedAt: resolved ? ctx.now : null,
    nextUpdateBy: nextUpdateBy === null ? null : new Date(nextUpdateBy),
    window,
  };
  const url = incidentUrl(ctx.publicUrl, draft.id ?? 0);
  const content = incidentMessages({
    organisation: ctx.site.organisation.name,
    incident,
    update: { id: 0, status: input.status, body: input.body, publishedAt: ctx.now },
    incidentUrl: url,
    first: draft.id === null,
    phase: draft.id === null ? 1 : (existing?.updates.length ?? 0) + 1,
    worstDeclared: worstStatus([
      ...(draft.id === null ? [] : [worstDeclared(ctx.db, draft.id)]),
      ...[...merged.values()].map((c) => c.status),
    ]),
    ...(window ? { calendarUrl: `${url}.ics` } : {}),
  });
  const audience = incidentAudience(
    draft.kind,
    incident.components.map((c) => c.id),
    draft.organisations,
  );
  const reach = audienceReach(ctx.db, audience, draft.typedOrganisations ?? null);
  return { findings: scanForPersonalData(input.body), content, recipients: reach.total, reach };
}

/** Each published update's notification and how many recipients it was enqueued for: whom it reached. */
export function updateNotifications(db: Db, incidentId: number): Map<number, { notificationId: number; recipients: number }> {
  const rows = db.$client
    .prepare(
      `SELECT u.id, n.id AS notification_id, n.recipient_count FROM incident_updates u JOIN notifications n ON n.id = u.notification_id
       WHERE u.incident_id = ?`,
    )
    .all(incidentId) as { id: number; notification_id: number; recipient_count: number }[];
  return new Map(rows.map((r) => [r.id, { notificationId: r.notification_id, recipients: r.recipient_count }]));
}

/**
 * Whom the next notice of a targeted incident reaches as things stand (the
 * update composer shows it before anything is written); null for an
 * incident addressed to every subscriber of the topic, or none.
 */
export function incidentReach(db: Db, id: number, alsoComponents: readonly string[] = []): AudienceReach | null {
  const row = db.$client.prepare('SELECT * FROM incidents WHERE id = ?').get(id) as IncidentRow | undefined;
  if (!row) return null;
  const addressed = audienceOrganisations(row);
  if (addressed.ids === null) return null;
  const components = [...new Set([...toView(db, [], row).components.map((c) => c.id), ...alsoComponents])];
  return audienceReach(db, incidentAudience(row.kind, components, addressed.ids), addressed.typed);
}
