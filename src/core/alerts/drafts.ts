/**
 * Alerts from monitoring → service states and draft incidents (issue 17, "Alerts in").
 *
 * A notice (src/core/alerts/payloads.ts) is mapped to a service of content/components.yaml by its
 * `component` / `candor_component` label, or by a service's `alerts.match` labels. Unmapped, it is
 * recorded (an alert_events row without a draft) and audited, so the sender's configuration can be fixed.
 * Mapped and firing, it opens a draft incident prefilled from the "investigating" template, or folds
 * into the open draft of the same alert (source, service, alert name): a repeat counts, a repeat after
 * a resolved notice is a flap. Staff are told once per draft. A service with `alerts.autoPublish`
 * publishes its drafts at once, as the token's creator; else a person publishes from the console.
 * A resolved notice marks the draft's alert resolved; for a published draft that proposes resolving
 * its incident (a person posts the resolved update from the draft's page).
 *
 * The service's automation state (component_states rows of source 'automation', no incident) is the
 * worst state its open, still firing drafts set, and 'operational' when none fires: recomputed after
 * every notice, dismissal and resolution, and written only when it changes. The staff API's
 * PUT /api/v1/components/{id}/status writes the same state directly (`setAutomationState`).
 */

import type { z } from 'zod';
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  type AlertDraftRow,
  alertDraftById,
  claimDraftPublished,
  closeDraft,
  firingStatusesOf,
  foldFiring,
  insertAlertDraft,
  insertAlertEvent,
  lockAlerts,
  markAlertResolved,
  openDraftByFingerprint,
} from '../../stores/alerts.ts';
import { insertStates, latestAutomationStates } from '../../stores/component-states.ts';
import { incidentRow } from '../../stores/incidents.ts';
import type { AuditAction } from '../audit/actions.ts';
import { type AuditActor, writeAudit } from '../audit/log.ts';
import type { TemplateSource } from '../content/load.ts';
import type { Component } from '../content/schema.ts';
import {
  declareIncident,
  type IncidentContext,
  NoRecipients,
  type PublishResult,
  postUpdateIn,
  previewIncidentUpdate,
} from '../incidents/incidents.ts';
import type { Finding } from '../incidents/pii-guard.ts';
import { fillTemplate, templateValues } from '../incidents/templates.ts';
import { type ComponentStatus, componentStatusLabels, worstStatus } from '../incidents/types.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';
import type { AlertNotice, AlertSource, alertOutcomeSchema } from './payloads.ts';

export type AlertStatus = AlertDraftRow['componentStatus'];
export type AlertSeverity = AlertDraftRow['severity'];

/** Who sent the notices: the token (by its prefix, never the secret) and the staff member it acts for. */
export interface AlertCaller {
  tokenId: number;
  prefix: string;
  actor: { id: number; label: string };
  /**
   * whether the token may declare incidents itself (it holds incidents.manage): a service's
   * `autoPublish` publishes only for such a token; for one that only sends alerts the draft waits
   */
  mayDeclare: boolean;
}

export interface AlertContext {
  database: Database;
  now: Date;
  site: IncidentContext['site'];
  components: readonly Component[];
  templates: readonly TemplateSource[];
  publicUrl: URL;
  staff: StaffChannels;
  ip: string | null;
  userAgent: string | null;
}

export type AlertOutcome = z.infer<typeof alertOutcomeSchema>;

const SEVERITY_WORDS: Record<string, AlertSeverity> = {
  critical: 'critical',
  page: 'critical',
  major: 'major',
  high: 'major',
  error: 'major',
  minor: 'minor',
  warning: 'minor',
  low: 'minor',
  info: 'minor',
};

/** The state an alert of this severity sets when the service's mapping names none. */
const STATUS_BY_SEVERITY: Record<AlertSeverity, AlertStatus> = {
  critical: 'major_outage',
  major: 'partial_outage',
  minor: 'degraded',
};

/** The service a notice is about: its `component`/`candor_component` label, else the first service whose `alerts.match` it meets. */
export function componentFor(labels: Record<string, string>, components: readonly Component[]): Component | null {
  const named = labels.component ?? labels.candor_component;
  if (named !== undefined) return components.find((c) => c.id === named) ?? null;
  return (
    components.find((c) => {
      const match = c.alerts?.match;
      return match !== undefined && Object.keys(match).length > 0 && Object.entries(match).every(([k, v]) => labels[k] === v);
    }) ?? null
  );
}

