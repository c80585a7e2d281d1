import { index, integer, jsonb, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { accessDecisions, accessRequestStatuses } from '../schema/access.ts';
import { recipients } from './notify.ts';
import { bytea, timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/access.ts on PostgreSQL: customers' access to gated documents. */

/** A staff rule on the requester's email domain: `example.com` (that domain only) or `*.example.com` (any subdomain, not the domain itself). */
export const accessRules = pgTable(
  'access_rules',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    /** lower-case ASCII (punycode) */
    pattern: text('pattern').notNull(),
    decision: text('decision', { enum: accessDecisions }).notNull(),
    /** approve: which gated documents (slugs; null: every gated document) and for how many days */
    documents: jsonb('documents').$type<string[]>(),
    grantDays: integer('grant_days'),
    createdAt: timestamptz('created_at').notNull(),
    createdBy: integer('created_by'),
    updatedAt: timestamptz('updated_at').notNull(),
    updatedBy: integer('updated_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('access_rules_pattern').on(t.pattern)],
);

/** A visitor's request: who they say they are, what for, and what was decided (by a rule or a person). */
export const accessRequests = pgTable(
  'access_requests',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    /** lower-case ASCII domain of the email, for rules, the queue and per-company views */
    domain: text('domain').notNull(),
    name: text('name').notNull(),
    company: text('company').notNull(),
    reason: text('reason').notNull(),
    /** slugs asked for (at least one gated document) */
    documents: jsonb('documents').$type<string[]>().notNull(),
    status: text('status', { enum: accessRequestStatuses }).notNull(),
    createdAt: timestamptz('created_at').notNull(),
    verifiedAt: timestamptz('verified_at'),
    /** `rule` (then ruleId and rulePattern say which, as it was) or `staff` (decidedBy) */
    decidedVia: text('decided_via', { enum: ['rule', 'staff'] }),
    ruleId: integer('rule_id'),
    rulePattern: text('rule_pattern'),
    decidedBy: integer('decided_by'),
    decidedAt: timestamptz('decided_at'),
    /** what the requester was told when refused (staff's message, or the neutral default) */
    refusalMessage: text('refusal_message'),
    /** when reviewers were last reminded that it waits */
    remindedAt: timestamptz('reminded_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('access_requests_status').on(t.status, t.createdAt), index('access_requests_recipient').on(t.recipientId)],
);

/** What a customer may read, until when. Revoked or expired grants stay as the record of what was shared. */
export const accessGrants = pgTable(
  'access_grants',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    requestId: integer('request_id').references(() => accessRequests.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    company: text('company').notNull(),
    documents: jsonb('documents').$type<string[]>().notNull(),
    createdAt: timestamptz('created_at').notNull(),
    /** null when a rule approved */
    createdBy: integer('created_by'),
    expiresAt: timestamptz('expires_at').notNull(),
    revokedAt: timestamptz('revoked_at'),
    revokedBy: integer('revoked_by'),
    /** when the customer was told it is about to expire */
    expiryNoticeAt: timestamptz('expiry_notice_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('access_grants_recipient').on(t.recipientId), index('access_grants_expires').on(t.expiresAt)],
);

/** An NDA text as accepted, by the SHA-256 of its text: written at its first acceptance, never changed or removed. */
export const ndaTexts = pgTable('nda_texts', {
  hash: text('hash').primaryKey(),
  /** the content file's name (content/ndas/<name>.md) and title when first accepted */
  name: text('name').notNull(),
  title: text('title').notNull(),
  body: text('body').notNull(),
  firstAcceptedAt: timestamptz('first_accepted_at').notNull(),
  trustCenterId: trustCenterId(),
});

/** One acceptance of one NDA text: append-only. */
export const ndaAcceptances = pgTable(
  'nda_acceptances',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    ndaHash: text('nda_hash')
      .notNull()
      .references(() => ndaTexts.hash),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    grantId: integer('grant_id').references(() => accessGrants.id, { onDelete: 'cascade' }),
    /** as typed */
    fullName: text('full_name').notNull(),
    company: text('company').notNull(),
    acceptedAt: timestamptz('accepted_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('nda_acceptances_recipient').on(t.recipientId)],
);

/** Customers' one-time links: verifying a request's email, signing in. Only SHA-256 of the secret is kept. */
export const readerLinks = pgTable(
  'reader_links',
  {
    id: text('id').primaryKey(),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    purpose: text('purpose', { enum: ['verify', 'sign_in'] }).notNull(),
    requestId: integer('request_id').references(() => accessRequests.id, { onDelete: 'cascade' }),
    secretHash: bytea('secret_hash').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
    usedAt: timestamptz('used_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('reader_links_recipient').on(t.recipientId)],
);

/** Customers' sessions, apart from staff sessions: `id.secret`, only SHA-256(secret) stored. */
export const readerSessions = pgTable(
  'reader_sessions',
  {
    id: text('id').primaryKey(),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    secretHash: bytea('secret_hash').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    lastActiveAt: timestamptz('last_active_at').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('reader_sessions_recipient').on(t.recipientId)],
);

/** Every view and download of a gated document: append-only. `watermark` is the text stamped on its pages. */
export const documentViews = pgTable(
  'document_views',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    grantId: integer('grant_id')
      .notNull()
      .references(() => accessGrants.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    document: text('document').notNull(),
    kind: text('kind', { enum: ['view', 'download'] }).notNull(),
    at: timestamptz('at').notNull(),
    watermark: text('watermark').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('document_views_grant').on(t.grantId), index('document_views_at').on(t.at)],
);
