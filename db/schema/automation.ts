import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { incidents } from './incidents.ts';
import { trustCenterId } from './trust-centers.ts';

/**
 * Automation (issue 17): staff API tokens, the replies kept for
 * `Idempotency-Key`, and alerts from monitoring (Alertmanager, Grafana,
 * generic JSON) folded into draft incidents.
 */

/**
 * A staff API token: named, scoped to permissions of the console's table (src/core/auth/permissions.ts),
 * expiring, revocable. Only SHA-256 of the secret is kept; `prefix` (the first characters) lets staff
 * recognise it in lists and the audit log.
 */
export const apiTokens = sqliteTable(
  'api_tokens',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    name: text('name').notNull(),
    /** hex SHA-256 of the whole token */
    tokenHash: text('token_hash').notNull(),
    /** e.g. `cnd_3f9a1c`: shown in lists, never enough to use */
    prefix: text('prefix').notNull(),
    /** permission names from the console's table */
    scopes: text('scopes', { mode: 'json' }).$type<string[]>().notNull(),
    /** the role of its creator when made: a token never holds more than its creator could */
    createdBy: integer('created_by').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    lastUsedAt: integer('last_used_at', { mode: 'timestamp_ms' }),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
    revokedBy: integer('revoked_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('api_tokens_hash').on(t.tokenHash)],
);

/**
 * The first answer to a POST with an `Idempotency-Key`, per token and key: a retry with the same key and
 * the same request gets the same answer; the same key with a different request is refused (422).
 * `state` pending while the first request runs (a concurrent retry is told 409). Kept 24 h.
 */
export const apiIdempotencyKeys = sqliteTable(
  'api_idempotency_keys',
  {
    tokenId: integer('token_id')
      .notNull()
      .references(() => apiTokens.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    /** SHA-256 of method, path and body */
    requestHash: text('request_hash').notNull(),
    state: text('state', { enum: ['pending', 'done'] }).notNull(),
    responseStatus: integer('response_status'),
    /** the JSON body sent */
    responseBody: text('response_body'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.tokenId, t.key] }), index('api_idempotency_keys_expires').on(t.expiresAt)],
);

export const alertSources = ['alertmanager', 'grafana', 'generic'] as const;
export const alertDraftStates = ['waiting', 'published', 'dismissed'] as const;

/**
 * A draft incident opened by a firing alert: one per alert fingerprint (source, component, alert name)
 * while open. Repeats and flaps of the same alert fold into it (`firingCount`, `flaps`); a resolved
 * alert sets `alertResolvedAt`, which proposes restoring the component and resolving the incident.
 * A draft is never public: publishing it declares an incident through the normal flow (`incidentId`).
 */
export const alertDrafts = sqliteTable(
  'alert_drafts',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    fingerprint: text('fingerprint').notNull(),
    source: text('source', { enum: alertSources }).notNull(),
    componentId: text('component_id').notNull(),
    /** the state the alert sets on the component */
    componentStatus: text('component_status', { enum: ['degraded', 'partial_outage', 'major_outage'] }).notNull(),
    severity: text('severity', { enum: ['minor', 'major', 'critical'] }).notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    state: text('state', { enum: alertDraftStates }).notNull(),
    /** set when published (by a person, or by itself when the component auto-publishes) */
    incidentId: integer('incident_id').references(() => incidents.id, { onDelete: 'set null' }),
    publishedBy: integer('published_by'),
    publishedAt: integer('published_at', { mode: 'timestamp_ms' }),
    firstFiringAt: integer('first_firing_at', { mode: 'timestamp_ms' }).notNull(),
    lastFiringAt: integer('last_firing_at', { mode: 'timestamp_ms' }).notNull(),
    firingCount: integer('firing_count').notNull(),
    /** resolved then firing again, folded in */
    flaps: integer('flaps').notNull().default(0),
    /** the alert's last resolved notice; null while firing */
    alertResolvedAt: integer('alert_resolved_at', { mode: 'timestamp_ms' }),
    /** when staff closed the proposal (restored and resolved, or dismissed) */
    closedAt: integer('closed_at', { mode: 'timestamp_ms' }),
    closedBy: integer('closed_by'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('alert_drafts_fingerprint').on(t.fingerprint, t.closedAt), index('alert_drafts_state').on(t.state, t.createdAt)],
);

/** Each alert notice received (firing or resolved), with the token and source it came from. Append-only. */
export const alertEvents = sqliteTable(
  'alert_events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    draftId: integer('draft_id').references(() => alertDrafts.id, { onDelete: 'cascade' }),
    tokenId: integer('token_id'),
    source: text('source', { enum: alertSources }).notNull(),
    fingerprint: text('fingerprint').notNull(),
    status: text('status', { enum: ['firing', 'resolved'] }).notNull(),
    /** the alert's labels and annotations as received (no secrets: tokens travel in headers) */
    detail: text('detail', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    receivedAt: integer('received_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('alert_events_draft').on(t.draftId, t.id)],
);
