/**
 * Declaring and updating incidents. Each published update is one
 * transaction: the update, the incident's new state, the components' new
 * status and the notification with all its deliveries. Transitions only
 * move forward to resolved; a resolved incident takes no more updates.
 */
import type { Db } from '../../../db/client.ts';
import { recordAudit } from '../audit/log.ts';
import type { Component, Site } from '../content/schema.ts';
import { type Audience, countAudience, enqueueNotification } from '../notify/outbox.ts';
import { type BreachFields, breachFieldsProblem, breachNoticeSection, saveBreachFields } from './breach.ts';
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
  incidentStatuses,
  type UpdateView,
} from './types.ts';

export interface IncidentContext {
  db: Db;
  now: Date;
  site: Site;
  components: readonly Component[];
  publicUrl: URL;
  actor: { id: number; label: string };
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
}

export interface DeclareInput extends UpdateInput {
  kind: IncidentKind;
  severity: IncidentSeverity;
  title: string;
  /** empty: every subscriber of the topic */
  organisations: string[];
  /** breaches: shown on the public status page only when staff choose */
  publicNotice: boolean;
  /** breaches: the Art. 33(3) facts, required for the first notice */
  breach: BreachFields | null;
}

export type PublishResult =
  | { ok: true; incidentId: number; updateId: number; notificationId: number; deliveries: number }
  | { ok: false; message: string; findings?: Finding[] };

const MAX_BODY = 20_000;

/** Minutes until the next promised update, from content/site.yaml. */
export function cadenceMinutes(site: Site, kind: IncidentKind, severity: IncidentSeverity): number {
  return kind === 'breach' ? site.policies.updateCadenceMinutes.breach : site.policies.updateCadenceMinutes[severity];
}

function check(ctx: IncidentContext, input: UpdateInput): string | null {
  if (!incidentStatuses.includes(input.status)) return 'Choose a status.';
  if (input.body.trim() === '') return 'Write what is happening: an update cannot be empty.';
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
  audit(ctx, 'incidents.personal_data_confirmed', incidentId === null ? 'incident:new' : `incident:${incidentId}`, { found });
  return { ok: true };
}

function audit(
  ctx: IncidentContext,
  action: 'incidents.declared' | 'incidents.updated' | 'incidents.resolved' | 'incidents.personal_data_confirmed',
  target: string,
  summary: Record<string, unknown>,
): void {
  recordAudit(
    ctx.db,
    { actor: { type: 'staff', id: ctx.actor.id, label: ctx.actor.label }, ip: ctx.ip, userAgent: ctx.userAgent, action, target, summary },
    ctx.now,
  );
}

