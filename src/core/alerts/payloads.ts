/**
 * What the alert receivers accept (POST /api/v1/alerts/{alertmanager,grafana,generic}), as zod schemas
 * the OpenAPI document can be generated from, and the one shape every notice becomes (`AlertNotice`).
 *
 * - Alertmanager: the webhook_config payload, version "4" (prometheus.io/docs/alerting/latest/configuration/
 *   #webhook_config): version, groupKey, truncatedAlerts, status, receiver, groupLabels, commonLabels,
 *   commonAnnotations, externalURL, alerts[{status, labels, annotations, startsAt, endsAt, generatorURL,
 *   fingerprint}].
 * - Grafana unified alerting's webhook contact point (grafana.com/docs/grafana/latest/alerting/
 *   configure-notifications/manage-contact-points/integrations/webhook-notifier/): the same alerts[] with
 *   Grafana's additions (orgId, title, message, state, silenceURL, dashboardURL, panelURL, values…).
 * - Generic: Candor's own small document, one alert per request (`genericAlertSchema`).
 *
 * Unknown members are ignored (senders add fields between versions); a missing or mistyped one is
 * named by its path (`alerts[0].status`).
 */
import { z } from 'zod';
import type { alertSources } from '../../../db/schema/automation.ts';

export type AlertSource = (typeof alertSources)[number];

/**
 * Text in a payload: never a NUL or half of a surrogate pair. Neither is text, and PostgreSQL refuses
 * both in jsonb (the alert's detail is kept as received), so they are refused here with a 422.
 */
const text = () =>
  z
    .string()
    .refine((s) => !s.includes('\u0000') && s.isWellFormed(), { message: 'must be text without NUL characters or unpaired surrogates' });

const labelSet = z.record(text(), text());

/** One alert of an Alertmanager or Grafana payload. */
export const prometheusAlertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet,
  annotations: labelSet.default({}),
  startsAt: text().max(64).optional(),
  endsAt: text().max(64).optional(),
  generatorURL: text().max(2000).optional(),
  fingerprint: text().max(200).optional(),
});

/** An alert group at most this long; Alertmanager's `max_alerts` truncates larger groups on the sender's side. */
const MAX_ALERTS = 200;

export const alertmanagerPayloadSchema = z.object({
  version: z.literal('4'),
  groupKey: text().max(2000),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  status: z.enum(['firing', 'resolved']),
  receiver: text().max(200),
  groupLabels: labelSet,
  commonLabels: labelSet,
  commonAnnotations: labelSet,
  externalURL: text().max(2000),
  alerts: z.array(prometheusAlertSchema).min(1).max(MAX_ALERTS),
});

export const grafanaPayloadSchema = z.object({
  receiver: text().max(200).optional(),
  status: z.enum(['firing', 'resolved']),
  orgId: z.number().int().optional(),
  alerts: z
    .array(
      prometheusAlertSchema.extend({
        silenceURL: text().max(2000).optional(),
        dashboardURL: text().max(2000).optional(),
        panelURL: text().max(2000).optional(),
      }),
    )
    .min(1)
    .max(MAX_ALERTS),
  groupLabels: labelSet.optional(),
  commonLabels: labelSet.optional(),
  commonAnnotations: labelSet.optional(),
  externalURL: text().max(2000).optional(),
  version: text().max(20).optional(),
  groupKey: text().max(2000).optional(),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  title: text().max(2000).optional(),
  state: text().max(40).optional(),
  message: text().max(20_000).optional(),
});

/** Candor's generic alert: `component` is a service id of content/components.yaml. */
export const genericAlertSchema = z.object({
  component: text().min(1).max(100),
  status: z.enum(['firing', 'resolved']),
  title: text().trim().min(1).max(200),
  description: text().max(5000).optional(),
  severity: z.enum(['minor', 'major', 'critical']).optional(),
  /** tells repeats of one alert apart from another alert on the same service; default: the title */
  fingerprint: text().min(1).max(200).optional(),
});

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;
export type GrafanaPayload = z.infer<typeof grafanaPayloadSchema>;
export type GenericAlert = z.infer<typeof genericAlertSchema>;

/** One alert notice, whatever sent it. */
export interface AlertNotice {
  status: 'firing' | 'resolved';
  /** the alert's name (`alertname`, or the generic title): repeats of one alert share it */
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** what the sender says is wrong: summary, else description, else the name */
  summary: string;
  /** the sender's own fingerprint (generic: the one given), if any */
  senderFingerprint: string | null;
  startsAt: string | null;
  generatorURL: string | null;
}

export interface FieldError {
  field: string;
  message: string;
}

