import { blob, index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { recipients } from './notify.ts';
import { trustCenterId } from './trust-centers.ts';

/**
 * Customers' access to gated documents (content/documents with `access: nda`):
 * the rules staff keep, the requests visitors make, the grants that follow,
 * the NDA texts accepted and each acceptance, customers' one-time links and
 * sessions, and every view and download. A customer is the verified email
 * address, kept sealed in `recipients` (channel `email`, no subscriber); the
 * company they type is shown and stamped, never used to decide anything.
 */

export const accessDecisions = ['approve', 'review', 'refuse'] as const;
export const accessRequestStatuses = ['unverified', 'pending', 'approved', 'refused'] as const;

/** A staff rule on the requester's email domain: `example.com` (that domain only) or `*.example.com` (any subdomain, not the domain itself). */
export const accessRules = sqliteTable(
  'access_rules',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** lower-case ASCII (punycode) */
    pattern: text('pattern').notNull(),
    decision: text('decision', { enum: accessDecisions }).notNull(),
    /** approve: which gated documents (slugs; null: every gated document) and for how many days */
    documents: text('documents', { mode: 'json' }).$type<string[]>(),
    grantDays: integer('grant_days'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    createdBy: integer('created_by'),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    updatedBy: integer('updated_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('access_rules_pattern').on(t.pattern)],
);

/** A visitor's request: who they say they are, what for, and what was decided (by a rule or a person). */
export const accessRequests = sqliteTable(
  'access_requests',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    /** lower-case ASCII domain of the email, for rules, the queue and per-company views */
    domain: text('domain').notNull(),
    name: text('name').notNull(),
    company: text('company').notNull(),
    reason: text('reason').notNull(),
    /** slugs asked for (at least one gated document) */
    documents: text('documents', { mode: 'json' }).$type<string[]>().notNull(),
    status: text('status', { enum: accessRequestStatuses }).notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    verifiedAt: integer('verified_at', { mode: 'timestamp_ms' }),
    /** `rule` (then ruleId and rulePattern say which, as it was) or `staff` (decidedBy) */
    decidedVia: text('decided_via', { enum: ['rule', 'staff'] }),
    ruleId: integer('rule_id'),
    rulePattern: text('rule_pattern'),
    decidedBy: integer('decided_by'),
    decidedAt: integer('decided_at', { mode: 'timestamp_ms' }),
    /** what the requester was told when refused (staff's message, or the neutral default) */
    refusalMessage: text('refusal_message'),
    /** when reviewers were last reminded that it waits */
    remindedAt: integer('reminded_at', { mode: 'timestamp_ms' }),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('access_requests_status').on(t.status, t.createdAt), index('access_requests_recipient').on(t.recipientId)],
);

/** What a customer may read, until when. Revoked or expired grants stay as the record of what was shared. */
export const accessGrants = sqliteTable(
  'access_grants',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    requestId: integer('request_id').references(() => accessRequests.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    company: text('company').notNull(),
    documents: text('documents', { mode: 'json' }).$type<string[]>().notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    /** null when a rule approved */
    createdBy: integer('created_by'),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
    revokedBy: integer('revoked_by'),
    /** when the customer was told it is about to expire */
    expiryNoticeAt: integer('expiry_notice_at', { mode: 'timestamp_ms' }),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('access_grants_recipient').on(t.recipientId), index('access_grants_expires').on(t.expiresAt)],
);

/** An NDA text as accepted, by the SHA-256 of its text: written at its first acceptance, never changed or removed. */
export const ndaTexts = sqliteTable('nda_texts', {
  hash: text('hash').primaryKey(),
  /** the content file's name (content/ndas/<name>.md) and title when first accepted */
  name: text('name').notNull(),
  title: text('title').notNull(),
  body: text('body').notNull(),
  firstAcceptedAt: integer('first_accepted_at', { mode: 'timestamp_ms' }).notNull(),
  trustCenterId: trustCenterId(),
});

/** One acceptance of one NDA text: append-only. */
export const ndaAcceptances = sqliteTable(
  'nda_acceptances',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
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
    acceptedAt: integer('accepted_at', { mode: 'timestamp_ms' }).notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('nda_acceptances_recipient').on(t.recipientId)],
);

/** Customers' one-time links: verifying a request's email, signing in. Only SHA-256 of the secret is kept. */
export const readerLinks = sqliteTable(
  'reader_links',
  {
    id: text('id').primaryKey(),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    purpose: text('purpose', { enum: ['verify', 'sign_in'] }).notNull(),
    requestId: integer('request_id').references(() => accessRequests.id, { onDelete: 'cascade' }),
    secretHash: blob('secret_hash', { mode: 'buffer' }).notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    usedAt: integer('used_at', { mode: 'timestamp_ms' }),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('reader_links_recipient').on(t.recipientId)],
);

/** Customers' sessions, apart from staff sessions: `id.secret`, only SHA-256(secret) stored. */
export const readerSessions = sqliteTable(
  'reader_sessions',
  {
    id: text('id').primaryKey(),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    secretHash: blob('secret_hash', { mode: 'buffer' }).notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    lastActiveAt: integer('last_active_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('reader_sessions_recipient').on(t.recipientId)],
);

/** Every view and download of a gated document: append-only. `watermark` is the text stamped on its pages. */
export const documentViews = sqliteTable(
  'document_views',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    grantId: integer('grant_id')
      .notNull()
      .references(() => accessGrants.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    document: text('document').notNull(),
    kind: text('kind', { enum: ['view', 'download'] }).notNull(),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
    watermark: text('watermark').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('document_views_grant').on(t.grantId), index('document_views_at').on(t.at)],
);
