import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { recipients, subscribers } from './notify.ts';
import { trustCenterId } from './trust-centers.ts';

/**
 * A change to the subprocessor list or a document, found by comparing
 * content/ with what was published, and the notice that announces it.
 * Published notices are the history: the list as it stood on any date is
 * the baseline snapshot with every notice effective by then applied.
 */
export const changeNotices = sqliteTable(
  'change_notices',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    subject: text('subject', { enum: ['subprocessor', 'doc'] }).notNull(),
    change: text('change', { enum: ['added', 'removed', 'changed'] }).notNull(),
    /** the subprocessor's id or the doc's slug */
    subjectId: text('subject_id').notNull(),
    subjectName: text('subject_name').notNull(),
    /** before and after (each null for added / removed), and what changed */
    details: text('details', { mode: 'json' }).notNull(),
    /** SHA-256 of the difference: the same difference is never drafted twice */
    fingerprint: text('fingerprint').notNull(),
    status: text('status', { enum: ['draft', 'scheduled', 'published', 'superseded'] }).notNull(),
    intro: text('intro').notNull(),
    /** UTC days as YYYY-MM-DD */
    effectiveOn: text('effective_on'),
    objectionDeadline: text('objection_deadline'),
    /** staff chose an effective date inside the notice period; why, in their words */
    overrideReason: text('override_reason'),
    publishAt: integer('publish_at', { mode: 'timestamp_ms' }),
    publishedAt: integer('published_at', { mode: 'timestamp_ms' }),
    publishedBy: integer('published_by'),
    notificationId: integer('notification_id'),
    detectedAt: integer('detected_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    index('change_notices_status').on(t.status, t.publishedAt),
    uniqueIndex('change_notices_open_fingerprint').on(t.fingerprint).where(sql`status IN ('draft', 'scheduled')`),
  ],
);

/** A customer's objection to a notice, filed from the signed link in the notice they received. */
export const objections = sqliteTable(
  'objections',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    noticeId: integer('notice_id')
      .notNull()
      .references(() => changeNotices.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id').references(() => recipients.id, { onDelete: 'set null' }),
    /** the recipient the objection link was signed for; kept when they unsubscribe, so one link files one objection */
    linkRecipient: integer('link_recipient').notNull(),
    subscriberId: integer('subscriber_id').references(() => subscribers.id, { onDelete: 'set null' }),
    organisation: text('organisation'),
    contactName: text('contact_name'),
    reasons: text('reasons').notNull(),
    status: text('status', { enum: ['open', 'in_discussion', 'resolved', 'withdrawn'] }).notNull(),
    /** filed after the notice's objection deadline: accepted, and marked */
    late: integer('late', { mode: 'boolean' }).notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('objections_notice_link').on(t.noticeId, t.linkRecipient), index('objections_status').on(t.status, t.createdAt)],
);

/** Staff notes on an objection, append-only like the audit log they are also recorded in. */
export const objectionNotes = sqliteTable('objection_notes', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  objectionId: integer('objection_id')
    .notNull()
    .references(() => objections.id, { onDelete: 'cascade' }),
  staffId: integer('staff_id'),
  body: text('body').notNull(),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  trustCenterId: trustCenterId(),
});

/**
 * A free-form announcement written by staff (a new data region, a policy
 * change): published now or at a time to the subscribers of the change
 * topics it names, and part of the public changelog. It changes no list
 * entry and carries no objection link: a change customers may object to is
 * a subprocessor notice, drafted from content/.
 */
export const announcements = sqliteTable(
  'announcements',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    title: text('title').notNull(),
    /** markdown */
    body: text('body').notNull(),
    /** JSON array of change topics (subprocessors, docs): whose subscribers it reaches */
    topics: text('topics', { mode: 'json' }).notNull(),
    /** UTC day as YYYY-MM-DD, or null when it has none */
    effectiveOn: text('effective_on'),
    status: text('status', { enum: ['draft', 'scheduled', 'published', 'discarded'] }).notNull(),
    publishAt: integer('publish_at', { mode: 'timestamp_ms' }),
    publishedAt: integer('published_at', { mode: 'timestamp_ms' }),
    publishedBy: integer('published_by'),
    notificationId: integer('notification_id'),
    /**
     * A random key the composer carries from its first render: a form posted twice (a double click, a
     * retried request) finds the announcement the first post made instead of making, or sending, another
     */
    formKey: text('form_key'),
    createdBy: integer('created_by'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('announcements_status').on(t.status, t.publishedAt), uniqueIndex('announcements_form_key').on(t.formKey)],
);
