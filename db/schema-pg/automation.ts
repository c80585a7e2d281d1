import { index, integer, jsonb, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { alertDraftStates, alertSources } from '../schema/automation.ts';
import { incidents } from './incidents.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/automation.ts on PostgreSQL: API tokens, idempotency replies, alert drafts and events. */

export const apiTokens = pgTable(
  'api_tokens',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull(),
    prefix: text('prefix').notNull(),
    scopes: jsonb('scopes').$type<string[]>().notNull(),
    createdBy: integer('created_by').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
    lastUsedAt: timestamptz('last_used_at'),
    revokedAt: timestamptz('revoked_at'),
    revokedBy: integer('revoked_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('api_tokens_hash').on(t.tokenHash)],
);

export const apiIdempotencyKeys = pgTable(
  'api_idempotency_keys',
  {
    tokenId: integer('token_id')
      .notNull()
      .references(() => apiTokens.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    state: text('state', { enum: ['pending', 'done'] }).notNull(),
    responseStatus: integer('response_status'),
    responseBody: text('response_body'),
    createdAt: timestamptz('created_at').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.tokenId, t.key] }), index('api_idempotency_keys_expires').on(t.expiresAt)],
);

export const alertDrafts = pgTable(
  'alert_drafts',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    fingerprint: text('fingerprint').notNull(),
    source: text('source', { enum: alertSources }).notNull(),
    componentId: text('component_id').notNull(),
    componentStatus: text('component_status', { enum: ['degraded', 'partial_outage', 'major_outage'] }).notNull(),
    severity: text('severity', { enum: ['minor', 'major', 'critical'] }).notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    state: text('state', { enum: alertDraftStates }).notNull(),
    incidentId: integer('incident_id').references(() => incidents.id, { onDelete: 'set null' }),
    publishedBy: integer('published_by'),
    publishedAt: timestamptz('published_at'),
    firstFiringAt: timestamptz('first_firing_at').notNull(),
    lastFiringAt: timestamptz('last_firing_at').notNull(),
    firingCount: integer('firing_count').notNull(),
    flaps: integer('flaps').notNull().default(0),
    alertResolvedAt: timestamptz('alert_resolved_at'),
    closedAt: timestamptz('closed_at'),
    closedBy: integer('closed_by'),
    createdAt: timestamptz('created_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('alert_drafts_fingerprint').on(t.fingerprint, t.closedAt), index('alert_drafts_state').on(t.state, t.createdAt)],
);

export const alertEvents = pgTable(
  'alert_events',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    draftId: integer('draft_id').references(() => alertDrafts.id, { onDelete: 'cascade' }),
    tokenId: integer('token_id'),
    source: text('source', { enum: alertSources }).notNull(),
    fingerprint: text('fingerprint').notNull(),
    status: text('status', { enum: ['firing', 'resolved'] }).notNull(),
    detail: jsonb('detail').$type<Record<string, unknown>>().notNull(),
    receivedAt: timestamptz('received_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('alert_events_draft').on(t.draftId, t.id)],
);