export function declareIncident(ctx: IncidentContext, input: DeclareInput): PublishResult {
  if (!incidentKinds.includes(input.kind)) return { ok: false, message: 'Choose what kind of incident this is.' };
  if (!incidentSeverities.includes(input.severity)) return { ok: false, message: 'Choose a severity.' };
  const title = input.title.trim();
  if (title === '' || title.length > 200) return { ok: false, message: 'Give the incident a title of at most 200 characters.' };
  if (input.status === 'resolved')
    return { ok: false, message: 'A new incident starts open: choose investigating, identified or monitoring.' };
  if (Object.keys(input.components).length === 0) return { ok: false, message: 'Choose at least one affected service.' };
  const problem = check(ctx, input);
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
  const guarded = guard(ctx, input, null);
  if (!guarded.ok) return guarded;
  const sqlite = ctx.db.$client;
  const isPublic = input.kind !== 'breach' || input.publicNotice;
  const organisations = input.organisations.map((o) => o.trim()).filter(Boolean);
  const incidentId = sqlite
    .transaction(() => {
      const { id } = sqlite
        .prepare(
          `INSERT INTO incidents (kind, severity, title, status, public, audience_organisations, started_at, created_by, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        )
        .get(
          input.kind,
          input.severity,
          title,
          input.status,
          isPublic ? 1 : 0,
          organisations.length ? JSON.stringify(organisations) : null,
          ctx.now.getTime(),
          ctx.actor.id,
          ctx.now.getTime(),
        ) as { id: number };
      return id;
    })
    .immediate();
  // The Art. 33(3) facts go after the guard ran on what staff wrote (the DPO's address is meant to be there).
  const breach = input.kind === 'breach' ? input.breach : null;
  if (breach) saveBreachFields(ctx.db, incidentId, breach);
  const published = publish(
    ctx,
    incidentId,
    breach ? { ...input, body: `${input.body.trim()}\n\n${breachNoticeSection(breach, ctx.site)}` } : input,
    true,
  );
  audit(ctx, 'incidents.declared', `incident:${incidentId}`, {
    kind: input.kind,
    severity: input.severity,
    components: Object.keys(input.components),
    deliveries: published.deliveries,
    targeted: organisations.length > 0,
  });
  return { ok: true, incidentId, ...published };
}

export function postUpdate(ctx: IncidentContext, incidentId: number, input: UpdateInput): PublishResult {
  const current = ctx.db.$client.prepare('SELECT status FROM incidents WHERE id = ?').get(incidentId) as
    | { status: IncidentStatus }
    | undefined;
  if (!current) return { ok: false, message: 'There is no such incident.' };
  if (current.status === 'resolved')
    return { ok: false, message: 'This incident is resolved: it takes no more updates. Declare a new incident if the problem came back.' };
  const problem = check(ctx, input);
  if (problem) return { ok: false, message: problem };
  const guarded = guard(ctx, input, incidentId);
  if (!guarded.ok) return guarded;
  const published = publish(ctx, incidentId, input, false);
  audit(ctx, input.status === 'resolved' ? 'incidents.resolved' : 'incidents.updated', `incident:${incidentId}`, {
    before: { status: current.status },
    after: { status: input.status },
    components: input.components,
    deliveries: published.deliveries,
  });
  return { ok: true, incidentId, ...published };
}

function publish(
  ctx: IncidentContext,
  incidentId: number,
  input: UpdateInput,
  first: boolean,
): { updateId: number; notificationId: number; deliveries: number } {
  const sqlite = ctx.db.$client;
  return sqlite
    .transaction(() => {
      const row = sqlite.prepare('SELECT kind, severity, audience_organisations FROM incidents WHERE id = ?').get(incidentId) as {
        kind: IncidentKind;
        severity: IncidentSeverity;
        audience_organisations: string | null;
      };
      const resolved = input.status === 'resolved';
      const nextUpdateBy = resolved ? null : ctx.now.getTime() + cadenceMinutes(ctx.site, row.kind, row.severity) * 60_000;
      sqlite
        .prepare('UPDATE incidents SET status = ?, next_update_by = ?, resolved_at = ? WHERE id = ?')
        .run(input.status, nextUpdateBy, resolved ? ctx.now.getTime() : null, incidentId);
      const setComponent = sqlite.prepare(
        'INSERT INTO incident_components (incident_id, component_id, status) VALUES (?, ?, ?) ON CONFLICT (incident_id, component_id) DO UPDATE SET status = excluded.status',
      );
      for (const [id, status] of Object.entries(input.components)) setComponent.run(incidentId, id, status);
      // A resolved incident leaves every service it touched operational.
      if (resolved) sqlite.prepare(`UPDATE incident_components SET status = 'operational' WHERE incident_id = ?`).run(incidentId);
      const { id: updateId } = sqlite
        .prepare('INSERT INTO incident_updates (incident_id, status, body, published_at, created_by) VALUES (?, ?, ?, ?, ?) RETURNING id')
        .get(incidentId, input.status, input.body, ctx.now.getTime(), ctx.actor.id) as { id: number };
      const view = incidentView(ctx.db, ctx.components, incidentId);
      if (!view) throw new Error(`incident ${incidentId} vanished`);
      const update: UpdateView = { id: updateId, status: input.status, body: input.body, publishedAt: ctx.now };
      const organisations = row.audience_organisations ? (JSON.parse(row.audience_organisations) as string[]) : null;
      const audience: Audience = {
        kind: 'topic',
        topic: row.kind === 'maintenance' ? 'maintenance' : 'incidents',
        components: view.incident.components.map((c) => c.id),
        ...(organisations ? { organisations } : {}),
      };
      const { notificationId, deliveries } = enqueueNotification(
        ctx.db,
        {
          kind: 'incident',
          title: `${view.incident.title}: ${input.status}`,
          threadKey: `incident:${incidentId}`,
          content: incidentMessages({
            organisation: ctx.site.organisation.name,
            incident: view.incident,
            update,
            incidentUrl: incidentUrl(ctx.publicUrl, incidentId),
            first,
          }),
          audience,
          createdBy: ctx.actor.id,
        },
        ctx.now,
      );
      sqlite.prepare('UPDATE incident_updates SET notification_id = ? WHERE id = ?').run(notificationId, updateId);
      planReminders(ctx.db, incidentId, nextUpdateBy === null ? null : new Date(nextUpdateBy), ctx.now);
      return { updateId, notificationId, deliveries };
    })
    .immediate();
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
  started_at: number;
  resolved_at: number | null;
  next_update_by: number | null;
}

export interface IncidentRecord {
  incident: IncidentView;
  public: boolean;
  organisations: string[] | null;
  updates: UpdateView[];
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
  };
}

export function incidentView(db: Db, components: readonly Component[], id: number): IncidentRecord | null {
  const row = db.$client.prepare('SELECT * FROM incidents WHERE id = ?').get(id) as IncidentRow | undefined;
  if (!row) return null;
  const updates = db.$client
    .prepare('SELECT id, status, body, published_at FROM incident_updates WHERE incident_id = ? ORDER BY published_at DESC, id DESC')
    .all(id) as {
    id: number;
    status: IncidentStatus;
    body: string;
    published_at: number;
  }[];
  return {
    incident: toView(db, components, row),
    public: row.public === 1,
    organisations: row.audience_organisations ? (JSON.parse(row.audience_organisations) as string[]) : null,
    updates: updates.map((u) => ({ id: u.id, status: u.status, body: u.body, publishedAt: new Date(u.published_at) })),
  };
}

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

const severityRank: Record<ComponentStatus, number> = {
  operational: 0,
  under_maintenance: 1,
  degraded: 2,
  partial_outage: 3,
  major_outage: 4,
};

/** Each service's state now: the worst any open incident puts it in. */
export function currentComponentStatus(db: Db, components: readonly Component[]): { component: Component; status: ComponentStatus }[] {
  const rows = db.$client
    .prepare(
      `SELECT c.component_id, c.status FROM incident_components c JOIN incidents i ON i.id = c.incident_id WHERE i.status != 'resolved' AND i.public = 1`,
    )
    .all() as { component_id: string; status: ComponentStatus }[];
  return components.map((component) => {
    const statuses = rows.filter((r) => r.component_id === component.id).map((r) => r.status);
    const worst = statuses.reduce<ComponentStatus>((w, s) => (severityRank[s] > severityRank[w] ? s : w), 'operational');
    return { component, status: worst };
  });
}

export interface Preview {
  findings: Finding[];
  content: ReturnType<typeof incidentMessages>;
  recipients: Partial<Record<'email' | 'sms' | 'slack' | 'webhook', number>>;
}

/** Exactly what each channel would send, and to how many, without publishing anything. */
export function previewIncidentUpdate(
  ctx: IncidentContext,
  draft: { id: number | null; kind: IncidentKind; severity: IncidentSeverity; title: string; organisations: string[] },
  input: UpdateInput,
): Preview {
  const existing = draft.id === null ? null : incidentView(ctx.db, ctx.components, draft.id);
  const merged = new Map((existing?.incident.components ?? []).map((c) => [c.id, c]));
  for (const [id, status] of Object.entries(input.components))
    merged.set(id, { id, name: ctx.components.find((c) => c.id === id)?.name ?? id, status });
  const resolved = input.status === 'resolved';
  const incident: IncidentView = {
    id: draft.id ?? 0,
    kind: draft.kind,
    severity: draft.severity,
    title: draft.title || 'Untitled incident',
    status: input.status,
    components: [...merged.values()].map((c) => (resolved ? { ...c, status: 'operational' } : c)),
    startedAt: existing?.incident.startedAt ?? ctx.now,
    resolvedAt: resolved ? ctx.now : null,
    nextUpdateBy: resolved ? null : new Date(ctx.now.getTime() + cadenceMinutes(ctx.site, draft.kind, draft.severity) * 60_000),
  };
  const content = incidentMessages({
    organisation: ctx.site.organisation.name,
    incident,
    update: { id: 0, status: input.status, body: input.body, publishedAt: ctx.now },
    incidentUrl: incidentUrl(ctx.publicUrl, draft.id ?? 0),
  });
  const audience: Audience = {
    kind: 'topic',
    topic: draft.kind === 'maintenance' ? 'maintenance' : 'incidents',
    components: incident.components.map((c) => c.id),
    ...(draft.organisations.length ? { organisations: draft.organisations } : {}),
  };
  return {
    findings: scanForPersonalData(input.body),
    content,
    recipients: countAudience(ctx.db, audience, ['email', 'sms', 'slack', 'webhook']),
  };
}