/** Severity: the `severity` label (critical/major/minor and the usual words for them), else the mapping's, else major. */
export function severityOf(labels: Record<string, string>, component: Component): AlertSeverity {
  const word = labels.severity?.trim().toLowerCase();
  return (word && Object.hasOwn(SEVERITY_WORDS, word) ? SEVERITY_WORDS[word] : undefined) ?? component.alerts?.severity ?? 'major';
}

export function statusOf(severity: AlertSeverity, component: Component): AlertStatus {
  return component.alerts?.status ?? STATUS_BY_SEVERITY[severity];
}

/** Stands where the service id goes in the fingerprint of a notice that matched none (service ids are slugs). */
const UNMATCHED = '?';

/** One draft per alert: source, service and the alert's name. */
export const fingerprintOf = (source: AlertSource, componentId: string, notice: AlertNotice) =>
  `${source}:${componentId}:${notice.name}`.slice(0, 400);

/** A draft's first update: the outage template for "investigating" (content/templates), naming the service. */
export function draftText(ctx: Pick<AlertContext, 'site' | 'templates'>, component: Component): { title: string; body: string } {
  // The state is in every message's subject already ("[Partial outage] …"): the title names the service.
  const title = `Problems with ${component.name}`;
  const template = ctx.templates.find((t) => t.kinds?.includes('outage') && t.status === 'investigating');
  const values = templateValues({ site: ctx.site, title, services: [component.name], window: null });
  const body = template
    ? fillTemplate(template.body, values)
    : `We are investigating a problem with ${component.name}. We will post the next update soon.`;
  return { title, body };
}

