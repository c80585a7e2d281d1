/**
 * The staff API's operations (/api/v1, issue 17), one registry: for each, its method and path, the
 * permission its token must hold (the console's own table, src/core/auth/permissions.ts), and the zod
 * schemas of its path, query, body and answer. The endpoints (src/pages/api/v1/…) validate requests
 * with these schemas (src/lib/api/endpoint.ts), and the OpenAPI document (/api/openapi.json,
 * src/lib/api/openapi.ts) and the reference page (/api/reference) are generated from them, so what is
 * documented is what is checked. To add an operation: define it here, add it to `apiOperations`, and
 * write its endpoint with `endpoint(operation, handler)`.
 */
import { z } from 'zod';
import {
  type AlertSource,
  alertmanagerPayloadSchema,
  alertReceiptSchema,
  componentStatusBodySchema,
  componentStatusResultSchema,
  genericAlertSchema,
  grafanaPayloadSchema,
} from '../../core/alerts/payloads.ts';
import type { Permission } from '../../core/auth/permissions.ts';
import { componentStatuses, incidentKinds, incidentSeverities, incidentStatuses } from '../../core/incidents/types.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiOperation<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
> {
  /** the OpenAPI operationId */
  id: string;
  method: HttpMethod;
  /** OpenAPI style: `/api/v1/incidents/{id}` */
  path: string;
  summary: string;
  description: string;
  permission: Permission;
  params: P;
  query: Q;
  /** null: the operation takes no body */
  body: B | null;
  success: { status: 200 | 201 | 202; description: string; schema: R };
  /** problem statuses this operation answers besides those every operation may (400, 401, 403, 429, 500; 413 with a body) */
  problems: readonly number[];
  /** a request body for the reference page's curl example */
  example?: unknown;
  /**
   * false: a POST that takes no `Idempotency-Key` (the alert receivers: monitoring tools send none, and a
   * repeated notice folds into its draft by itself)
   */
  idempotencyKey?: false;
}

/** Texts are refused (422) when they hold a NUL or half of a surrogate pair: neither is text, and PostgreSQL cannot store a NUL. */
const wellFormed = (s: string) => !s.includes('\u0000') && s.isWellFormed();
const WELL_FORMED = { message: 'must be text without NUL characters or unpaired surrogates' };
export const apiText = (max: number) => z.string().max(max).refine(wellFormed, WELL_FORMED);
const requiredText = (max: number) => z.string().trim().min(1).max(max).refine(wellFormed, WELL_FORMED);
const dateTime = () => z.iso.datetime({ offset: true });
const rowIdPattern = /^[1-9]\d{0,9}$/;

const noParams = z.strictObject({});
const idParams = z.strictObject({ id: z.string().regex(rowIdPattern).describe('the row id, a positive whole number') });
const noQuery = z.object({});

const componentsMap = z
  .record(z.string().max(100).refine(wellFormed, WELL_FORMED), z.enum(componentStatuses))
  .describe('service id (content/components.yaml) → its status after this update');
const organisationIds = z
  .array(z.number().int().positive().max(2_147_483_647))
  .max(50)
  .describe('customer organisations to address (ids); omitted or empty: every subscriber of the topic');
const confirmations = {
  confirmPersonalData: z.boolean().default(false).describe('publish although the personal-data guard flagged the text (audited)'),
  confirmNoRecipients: z.boolean().default(false).describe('publish a targeted notice that reaches no one (audited)'),
};

const breachFacts = z
  .strictObject({
    awareAt: dateTime().describe('when you became aware of the breach'),
    occurredAt: dateTime().nullish(),
    nature: apiText(5000),
    subjects: apiText(5000).describe('categories and approximate number of data subjects'),
    records: apiText(5000).describe('categories and approximate number of records'),
    consequences: apiText(5000),
    measures: apiText(5000),
  })
  .describe('the GDPR Art. 33(3) facts; required for a breach');

export const declareIncidentBody = z.strictObject({
  kind: z.enum(incidentKinds.filter((k) => k !== 'maintenance') as ['outage', 'security', 'breach']),
  severity: z.enum(incidentSeverities),
  title: requiredText(200),
  status: z.enum(['investigating', 'identified', 'monitoring']).default('investigating'),
  body: apiText(20_000).optional().describe("the first update (markdown); omitted for an outage: the site's template"),
  components: componentsMap,
  notify: z.boolean().default(true).describe('tell subscribers (a breach always does)'),
  nextUpdateBy: dateTime().optional().describe("when the next update is promised; default: the severity's cadence"),
  organisations: organisationIds.default([]),
  publicNotice: z.boolean().default(false).describe('a breach is on the public status page only when this is true'),
  breach: breachFacts.optional(),
  ...confirmations,
});

