import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import { latestAutomationStates } from '../../stores/component-states.ts';
import {
  componentsOf,
  type IncidentRow,
  incidentEditedAt,
  incidentForUpdate,
  incidentRow,
  incidentRows,
  insertIncident,
  insertUpdate,
  openPublicComponentStates,
  publicIncidentRowsBetween,
  resolveIncidentComponents,
  setIncidentComponent,
  setIncidentState,
  setUpdateNotification,
  type UpdateWithEdit,
  updateNotificationCounts,
  updatesOf,
  updatesOfIncidents,
} from '../../stores/incidents.ts';
import type { AuditAction } from '../audit/actions.ts';
import { writeAudit } from '../audit/log.ts';
import { groupTopicKeysFor } from '../content/groups.ts';
import type { Component, Site } from '../content/schema.ts';
import { type Audience, enqueueNotification } from '../notify/outbox.ts';
import type { ChannelName } from '../notify/types.ts';
import { readOrganisationNames } from '../organisations/organisations.ts';
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

/** Who acts on incidents, when, and on what content. */
export interface IncidentActor {
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

export interface IncidentContext extends IncidentActor {
  database: Database;
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
export class NoRecipients extends Error {}

const MAX_ORGANISATIONS = 50;

/**
 * Whom an incident's notices go to: one definition for publishing, previews, postmortems and maintenance
 * steps. Subscribers of a service it names, and of a group one of them is in (`group:<id>`,
 * src/core/content/groups.ts), or of every service.
 */
export function incidentAudience(
  kind: IncidentKind,
  componentIds: readonly string[],
  organisations: readonly number[] | null,
  content: readonly Component[],
): Audience {
  return {
    kind: 'topic',
    topic: kind === 'maintenance' ? 'maintenance' : 'incidents',
    components: [...componentIds, ...groupTopicKeysFor(content, componentIds)],
    ...(organisations ? { organisations: [...organisations] } : {}),
  };
}

/**
 * The organisations an incident is addressed to: their ids, or null for
 * everyone. An incident from before organisations were kept by staff has
 * only the company names typed then: those prove nothing, so it is
 * addressed to no one (`[]`), and `typed` keeps the names to show.
 */
export function audienceOrganisations(row: Pick<IncidentRow, 'audienceOrganisations' | 'audienceOrganisationIds'>): {
  ids: number[] | null;
  typed: string[] | null;
} {
  const typed = row.audienceOrganisations ?? null;
  if (row.audienceOrganisationIds) return { ids: row.audienceOrganisationIds, typed };
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
export async function updateProblem(
  ctx: IncidentContext,
  incidentId: number | null,
  input: UpdateInput & { kind?: IncidentKind },
): Promise<string | null> {
  const kind = incidentId === null ? input.kind : (await ctx.database.read((r) => incidentRow(r, incidentId)))?.kind;
  if (!kind || !incidentKinds.includes(kind)) return 'Choose what kind of incident this is.';
  return updateInputProblem(ctx, kind, input);
}

/** Why this update cannot go to an incident of this kind (status, text, services, promise), or null. */
export function updateInputProblem(ctx: Pick<IncidentActor, 'now' | 'components'>, kind: IncidentKind, input: UpdateInput): string | null {
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

/**
 * The personal-data guard on an update's text: refused unless confirmed; when confirmed, what to
 * audit (kinds and counts only: the audit log must not hold the data the guard found, nor a key
 * named "secret"), or null when nothing was found.
 */
export function personalDataGuard(
  input: Pick<UpdateInput, 'body' | 'confirmPersonalData'>,
): { ok: true; found: { kind: string; count: number }[] | null } | { ok: false; message: string; findings: Finding[] } {
  const findings = scanForPersonalData(input.body);
  if (findings.length === 0) return { ok: true, found: null };
  if (!input.confirmPersonalData) {
    return {
      ok: false,
      message: 'The update looks like it contains personal data or a secret. Redact it, or confirm that it must be published.',
      findings,
    };
  }
  const found = Object.entries(summariseFindings(findings))
    .filter(([, n]) => n > 0)
    .map(([kind, count]) => ({ kind, count }));
  return { ok: true, found };
}

async function guard(
  ctx: IncidentActor,
  tx: Tx,
  input: UpdateInput,
  incidentId: number | null,
): Promise<{ ok: true } | { ok: false; message: string; findings: Finding[] }> {
  const guarded = personalDataGuard(input);
  if (!guarded.ok) return guarded;
  if (guarded.found)
    await auditIncident(ctx, tx, 'incidents.personal_data_confirmed', incidentId === null ? 'incident:new' : `incident:${incidentId}`, {
      found: guarded.found,
    });
  return { ok: true };
}

/** The actor of an incident's audit entries: staff, or the system for the scheduler's own steps. */
export function incidentAuditInput(ctx: IncidentActor, action: AuditAction, target: string, summary: Record<string, unknown>) {
  return {
    actor: ctx.system ? ({ type: 'system' } as const) : ({ type: 'staff', id: ctx.actor.id, label: ctx.actor.label } as const),
    ip: ctx.ip,
    userAgent: ctx.userAgent,
    action,
    target,
    summary,
  };
}

/** Records what staff (or, for automatic steps, the system) did to an incident, in the transaction that did it. */
export async function auditIncident(
  ctx: IncidentActor,
  tx: Tx,
  action: AuditAction,
  target: string,
  summary: Record<string, unknown>,
): Promise<void> {
  await writeAudit(tx, incidentAuditInput(ctx, action, target, summary), ctx.now);
}

/** The window decides where new maintenance starts, and every service it names is what it takes down. */
function asAnnounced(input: UpdateInput & { window: MaintenanceWindow | null }, now: Date): Pick<UpdateInput, 'status' | 'components'> {
  return {
    status: input.window && input.window.startsAt > now ? 'scheduled' : 'in_progress',
    components: Object.fromEntries(Object.keys(input.components).map((id) => [id, 'under_maintenance' as const])),
  };
}

/**
 * Declares an incident. `within`, when given, runs in the same transaction once the incident exists
 * (an alert draft marks itself published there, src/core/alerts/drafts.ts); what it throws undoes the
 * declaration.
 */
export async function declareIncident(
  ctx: IncidentContext,
  input: DeclareInput,
  within?: (tx: Tx, incidentId: number) => Promise<void>,
): Promise<PublishResult> {
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
  const problem = updateInputProblem(ctx, input.kind, input);
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
  const isPublic = input.kind !== 'breach' || input.publicNotice;
  const declared = input;
  // One transaction: the incident, its breach facts and its first notice all exist, or none does.
  return refusedWhenNoRecipients(() =>
    ctx.database.transaction(async (tx): Promise<PublishResult> => {
      // In the transaction: an organisation deleted meanwhile is named, not addressed.
      const organisationIssue = await organisationsProblem(tx, organisations);
      if (organisationIssue) return { ok: false, message: organisationIssue };
      const guarded = await guard(ctx, tx, declared, null);
      if (!guarded.ok) return guarded;
      const incidentId = await insertIncident(tx, {
        kind: declared.kind,
        severity: declared.severity,
        title,
        status: declared.status,
        public: isPublic,
        audienceOrganisationIds: organisations.length ? organisations : null,
        // maintenance starts when its window opens
        startedAt: maintenance && maintenance.startsAt > ctx.now ? maintenance.startsAt : ctx.now,
        windowStartsAt: maintenance?.startsAt ?? null,
        windowEndsAt: maintenance?.endsAt ?? null,
        createdBy: ctx.actor.id,
        createdAt: ctx.now,
      });
      // The Art. 33(3) facts go after the guard ran on what staff wrote (the DPO's address is meant to be there).
      const breach = declared.kind === 'breach' ? declared.breach : null;
      if (breach) await saveBreachFields(tx, incidentId, breach);
      const published = await publish(
        ctx,
        tx,
        incidentId,
        breach ? { ...declared, body: `${declared.body.trim()}\n\n${breachNoticeSection(breach, ctx.site)}` } : declared,
        true,
      );
      await auditIncident(ctx, tx, 'incidents.declared', `incident:${incidentId}`, {
        ...(maintenance ? { window: { startsAt: maintenance.startsAt.toISOString(), endsAt: maintenance.endsAt.toISOString() } } : {}),
        kind: declared.kind,
        severity: declared.severity,
        components: Object.keys(declared.components),
        deliveries: published.deliveries,
        targeted: organisations.length > 0,
        ...(organisations.length ? { organisations } : {}),
        ...(published.confirmedNoRecipients ? { confirmedNoRecipients: true } : {}),
      });
      if (within) await within(tx, incidentId);
      return publishedResult(incidentId, published);
    }),
  );
}

/** Why these organisation ids cannot be an audience, or null. */
async function organisationsProblem(r: Reader | Tx, ids: readonly number[]): Promise<string | null> {
  if (ids.length > MAX_ORGANISATIONS) return `Choose at most ${MAX_ORGANISATIONS} organisations.`;
  if (ids.length === 0) return null;
  const names = await readOrganisationNames(r, ids);
  const missing = ids.filter((id) => !names.has(id));
  return missing.length
    ? `There is no customer organisation #${missing.join(', #')} (it may have been deleted): choose from the list.`
    : null;
}

export function publishedResult(
  incidentId: number,
  published: { updateId: number; notificationId: number | null; deliveries: number },
): PublishResult {
  return { ok: true, incidentId, updateId: published.updateId, notificationId: published.notificationId, deliveries: published.deliveries };
}

async function refusedWhenNoRecipients(run: () => Promise<PublishResult>): Promise<PublishResult> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof NoRecipients) return { ok: false, message: err.message, noRecipients: true };
    throw err;
  }
}

/** Why the incident as it stands takes no such update, or null. */
export function lifecycleProblem(
  current: { kind: IncidentKind; status: IncidentStatus },
  input: Pick<UpdateInput, 'status'>,
): string | null {
  if (current.status === 'resolved')
    return 'This incident is resolved: it takes no more updates. Declare a new incident if the problem came back.';
  if (current.kind === 'maintenance' && input.status === 'scheduled' && current.status !== 'scheduled')
    return 'This maintenance has already started: it cannot go back to scheduled.';
  return null;
}

export async function postUpdate(ctx: IncidentContext, incidentId: number, input: UpdateInput): Promise<PublishResult> {
  return refusedWhenNoRecipients(() => ctx.database.transaction((tx) => postUpdateIn(ctx, tx, incidentId, input)));
}

/**
 * postUpdate() in the caller's transaction: for the scheduler, whose claim of a scheduled update or
 * maintenance step commits with the update it publishes. A targeted notice that would reach no one
 * unconfirmed throws `NoRecipients`, rolling back the caller's transaction (the scheduler always confirms).
 */
export async function postUpdateIn(ctx: IncidentContext, tx: Tx, incidentId: number, input: UpdateInput): Promise<PublishResult> {
  // The incident's row, locked on PostgreSQL: a concurrent update waits, then checks the state this one leaves.
  const current = await incidentForUpdate(tx, incidentId);
  if (!current) return { ok: false, message: 'There is no such incident.' };
  const refused = lifecycleProblem(current, input) ?? updateInputProblem(ctx, current.kind, input);
  if (refused) return { ok: false, message: refused };
  const guarded = await guard(ctx, tx, input, incidentId);
  if (!guarded.ok) return guarded;
  const published = await publish(ctx, tx, incidentId, input, false);
  await auditIncident(ctx, tx, input.status === 'resolved' ? 'incidents.resolved' : 'incidents.updated', `incident:${incidentId}`, {
    before: { status: current.status },
    after: { status: input.status },
    components: input.components,
    deliveries: published.deliveries,
    ...(published.confirmedNoRecipients ? { confirmedNoRecipients: true } : {}),
  });
  return publishedResult(incidentId, published);
}

/**
 * The update, the incident's new state and its notice, in the caller's transaction (which holds the
 * incident's row: `incidentForUpdate`, or the insert that made it).
 */
async function publish(
  ctx: IncidentContext,
  tx: Tx,
  incidentId: number,
  input: UpdateInput,
  first: boolean,
): Promise<{ updateId: number; notificationId: number | null; deliveries: number; confirmedNoRecipients: boolean }> {
  const row = await incidentForUpdate(tx, incidentId);
  if (!row) throw new Error(`incident ${incidentId} vanished`);
  const resolved = input.status === 'resolved';
  const nextUpdateBy = promisedUpdate(ctx, row, input.status, input.nextUpdateBy ?? null);
  await setIncidentState(tx, incidentId, {
    status: input.status,
    nextUpdateBy,
    resolvedAt: resolved ? ctx.now : null,
    // Maintenance started early (or late) by hand has started now, not at the announced time.
    ...(row.kind === 'maintenance' &&
    row.status === 'scheduled' &&
    (input.status === 'in_progress' || input.status === 'monitoring') &&
    !first
      ? { startedAt: ctx.now }
      : {}),
  });
  // Announced and planned in one transaction: a crash cannot leave maintenance that never starts or ends.
  if (first && row.kind === 'maintenance' && row.windowStartsAt !== null && row.windowEndsAt !== null)
    await planMaintenance(tx, incidentId, { startsAt: row.windowStartsAt, endsAt: row.windowEndsAt }, ctx.now);
  for (const [id, status] of Object.entries(input.components)) await setIncidentComponent(tx, incidentId, id, status);
  // A resolved incident leaves every service it touched operational.
  if (resolved) await resolveIncidentComponents(tx, incidentId);
  const updateId = await insertUpdate(tx, {
    incidentId,
    status: input.status,
    body: input.body,
    publishedAt: ctx.now,
    createdBy: ctx.actor.id,
  });
  // The services' history, in this transaction: the scheduler's own steps are the maintenance's.
  await recordIncidentStates(tx, incidentId, updateId, ctx.system ? 'maintenance' : 'update', ctx.now);
  const view = await readIncident(tx, ctx.components, incidentId);
  if (!view) throw new Error(`incident ${incidentId} vanished`);
  const update: UpdateView = { id: updateId, status: input.status, body: input.body, publishedAt: ctx.now };
  const url = incidentUrl(ctx.publicUrl, incidentId);
  const addressed = audienceOrganisations(row);
  const audience = incidentAudience(
    row.kind,
    view.incident.components.map((c) => c.id),
    addressed.ids,
    ctx.components,
  );
  const notify = input.notify !== false;
  // The outbox: enqueued in this transaction, so the notice exists exactly when the update does.
  const { notificationId, deliveries } = notify
    ? await enqueueNotification(
        tx,
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
            worstDeclared: await worstDeclared(tx, incidentId),
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
      noRecipientsProblem(await audienceReach(tx, audience, addressed.typed)) ?? 'This targeted notice reaches no one.',
    );
  await setUpdateNotification(tx, updateId, notificationId, notify);
  // Maintenance keeps its own clock (the window); the cadence reminders are for incidents.
  await planReminders(tx, incidentId, nextUpdateBy === null || row.kind === 'maintenance' ? null : nextUpdateBy, ctx.now);
  if (row.kind === 'maintenance' && resolved) await cancelMaintenanceJobs(tx, incidentId, ctx.now);
  return { updateId, notificationId, deliveries, confirmedNoRecipients: empty };
}

/**
 * When the next public update is promised: the severity's cadence for
 * incidents; for maintenance under way, the end of its window (the
 * completion notice), and nothing while it is only scheduled.
 */
export function promisedUpdate(
  ctx: Pick<IncidentActor, 'now' | 'site'>,
  row: { kind: IncidentKind; severity: IncidentSeverity; windowEndsAt: Date | null },
  status: IncidentStatus,
  chosen: Date | null,
): Date | null {
  if (status === 'resolved') return null;
  if (row.kind === 'maintenance') return status === 'scheduled' ? null : row.windowEndsAt;
  return chosen ?? new Date(ctx.now.getTime() + cadenceMinutes(ctx.site, row.kind, row.severity) * 60_000);
}

export const incidentUrl = (publicUrl: URL, id: number) => new URL(`incidents/${id}`, publicUrl).href;

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

/** Incident rows as renderers get them, with their services named from the content. */
async function toViews(r: Reader | Tx, components: readonly Component[], rows: readonly IncidentRow[]): Promise<IncidentView[]> {
  const affected = await componentsOf(
    r,
    rows.map((row) => row.id),
  );
  return rows.map((row) => viewOf(components, row, affected.get(row.id) ?? []));
}

export function viewOf(
  components: readonly Component[],
  row: IncidentRow,
  affected: readonly { componentId: string; status: ComponentStatus }[],
): IncidentView {
  return {
    id: row.id,
    kind: row.kind,
    severity: row.severity,
    title: row.title,
    status: row.status,
    components: affected.map((a) => ({
      id: a.componentId,
      name: components.find((c) => c.id === a.componentId)?.name ?? a.componentId,
      status: a.status,
    })),
    startedAt: row.startedAt,
    resolvedAt: row.resolvedAt,
    nextUpdateBy: row.nextUpdateBy,
    window: row.windowStartsAt === null || row.windowEndsAt === null ? null : { startsAt: row.windowStartsAt, endsAt: row.windowEndsAt },
  };
}

const updateView = (u: UpdateWithEdit): UpdateView => ({
  id: u.id,
  status: u.status,
  body: u.body,
  publishedAt: u.publishedAt,
  notified: u.notified,
  editedAt: u.editedAt,
});

/** An incident with its updates (newest first), read in the caller's snapshot or transaction. */
export async function readIncident(r: Reader | Tx, components: readonly Component[], id: number): Promise<IncidentRecord | null> {
  const row = await incidentRow(r, id);
  if (!row) return null;
  const [view] = await toViews(r, components, [row]);
  if (!view) return null;
  const updates = await updatesOf(r, id);
  const addressed = audienceOrganisations(row);
  return {
    incident: view,
    public: row.public,
    organisations: addressed.ids,
    typedOrganisations: addressed.typed,
    updates: updates.map(updateView),
    editedAt: await incidentEditedAt(r, id),
  };
}

export function incidentView(database: Database, components: readonly Component[], id: number): Promise<IncidentRecord | null> {
  return database.read((r) => readIncident(r, components, id));
}

export interface IncidentListOptions {
  open?: boolean;
  resolved?: boolean;
  /** keyset paging (the staff API's cursor): incidents listed after this one */
  before?: { startedAt: Date; id: number };
  publicOnly?: boolean;
  since?: Date;
  /** only maintenance (true), or everything but maintenance (false) */
  maintenance?: boolean;
  limit?: number;
}

export async function readIncidents(
  r: Reader | Tx,
  components: readonly Component[],
  options: IncidentListOptions,
): Promise<IncidentView[]> {
  const rows = await incidentRows(r, { ...options, limit: Math.min(options.limit ?? 50, 500) });
  return toViews(r, components, rows);
}

export function listIncidents(database: Database, components: readonly Component[], options: IncidentListOptions): Promise<IncidentView[]> {
  return database.read((r) => readIncidents(r, components, options));
}

/**
 * Public incidents that touched the days from `from` to `to`: begun by `to`
 * (maintenance still waiting for its window has not) and not resolved before
 * `from`; open ones included. Newest first.
 */
export async function readPublicIncidentsBetween(
  r: Reader | Tx,
  components: readonly Component[],
  from: Date,
  to: Date,
  limit = 200,
): Promise<IncidentView[]> {
  return toViews(r, components, await publicIncidentRowsBetween(r, from, to, Math.min(limit, 500)));
}

/** Every update of an incident, newest first, each with when it was last edited. */
export async function readUpdates(r: Reader | Tx, incidentId: number): Promise<UpdateView[]> {
  return (await updatesOf(r, incidentId)).map(updateView);
}

/** The updates of several incidents, newest first within each, in one read. */
export async function readUpdatesOf(r: Reader | Tx, incidentIds: readonly number[]): Promise<Map<number, UpdateView[]>> {
  const byIncident = await updatesOfIncidents(r, incidentIds);
  return new Map([...byIncident].map(([id, rows]) => [id, rows.map(updateView)]));
}

/** The newest update of an incident, or null. */
export async function readLatestUpdate(r: Reader | Tx, incidentId: number): Promise<UpdateView | null> {
  const [latest] = await updatesOf(r, incidentId, 1);
  return latest ? updateView(latest) : null;
}

/** Each service's state now: the worst any open incident puts it in, and the state automation set last. */
export async function readCurrentComponentStatus(
  r: Reader | Tx,
  components: readonly Component[],
): Promise<{ component: Component; status: ComponentStatus }[]> {
  const rows = await openPublicComponentStates(r);
  // What monitoring (or the staff API) set last counts beside the open incidents (src/core/alerts).
  const automation = await latestAutomationStates(
    r,
    components.map((c) => c.id),
  );
  return components.map((component) => {
    const fromAutomation = automation.get(component.id);
    return {
      component,
      status: worstStatus([
        ...rows.filter((row) => row.componentId === component.id).map((row) => row.status),
        ...(fromAutomation ? [fromAutomation] : []),
      ]),
    };
  });
}

export interface Preview {
  findings: Finding[];
  content: ReturnType<typeof incidentMessages>;
  recipients: Partial<Record<ChannelName, number>>;
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
export async function incidentDraft(database: Database, id: number): Promise<IncidentDraft | null> {
  const row = await database.read((r) => incidentRow(r, id));
  if (!row) return null;
  const view = viewOf([], row, []);
  const addressed = audienceOrganisations(row);
  return {
    id,
    kind: view.kind,
    severity: view.severity,
    title: view.title,
    organisations: addressed.ids,
    typedOrganisations: addressed.typed,
    window: view.window,
  };
}

export async function previewIncidentUpdate(ctx: IncidentContext, draft: IncidentDraft, given: UpdateInput): Promise<Preview> {
  const existing = draft.id === null ? null : await incidentView(ctx.database, ctx.components, draft.id);
  const input =
    draft.id === null && draft.kind === 'maintenance' ? { ...given, ...asAnnounced({ ...given, window: draft.window }, ctx.now) } : given;
  const merged = new Map((existing?.incident.components ?? []).map((c) => [c.id, c]));
  for (const [id, status] of Object.entries(input.components))
    merged.set(id, { id, name: ctx.components.find((c) => c.id === id)?.name ?? id, status });
  const resolved = input.status === 'resolved';
  const window = existing?.incident.window ?? draft.window;
  const nextUpdateBy = promisedUpdate(ctx, { ...draft, windowEndsAt: window?.endsAt ?? null }, input.status, input.nextUpdateBy ?? null);
  const incident: IncidentView = {
    id: draft.id ?? 0,
    kind: draft.kind,
    severity: draft.severity,
    title: draft.title || 'Untitled incident',
    status: input.status,
    components: [...merged.values()].map((c) => (resolved ? { ...c, status: 'operational' } : c)),
    startedAt: existing?.incident.startedAt ?? (input.status === 'scheduled' && window ? window.startsAt : ctx.now),
    resolvedAt: resolved ? ctx.now : null,
    nextUpdateBy,
    window,
  };
  const previous = draft.id;
  const declaredBefore = previous === null ? null : await ctx.database.read((r) => worstDeclared(r, previous));
  const url = incidentUrl(ctx.publicUrl, draft.id ?? 0);
  const content = incidentMessages({
    organisation: ctx.site.organisation.name,
    incident,
    update: { id: 0, status: input.status, body: input.body, publishedAt: ctx.now },
    incidentUrl: url,
    first: draft.id === null,
    phase: draft.id === null ? 1 : (existing?.updates.length ?? 0) + 1,
    worstDeclared: worstStatus([...(declaredBefore === null ? [] : [declaredBefore]), ...[...merged.values()].map((c) => c.status)]),
    ...(window ? { calendarUrl: `${url}.ics` } : {}),
  });
  const audience = incidentAudience(
    draft.kind,
    incident.components.map((c) => c.id),
    draft.organisations,
    ctx.components,
  );
  const reach = await ctx.database.read((r) => audienceReach(r, audience, draft.typedOrganisations ?? null));
  return { findings: scanForPersonalData(input.body), content, recipients: reach.total, reach };
}

/** Each published update's notification and how many recipients it was enqueued for: whom it reached. */
export async function updateNotifications(
  database: Database,
  incidentId: number,
): Promise<Map<number, { notificationId: number; recipients: number }>> {
  const rows = await database.read((r) => updateNotificationCounts(r, incidentId));
  return new Map(rows.map((r) => [r.updateId, { notificationId: r.notificationId, recipients: r.recipients }]));
}

/**
 * Whom the next notice of a targeted incident reaches as things stand (the
 * update composer shows it before anything is written); null for an
 * incident addressed to every subscriber of the topic, or none.
 */
export async function incidentReach(
  database: Database,
  content: readonly Component[],
  id: number,
  alsoComponents: readonly string[] = [],
): Promise<AudienceReach | null> {
  const found = await database.read(async (r) => {
    const row = await incidentRow(r, id);
    return row ? { row, affected: (await componentsOf(r, [id])).get(id) ?? [] } : null;
  });
  if (!found) return null;
  const addressed = audienceOrganisations(found.row);
  if (addressed.ids === null) return null;
  const components = [...new Set([...found.affected.map((c) => c.componentId), ...alsoComponents])];
  const audience = incidentAudience(found.row.kind, components, addressed.ids, content);
  return database.read((r) => audienceReach(r, audience, addressed.typed));
}