/** The resolved update a resolved alert proposes: the outage template for "resolved", with the time filled in. */
export function resolvedText(ctx: Pick<AlertContext, 'site' | 'templates'>, component: Component, since: Date): string {
  const template = ctx.templates.find((t) => t.kinds?.includes('outage') && t.status === 'resolved');
  const time = `${since.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  if (!template) return `This incident is resolved: ${component.name} has been working normally since ${time}.`;
  return fillTemplate(template.body, templateValues({ site: ctx.site, title: '', services: [component.name], window: null })).replace(
    /_time \(UTC\)_/g,
    time,
  );
}

async function audit(
  tx: Tx,
  ctx: Pick<AlertContext, 'ip' | 'userAgent' | 'now'>,
  actor: AuditActor,
  action: AuditAction,
  target: string | null,
  summary: Record<string, unknown>,
): Promise<void> {
  await writeAudit(tx, { actor, ip: ctx.ip, userAgent: ctx.userAgent, action, target, summary }, ctx.now);
}

const staffActor = (actor: { id: number; label: string }): AuditActor => ({ type: 'staff', id: actor.id, label: actor.label });

/**
 * Makes the service's automation state the worst its firing drafts set ('operational' when none fires),
 * writing a component_states row only when that changes. In the caller's transaction, which holds `lockAlerts`.
 */
export async function settleAutomationState(tx: Tx, componentId: string, now: Date): Promise<ComponentStatus | null> {
  const wanted = worstStatus(await firingStatusesOf(tx, componentId));
  const current = (await latestAutomationStates(tx, [componentId])).get(componentId) ?? 'operational';
  if (wanted === current) return null;
  await insertStates(tx, [{ componentId, status: wanted, since: now, incidentId: null, updateId: null, source: 'automation' }]);
  return wanted;
}

/** Whether a published draft's incident is resolved or gone. */
async function incidentOver(tx: Tx, draft: AlertDraftRow): Promise<boolean> {
  if (draft.state !== 'published') return false;
  if (draft.incidentId === null) return true;
  const incident = await incidentRow(tx, draft.incidentId);
  return !incident || incident.status === 'resolved';
}

/** What the event keeps of a notice: labels, annotations and where it came from (no secret travels in a payload). */
function eventDetail(notice: AlertNotice, detail: Record<string, unknown>): Record<string, unknown> {
  return {
    ...detail,
    name: notice.name,
    summary: notice.summary,
    labels: notice.labels,
    annotations: notice.annotations,
    ...(notice.startsAt ? { startsAt: notice.startsAt } : {}),
    ...(notice.generatorURL ? { generatorURL: notice.generatorURL } : {}),
    ...(notice.senderFingerprint ? { fingerprint: notice.senderFingerprint } : {}),
  };
}

export const draftConsoleUrl = (publicUrl: URL, id: number) => new URL(`console/alerts/${id}`, publicUrl).href;

/** Records and acts on each notice of one payload, one transaction per notice. */
export async function receiveAlerts(
  ctx: AlertContext,
  caller: AlertCaller,
  source: AlertSource,
  notices: readonly AlertNotice[],
  detail: Record<string, unknown>,
): Promise<AlertOutcome[]> {
  const outcomes: AlertOutcome[] = [];
  const actor = staffActor(caller.actor);
  for (const notice of notices) {
    const component = componentFor(notice.labels, ctx.components);
    // `?` for no service: never a service id (content ids are lower-case words), so the console can list these apart.
    const fingerprint = fingerprintOf(source, component?.id ?? UNMATCHED, notice);
    const outcome = await ctx.database.transaction(async (tx): Promise<AlertOutcome> => {
      await lockAlerts(tx);
      const base = { alert: notice.name, status: notice.status, component: component?.id ?? null };
      const event = {
        tokenId: caller.tokenId,
        source,
        fingerprint,
        status: notice.status,
        detail: eventDetail(notice, detail),
        receivedAt: ctx.now,
      };
      const summary = { source, prefix: caller.prefix, alert: notice.name, status: notice.status };
      if (!component) {
        await insertAlertEvent(tx, { ...event, draftId: null });
        await audit(tx, ctx, actor, 'alert.received', null, { ...summary, matched: false, labels: Object.keys(notice.labels).sort() });
        return { ...base, draft: null, result: 'unmatched' };
      }
      let open = await openDraftByFingerprint(tx, fingerprint);
      // A published draft whose incident staff resolved (or deleted) on its own page is over: closed here,
      // so the alert firing again opens a new draft and tells staff, instead of folding into a finished one.
      if (open && (await incidentOver(tx, open))) {
        await closeDraft(tx, open.id, { by: null, at: ctx.now, dismissed: false });
        await audit(tx, ctx, { type: 'system' }, 'alert.draft.closed', `alert-draft:${open.id}`, {
          incident: open.incidentId,
          resolvedElsewhere: true,
        });
        open = undefined;
      }
      if (notice.status === 'resolved') {
        await insertAlertEvent(tx, { ...event, draftId: open?.id ?? null });
        if (open) await markAlertResolved(tx, open.id, ctx.now);
        const state = await settleAutomationState(tx, component.id, ctx.now);
        await audit(tx, ctx, actor, 'alert.received', open ? `alert-draft:${open.id}` : null, {
          ...summary,
          component: component.id,
          ...(state ? { componentState: state } : {}),
          ...(open ? {} : { openDraft: false }),
        });
        return { ...base, draft: open?.id ?? null, result: open ? 'resolved' : 'no-open-draft' };
      }
      if (open) {
        const flap = open.alertResolvedAt !== null;
        await foldFiring(tx, open.id, ctx.now);
        await insertAlertEvent(tx, { ...event, draftId: open.id });
        const state = await settleAutomationState(tx, component.id, ctx.now);
        await audit(tx, ctx, actor, 'alert.received', `alert-draft:${open.id}`, {
          ...summary,
          component: component.id,
          folded: true,
          ...(flap ? { flap: true } : {}),
          ...(state ? { componentState: state } : {}),
        });
        return { ...base, draft: open.id, result: 'folded' };
      }
      const severity = severityOf(notice.labels, component);
      const componentStatus = statusOf(severity, component);
      const text = draftText(ctx, component);
      const draft = await insertAlertDraft(tx, {
        fingerprint,
        source,
        componentId: component.id,
        componentStatus,
        severity,
        title: text.title,
        body: text.body,
        state: 'waiting',
        firstFiringAt: ctx.now,
        lastFiringAt: ctx.now,
        firingCount: 1,
        flaps: 0,
        createdAt: ctx.now,
      });
      await insertAlertEvent(tx, { ...event, draftId: draft.id });
      const state = await settleAutomationState(tx, component.id, ctx.now);
      await audit(tx, ctx, actor, 'alert.received', `alert-draft:${draft.id}`, { ...summary, component: component.id });
      await audit(tx, ctx, actor, 'alert.draft.opened', `alert-draft:${draft.id}`, {
        source,
        prefix: caller.prefix,
        component: component.id,
        componentStatus,
        severity,
        autoPublish: component.alerts?.autoPublish === true,
        ...(state ? { componentState: state } : {}),
      });
      // Once per draft: repeats and flaps fold in silently.
      const autoPublish = component.alerts?.autoPublish === true && caller.mayDeclare;
      await notifyStaff(
        tx,
        ctx.staff,
        {
          kind: 'staff-alert',
          subject: `Alert: ${componentStatusLabels[componentStatus]} on ${component.name}`,
          text: `Monitoring (${source}) reports "${notice.summary.slice(0, 300)}" on ${component.name}; its state is now ${componentStatusLabels[componentStatus].toLowerCase()}. ${
            autoPublish
              ? 'The service publishes alert incidents by itself: the draft is being published.'
              : 'A draft incident waits for a person to publish or dismiss it'
          }: ${draftConsoleUrl(ctx.publicUrl, draft.id)}`,
        },
        ctx.now,
      );
      return { ...base, draft: draft.id, result: 'opened' };
    });
    if (outcome.result === 'opened' && outcome.draft !== null && component?.alerts?.autoPublish && !caller.mayDeclare) {
      outcome.publishRefused = `The service publishes alert incidents by itself, but this token (${caller.prefix}…) does not hold incidents.manage: the draft waits for a person.`;
    } else if (outcome.result === 'opened' && outcome.draft !== null && component?.alerts?.autoPublish) {
      const published = await publishDraft({ ...ctx, actor: caller.actor }, outcome.draft, null, { via: 'auto', prefix: caller.prefix });
      if (published.ok) outcome.incident = published.incidentId;
      else outcome.publishRefused = published.message;
    }
    outcomes.push(outcome);
  }
  return outcomes;
}

/** Someone published or dismissed the draft first: the declaration in progress is undone. */
class DraftTaken extends Error {}

export interface DraftEdits {
  title: string;
  body: string;
  confirmPersonalData: boolean;
}

export type Acting = AlertContext & { actor: { id: number; label: string } };

function incidentContextOf(ctx: Acting): IncidentContext {
  return {
    database: ctx.database,
    now: ctx.now,
    site: ctx.site,
    components: ctx.components,
    publicUrl: ctx.publicUrl,
    actor: ctx.actor,
    ip: ctx.ip,
    userAgent: ctx.userAgent,
  };
}

/**
 * Publishes a waiting draft: declares its incident through the normal flow (the same checks and
 * personal-data guard as the composer), with the draft's text or a person's edits, and marks the draft
 * published in the same transaction, so two people publishing at once declare one incident.
 */
export async function publishDraft(
  ctx: Acting,
  draftId: number,
  edits: DraftEdits | null,
  how: { via: 'console' } | { via: 'auto'; prefix: string },
): Promise<PublishResult> {
  const draft = await ctx.database.read((r) => alertDraftById(r, draftId));
  if (!draft) return { ok: false, message: 'There is no such alert draft.' };
  if (draft.state !== 'waiting' || draft.closedAt !== null)
    return { ok: false, message: `This draft was already ${draft.state === 'published' ? 'published' : 'dismissed'}.` };
  const title = (edits?.title ?? draft.title).trim();
  const body = edits?.body ?? draft.body;
  try {
    return await declareIncident(
      incidentContextOf(ctx),
      {
        kind: 'outage',
        severity: draft.severity,
        title,
        status: 'investigating',
        body,
        components: { [draft.componentId]: draft.componentStatus },
        confirmPersonalData: edits?.confirmPersonalData ?? false,
        organisations: [],
        publicNotice: true,
        breach: null,
        window: null,
      },
      async (tx, incidentId) => {
        const claimed = await claimDraftPublished(tx, draftId, { incidentId, by: ctx.actor.id, at: ctx.now, title, body });
        if (!claimed) throw new DraftTaken();
        await audit(tx, ctx, staffActor(ctx.actor), 'alert.draft.published', `alert-draft:${draftId}`, {
          incident: incidentId,
          source: draft.source,
          component: draft.componentId,
          ...(how.via === 'auto' ? { autoPublish: true, prefix: how.prefix } : {}),
          ...(edits && (edits.title.trim() !== draft.title || edits.body !== draft.body) ? { edited: true } : {}),
        });
      },
    );
  } catch (err) {
    if (err instanceof DraftTaken) return { ok: false, message: 'Someone published or dismissed this draft first.' };
    throw err;
  }
}

/** Dismisses a waiting draft (a false alarm, or an alert that resolved by itself): the service's automation state follows. */
export async function dismissDraft(ctx: Acting, draftId: number): Promise<{ ok: true } | { ok: false; message: string }> {
  return ctx.database.transaction(async (tx) => {
    await lockAlerts(tx);
    const draft = await alertDraftById(tx, draftId);
    if (!draft) return { ok: false, message: 'There is no such alert draft.' };
    if (!(await closeDraft(tx, draftId, { by: ctx.actor.id, at: ctx.now, dismissed: true })))
      return { ok: false, message: 'Only a draft waiting for a person can be dismissed.' };
    const state = await settleAutomationState(tx, draft.componentId, ctx.now);
    await audit(tx, ctx, staffActor(ctx.actor), 'alert.draft.dismissed', `alert-draft:${draftId}`, {
      source: draft.source,
      component: draft.componentId,
      alertResolved: draft.alertResolvedAt !== null,
      ...(state ? { componentState: state } : {}),
    });
    return { ok: true };
  });
}

/**
 * The proposal of a resolved alert, accepted: posts the resolved update to the draft's incident through
 * the normal flow (postUpdate), the service operational, and closes the draft, in one transaction.
 */
export async function resolveDraftIncident(
  ctx: Acting,
  draftId: number,
  given: { body: string; confirmPersonalData: boolean },
): Promise<PublishResult> {
  try {
    return await ctx.database.transaction(async (tx): Promise<PublishResult> => {
      await lockAlerts(tx);
      const draft = await alertDraftById(tx, draftId);
      if (!draft) return { ok: false, message: 'There is no such alert draft.' };
      if (draft.state !== 'published' || draft.incidentId === null || draft.closedAt !== null)
        return { ok: false, message: 'Only a published draft whose incident is still open can resolve it.' };
      if (await incidentOver(tx, draft)) {
        await closeDraft(tx, draftId, { by: ctx.actor.id, at: ctx.now, dismissed: false });
        await audit(tx, ctx, staffActor(ctx.actor), 'alert.draft.closed', `alert-draft:${draftId}`, {
          incident: draft.incidentId,
          resolvedElsewhere: true,
        });
        return { ok: false, message: 'The incident was already resolved on its own page: the draft is closed, nothing was sent.' };
      }
      if (draft.alertResolvedAt === null)
        return {
          ok: false,
          message: 'The alert is still firing. Resolve the incident from its own page if the service is working again regardless.',
        };
      const result = await postUpdateIn(incidentContextOf(ctx), tx, draft.incidentId, {
        status: 'resolved',
        body: given.body,
        components: { [draft.componentId]: 'operational' },
        confirmPersonalData: given.confirmPersonalData,
      });
      if (!result.ok) return result;
      await closeDraft(tx, draftId, { by: ctx.actor.id, at: ctx.now, dismissed: false });
      await settleAutomationState(tx, draft.componentId, ctx.now);
      await audit(tx, ctx, staffActor(ctx.actor), 'alert.draft.closed', `alert-draft:${draftId}`, {
        incident: draft.incidentId,
        resolved: true,
        source: draft.source,
        component: draft.componentId,
      });
      return result;
    });
  } catch (err) {
    if (err instanceof NoRecipients) return { ok: false, message: err.message, noRecipients: true };
    throw err;
  }
}

/**
 * The staff API's "set component status": writes the service's automation state as given (a
 * component_states row of source 'automation'), audited with the token and the note. Alerts recompute
 * the state when their next notice arrives.
 */
export async function setAutomationState(
  ctx: Pick<AlertContext, 'database' | 'now' | 'components' | 'ip' | 'userAgent'>,
  caller: AlertCaller,
  componentId: string,
  input: { status: ComponentStatus; note?: string | undefined },
): Promise<{ ok: true; changed: boolean; previous: ComponentStatus } | { ok: false; notFound: true; message: string }> {
  if (!ctx.components.some((c) => c.id === componentId))
    return { ok: false, notFound: true, message: `There is no service "${componentId.slice(0, 100)}" in content/components.yaml.` };
  return ctx.database.transaction(async (tx) => {
    await lockAlerts(tx);
    const previous = (await latestAutomationStates(tx, [componentId])).get(componentId) ?? 'operational';
    const changed = previous !== input.status;
    if (changed)
      await insertStates(tx, [
        { componentId, status: input.status, since: ctx.now, incidentId: null, updateId: null, source: 'automation' },
      ]);
    await audit(tx, ctx, staffActor(caller.actor), 'component.status.set', `component:${componentId}`, {
      prefix: caller.prefix,
      before: previous,
      after: input.status,
      changed,
      ...(input.note ? { note: input.note } : {}),
    });
    return { ok: true, changed, previous };
  });
}

/** What publishing a waiting draft as it stands would send, and to how many (the composer's preview). */
export async function draftPreview(
  ctx: Acting,
  draft: AlertDraftRow,
): Promise<{
  recipients: Awaited<ReturnType<typeof previewIncidentUpdate>>['recipients'];
  emailSubject: string | null;
  findings: Finding[];
}> {
  const preview = await previewIncidentUpdate(
    incidentContextOf(ctx),
    { id: null, kind: 'outage', severity: draft.severity, title: draft.title, organisations: null, window: null },
    {
      status: 'investigating',
      body: draft.body,
      components: { [draft.componentId]: draft.componentStatus },
      confirmPersonalData: false,
    },
  );
  return { recipients: preview.recipients, emailSubject: preview.content.email?.subject ?? null, findings: preview.findings };
}