export const postUpdateBody = z.strictObject({
  status: z.enum(incidentStatuses),
  body: requiredText(20_000),
  components: componentsMap.default({}),
  notify: z.boolean().default(true),
  nextUpdateBy: dateTime().optional(),
  ...confirmations,
});

export const editIncidentBody = z.strictObject({
  title: requiredText(200).optional(),
  severity: z.enum(incidentSeverities).optional(),
  notify: z.boolean().default(false).describe('send the correction to whom the notices went'),
});

export const scheduleMaintenanceBody = z.strictObject({
  title: requiredText(200),
  severity: z.enum(incidentSeverities).default('minor'),
  body: requiredText(20_000),
  components: z.array(z.string().max(100).refine(wellFormed, WELL_FORMED)).min(1).max(100).describe('the services it takes down'),
  window: z.strictObject({ startsAt: dateTime(), endsAt: dateTime() }),
  notify: z.boolean().default(true),
  organisations: organisationIds.default([]),
  ...confirmations,
});

export const publishNoticeBody = z.strictObject({});

const cursorQuery = {
  limit: z
    .string()
    .regex(/^\d{1,3}$/)
    .optional()
    .describe('1 to 100; default 25'),
  cursor: z
    .string()
    .regex(/^\d{1,15}\.\d{1,10}$/)
    .optional()
    .describe('`nextCursor` of the previous page'),
};

// --- answers ---

const incidentSchema = z.object({
  id: z.number().int(),
  kind: z.enum(incidentKinds),
  severity: z.enum(incidentSeverities),
  title: z.string(),
  status: z.enum(incidentStatuses),
  components: z.array(z.object({ id: z.string(), name: z.string(), status: z.enum(componentStatuses) })),
  startedAt: z.string(),
  resolvedAt: z.string().nullable(),
  nextUpdateBy: z.string().nullable(),
  window: z.object({ startsAt: z.string(), endsAt: z.string() }).nullable(),
  url: z.string().describe('its public page (a breach not made public is not shown there)'),
});
export type ApiIncident = z.output<typeof incidentSchema>;

const updateSchema = z.object({
  id: z.number().int(),
  status: z.enum(incidentStatuses),
  body: z.string(),
  publishedAt: z.string(),
  notified: z.boolean(),
  editedAt: z.string().nullable(),
});

const publishedSchema = z.object({
  incidentId: z.number().int(),
  updateId: z.number().int(),
  notificationId: z.number().int().nullable().describe('GET /api/v1/notifications/{id} follows its delivery'),
  deliveries: z.number().int().describe('deliveries queued'),
  url: z.string(),
});

const pageCursor = z.string().nullable().describe('pass as `cursor` for the next page; null: this was the last');

const statusCounts = z.record(z.string(), z.number().int());

// --- the operations ---

export const listIncidentsOp = {
  id: 'listIncidents',
  method: 'GET',
  path: '/api/v1/incidents',
  summary: 'List incidents',
  description: 'Incidents and maintenance, newest first, breaches included (they are staff data here).',
  permission: 'incidents.view',
  params: noParams,
  query: z.object({ status: z.enum(['open', 'resolved']).optional(), ...cursorQuery }),
  body: null,
  success: {
    status: 200,
    description: 'a page of incidents',
    schema: z.object({ incidents: z.array(incidentSchema), nextCursor: pageCursor }),
  },
  problems: [],
} as const satisfies ApiOperation;

export const getIncidentOp = {
  id: 'getIncident',
  method: 'GET',
  path: '/api/v1/incidents/{id}',
  summary: 'Read an incident with its updates',
  description: 'The incident and every update, newest first.',
  permission: 'incidents.view',
  params: idParams,
  query: noQuery,
  body: null,
  success: {
    status: 200,
    description: 'the incident',
    schema: incidentSchema.extend({
      public: z.boolean().describe('shown on the public status page (a breach only when staff chose so)'),
      updates: z.array(updateSchema),
    }),
  },
  problems: [404],
} as const satisfies ApiOperation;