export type ReadResult = { ok: true; notices: AlertNotice[]; detail: Record<string, unknown> } | { ok: false; errors: FieldError[] };

/** `alerts[0].status` from zod's path. */
function fieldName(path: readonly PropertyKey[]): string {
  let name = '';
  for (const part of path) name += typeof part === 'number' ? `[${part}]` : `${name ? '.' : ''}${String(part)}`;
  return name || '(body)';
}

function errorsOf(error: z.ZodError): FieldError[] {
  return error.issues.slice(0, 20).map((issue) => ({ field: fieldName(issue.path), message: issue.message }));
}

function fromPrometheus(
  alert: z.infer<typeof prometheusAlertSchema>,
  common: { labels?: Record<string, string>; annotations?: Record<string, string> },
): AlertNotice {
  const labels = { ...common.labels, ...alert.labels };
  const annotations = { ...common.annotations, ...alert.annotations };
  const name = labels.alertname ?? alert.fingerprint ?? 'alert';
  return {
    status: alert.status,
    name,
    labels,
    annotations,
    summary: annotations.summary ?? annotations.description ?? name,
    senderFingerprint: alert.fingerprint ?? null,
    startsAt: alert.startsAt ?? null,
    generatorURL: alert.generatorURL ?? null,
  };
}

/** The notices of a payload from `source`, or each field that is wrong. */
export function readAlertPayload(source: AlertSource, body: unknown): ReadResult {
  if (source === 'alertmanager') {
    const parsed = alertmanagerPayloadSchema.safeParse(body);
    if (!parsed.success) return { ok: false, errors: errorsOf(parsed.error) };
    const p = parsed.data;
    return {
      ok: true,
      notices: p.alerts.map((a) => fromPrometheus(a, { labels: p.commonLabels, annotations: p.commonAnnotations })),
      detail: { receiver: p.receiver, groupKey: p.groupKey },
    };
  }
  if (source === 'grafana') {
    const parsed = grafanaPayloadSchema.safeParse(body);
    if (!parsed.success) return { ok: false, errors: errorsOf(parsed.error) };
    const p = parsed.data;
    return {
      ok: true,
      notices: p.alerts.map((a) => fromPrometheus(a, { labels: p.commonLabels ?? {}, annotations: p.commonAnnotations ?? {} })),
      detail: { receiver: p.receiver ?? null, orgId: p.orgId ?? null },
    };
  }
  const parsed = genericAlertSchema.safeParse(body);
  if (!parsed.success) return { ok: false, errors: errorsOf(parsed.error) };
  const g = parsed.data;
  return {
    ok: true,
    notices: [
      {
        status: g.status,
        name: g.fingerprint ?? g.title,
        labels: { component: g.component, ...(g.severity ? { severity: g.severity } : {}) },
        annotations: { summary: g.title, ...(g.description ? { description: g.description } : {}) },
        summary: g.title,
        senderFingerprint: g.fingerprint ?? null,
        startsAt: null,
        generatorURL: null,
      },
    ],
    detail: {},
  };
}

/** PUT /api/v1/components/{id}/status: the state automation sets on a service, and why (kept in the audit log). */
export const componentStatusBodySchema = z.object({
  status: z.enum(['operational', 'degraded', 'partial_outage', 'major_outage', 'under_maintenance']),
  note: text().trim().max(500).optional(),
});

export type ComponentStatusBody = z.infer<typeof componentStatusBodySchema>;

const componentStatusEnum = componentStatusBodySchema.shape.status;

/** What each alert of a payload did (the receivers' 202 answer lists one per alert). */
export const alertOutcomeSchema = z.object({
  alert: text(),
  status: z.enum(['firing', 'resolved']),
  /** the service it mapped to; null: none */
  component: text().nullable(),
  /** the draft it opened, folded into or resolved */
  draft: z.number().int().nullable(),
  result: z.enum(['opened', 'folded', 'resolved', 'unmatched', 'no-open-draft']),
  /** the incident a service with autoPublish declared */
  incident: z.number().int().optional(),
  /** why autoPublish could not declare it (the draft waits for a person) */
  publishRefused: text().optional(),
});

/** The receivers' answer: 202 Accepted. */
export const alertReceiptSchema = z.object({
  received: z.number().int(),
  alerts: z.array(alertOutcomeSchema),
  /** how many matched no service, with what to change */
  unmatched: z.number().int().optional(),
  message: text().optional(),
});

/** PUT /api/v1/components/{id}/status's answer: 200. */
export const componentStatusResultSchema = z.object({
  component: text(),
  status: componentStatusEnum,
  previous: componentStatusEnum,
  changed: z.boolean(),
});