export const declareIncidentOp = {
  id: 'declareIncident',
  method: 'POST',
  path: '/api/v1/incidents',
  summary: 'Declare an incident',
  description:
    'Declares an incident and publishes its first update, exactly as the console does: the same checks, the personal-data guard (422 naming what it found unless `confirmPersonalData`), breach facts required for a breach (not public unless `publicNotice`), notifications and audit entries (naming the token and the staff member it acts for).',
  permission: 'incidents.manage',
  params: noParams,
  query: noQuery,
  body: declareIncidentBody,
  success: { status: 201, description: 'declared', schema: publishedSchema },
  problems: [409, 422],
  example: {
    kind: 'outage',
    severity: 'major',
    title: 'Checkout errors',
    status: 'investigating',
    body: 'We are investigating failed payments at checkout.',
    components: { 'web-app': 'partial_outage' },
  },
} as const satisfies ApiOperation;

export const postUpdateOp = {
  id: 'postIncidentUpdate',
  method: 'POST',
  path: '/api/v1/incidents/{id}/updates',
  summary: 'Post an update (or resolve)',
  description: 'Publishes an update to an open incident; `status: "resolved"` resolves it (maintenance: completes it).',
  permission: 'incidents.manage',
  params: idParams,
  query: noQuery,
  body: postUpdateBody,
  success: { status: 201, description: 'published', schema: publishedSchema },
  problems: [404, 409, 422],
  example: { status: 'resolved', body: 'Payments work again; we are watching closely.', components: { 'web-app': 'operational' } },
} as const satisfies ApiOperation;

export const editIncidentOp = {
  id: 'editIncident',
  method: 'PATCH',
  path: '/api/v1/incidents/{id}',
  summary: 'Edit the title or severity',
  description: 'Corrects the title or severity after publishing (recorded as a revision); `notify` sends the correction.',
  permission: 'incidents.manage',
  params: idParams,
  query: noQuery,
  body: editIncidentBody,
  success: { status: 200, description: 'edited', schema: z.object({ incidentId: z.number().int(), deliveries: z.number().int() }) },
  problems: [404, 422],
  example: { severity: 'critical' },
} as const satisfies ApiOperation;

export const scheduleMaintenanceOp = {
  id: 'scheduleMaintenance',
  method: 'POST',
  path: '/api/v1/maintenances',
  summary: 'Schedule maintenance',
  description:
    'Announces a maintenance window, as the console does: its services are "under maintenance" for the window, reminders and start/completion steps are planned.',
  permission: 'incidents.manage',
  params: noParams,
  query: noQuery,
  body: scheduleMaintenanceBody,
  success: { status: 201, description: 'scheduled', schema: publishedSchema },
  problems: [409, 422],
  example: {
    title: 'Database upgrade',
    body: 'We upgrade the main database; the API may be slow for a few minutes.',
    components: ['web-app'],
    window: { startsAt: '2027-01-10T02:00:00Z', endsAt: '2027-01-10T03:00:00Z' },
  },
} as const satisfies ApiOperation;

export const listSubscribersOp = {
  id: 'listSubscribers',
  method: 'GET',
  path: '/api/v1/subscribers',
  summary: "List subscribers' addresses",
  description:
    'Every subscriber address in clear, in pages: read to the end it is the whole list, so it needs subscribers.export, as the console export does (each page read is audited).',
  permission: 'subscribers.export',
  params: noParams,
  query: z.object(cursorQuery),
  body: null,
  success: {
    status: 200,
    description: 'a page of addresses',
    schema: z.object({
      addresses: z.array(
        z.object({
          subscriberId: z.number().int(),
          addressId: z.number().int(),
          organisation: z.string().nullable(),
          channel: z.string(),
          address: z.string(),
          status: z.string(),
          subscribedAt: z.string(),
        }),
      ),
      nextCursor: pageCursor,
    }),
  },
  problems: [],
} as const satisfies ApiOperation;

export const removeSubscriberOp = {
  id: 'removeSubscriber',
  method: 'DELETE',
  path: '/api/v1/subscribers/{id}',
  summary: 'Remove a subscriber',
  description: 'Removes the subscriber with all their addresses, as the console does (delivery counts stay; audited).',
  permission: 'subscribers.manage',
  params: idParams,
  query: noQuery,
  body: null,
  success: { status: 200, description: 'removed', schema: z.object({ removed: z.number().int() }) },
  problems: [404],
} as const satisfies ApiOperation;

export const publishNoticeOp = {
  id: 'publishChangeNotice',
  method: 'POST',
  path: '/api/v1/change-notices/{id}/publish',
  summary: 'Publish a drafted change notice',
  description: 'Publishes a drafted notice of changes (e.g. a new subprocessor) now, as saved, and notifies its subscribers.',
  permission: 'announcements.manage',
  params: idParams,
  query: noQuery,
  body: publishNoticeBody,
  success: { status: 200, description: 'published', schema: z.object({ noticeId: z.number().int(), deliveries: z.number().int() }) },
  problems: [404, 409, 422],
  example: {},
} as const satisfies ApiOperation;

export const notificationProgressOp = {
  id: 'getNotificationProgress',
  method: 'GET',
  path: '/api/v1/notifications/{id}',
  summary: "A notification's delivery progress",
  description: 'How many deliveries of a notification are in each state, per channel.',
  permission: 'deliveries.view',
  params: idParams,
  query: noQuery,
  body: null,
  success: {
    status: 200,
    description: 'its progress',
    schema: z.object({
      id: z.number().int(),
      kind: z.string(),
      title: z.string(),
      createdAt: z.string(),
      total: z.number().int(),
      finished: z.number().int().describe('sent, delivered, failed or suppressed'),
      channels: z.record(z.string(), statusCounts).describe('channel → delivery status → count'),
    }),
  },
  problems: [404],
} as const satisfies ApiOperation;

/** A service of content/components.yaml by its id. */
const serviceParams = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,99}$/)
    .describe('a service id of content/components.yaml'),
});

export const setComponentStatusOp = {
  id: 'setComponentStatus',
  method: 'PUT',
  path: '/api/v1/components/{id}/status',
  summary: "Set a service's state from automation",
  description:
    "Sets the state automation declares for a service, as a firing alert would: recorded in the service's history (the 90-day bars) and shown at once; the service's state is the worst that any source declares. The note goes to the audit log.",
  permission: 'incidents.manage',
  params: serviceParams,
  query: noQuery,
  body: componentStatusBodySchema,
  success: { status: 200, description: 'the state before and after', schema: componentStatusResultSchema },
  problems: [404],
  example: { status: 'degraded', note: 'Latency above 2 s on the EU API' },
} as const satisfies ApiOperation;

const ALERT_ANSWER = 'what each alert did: opened or folded into a draft, resolved, or matched no service (and how to map it)';

function alertReceiverOp<B extends z.ZodType>(
  source: AlertSource,
  id: string,
  summary: string,
  description: string,
  body: B,
  example: unknown,
) {
  return {
    id,
    method: 'POST',
    path: `/api/v1/alerts/${source}`,
    summary,
    description: `${description} A firing alert sets its service's state and opens (or folds into) a draft incident; a resolved one restores the service and proposes resolving the incident. An alert maps to a service by its \`component\` (or \`candor_component\`) label, or by \`alerts.match\` in content/components.yaml.`,
    permission: 'alerts.ingest',
    params: noParams,
    query: noQuery,
    body,
    success: { status: 202, description: ALERT_ANSWER, schema: alertReceiptSchema },
    problems: [],
    example,
    idempotencyKey: false,
  } as const satisfies ApiOperation;
}

export const receiveAlertmanagerOp = alertReceiverOp(
  'alertmanager',
  'receiveAlertmanager',
  'Receive Prometheus Alertmanager alerts',
  "Alertmanager's webhook payload (version 4), as `webhook_configs` sends it.",
  alertmanagerPayloadSchema,
  {
    version: '4',
    groupKey: '{}:{alertname="HighErrorRate"}',
    status: 'firing',
    receiver: 'candor',
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate', component: 'public-api', severity: 'major' },
    commonAnnotations: { summary: 'Error rate above 5%' },
    externalURL: 'http://alertmanager:9093',
    alerts: [{ status: 'firing', labels: { alertname: 'HighErrorRate', component: 'public-api' }, annotations: {} }],
  },
);

export const receiveGrafanaOp = alertReceiverOp(
  'grafana',
  'receiveGrafana',
  'Receive Grafana alerts',
  "Grafana alerting's webhook contact point payload.",
  grafanaPayloadSchema,
  { status: 'firing', alerts: [{ status: 'firing', labels: { alertname: 'QueueLag', component: 'ai-indexing' }, annotations: {} }] },
);

export const receiveGenericOp = alertReceiverOp(
  'generic',
  'receiveGenericAlert',
  'Receive an alert from any tool',
  "Candor's own alert shape, for tools without Alertmanager's or Grafana's.",
  genericAlertSchema,
  { component: 'search', status: 'firing', title: 'Search results are slow', severity: 'minor' },
);

/** Every staff operation, in the reference's order. */
export const apiOperations: readonly ApiOperation[] = [
  listIncidentsOp,
  getIncidentOp,
  declareIncidentOp,
  postUpdateOp,
  editIncidentOp,
  scheduleMaintenanceOp,
  listSubscribersOp,
  removeSubscriberOp,
  publishNoticeOp,
  notificationProgressOp,
  setComponentStatusOp,
  receiveAlertmanagerOp,
  receiveGrafanaOp,
  receiveGenericOp,
];

/** Whether requests to the operation carry an `Idempotency-Key` (every POST but the alert receivers). */
export const takesIdempotencyKey = (operation: Pick<ApiOperation, 'method' | 'idempotencyKey'>) =>
  operation.method === 'POST' && operation.idempotencyKey !== false;

/** An operation's Astro route pattern (`/api/v1/incidents/[id]`). */
export const routePatternOf = (path: string) => path.replace(/\{(\w+)\}/g, '[$1]');

/** The route patterns of the staff API (the middleware answers their refusals as problem details). */
export const staffApiRoutes: ReadonlySet<string> = new Set(apiOperations.map((op) => routePatternOf(op.path)));

/** The problem types, for the reference page's anchors (`#problem-<type>`) and the document. */
export const problemTypes: readonly { type: string; status: number; title: string; explanation: string }[] = [
  {
    type: 'malformed-request',
    status: 400,
    title: 'The request is malformed.',
    explanation: 'The body is not JSON, or not sent as `application/json`.',
  },
  {
    type: 'idempotency-key-required',
    status: 400,
    title: 'An Idempotency-Key header is required.',
    explanation:
      'Every POST carries `Idempotency-Key` (1–255 printable ASCII characters, e.g. a UUID); a retry with the same key never acts twice.',
  },
  {
    type: 'unauthorized',
    status: 401,
    title: 'A valid API token is required.',
    explanation: 'No token, or one that is unknown, revoked, expired, or whose creator is no longer active.',
  },
  {
    type: 'forbidden',
    status: 403,
    title: 'The token lacks a permission.',
    explanation: "The token does not hold the operation's permission (or its creator no longer does).",
  },
  { type: 'not-found', status: 404, title: 'Not found.', explanation: 'There is no such row, or no such path.' },
  {
    type: 'method-not-allowed',
    status: 405,
    title: 'Method not allowed.',
    explanation: 'The `Allow` header lists the methods this path takes.',
  },
  {
    type: 'idempotency-key-in-use',
    status: 409,
    title: 'A request with this Idempotency-Key is still running.',
    explanation: 'Wait for the first request to finish, then retry: you will get its answer.',
  },
  { type: 'payload-too-large', status: 413, title: 'The request body is too large.', explanation: 'Bodies are limited to 64 KiB.' },
  {
    type: 'validation-failed',
    status: 422,
    title: 'The request is not valid.',
    explanation: '`errors` lists each field that is wrong (`field` is its JSON path, dotted) and why.',
  },
  {
    type: 'refused',
    status: 422,
    title: 'The request was refused.',
    explanation:
      'It is well-formed, but the flow refused it as the console would (e.g. the personal-data guard flagged the text: `findings` names what; a breach without its facts; a resolved incident).',
  },
  {
    type: 'idempotency-key-reused',
    status: 422,
    title: 'This Idempotency-Key was used for a different request.',
    explanation: 'A key names one request (method, path and body); use a new key for a new request.',
  },
  {
    type: 'rate-limited',
    status: 429,
    title: 'Too many requests.',
    explanation: 'Each token may make 600 requests a minute; `Retry-After` says when to try again.',
  },
  {
    type: 'server-error',
    status: 500,
    title: 'Something went wrong on our side.',
    explanation: 'It was logged. A POST may be retried with the same Idempotency-Key.',
  },
];
