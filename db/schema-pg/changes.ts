import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { recipients, subscribers } from './notify.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/changes.ts on PostgreSQL: change notices, objections and announcements (see there). */
export const changeNotices = pgTable(
  'change_notices',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    subject: text('subject', { enum: ['subprocessor', 'doc'] }).notNull(),
    change: text('change', { enum: ['added', 'removed', 'changed'] }).notNull(),
    /** the subprocessor's id or the doc's slug */
    subjectId: text('subject_id').notNull(),
    subjectName: text('subject_name').notNull(),
    /** before and after (each null for added / removed), and what changed */
    details: jsonb('details').notNull(),
    /** SHA-256 of the difference: the same difference is never drafted twice */
    fingerprint: text('fingerprint').notNull(),
    status: text('status', { enum: ['draft', 'scheduled', 'published', 'superseded'] }).notNull(),
    intro: text('intro').notNull(),
    /** UTC days as YYYY-MM-DD */
    effectiveOn: text('effective_on'),
    objectionDeadline: text('objection_deadline'),
    /** staff chose an effective date inside the notice period; why, in their words */
    overrideReason: text('override_reason'),
    publishAt: timestamptz('publish_at'),
    publishedAt: timestamptz('published_at'),
    publishedBy: integer('published_by'),
    notificationId: integer('notification_id'),
    detectedAt: timestamptz('detected_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    index('change_notices_status').on(t.status, t.publishedAt),
    uniqueIndex('change_notices_open_fingerprint').on(t.fingerprint).where(sql`status IN ('draft', 'scheduled')`),
  ],
);

export const objections = pgTable(
  'objections',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
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
    late: boolean('late').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    updatedAt: timestamptz('updated_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('objections_notice_link').on(t.noticeId, t.linkRecipient), index('objections_status').on(t.status, t.createdAt)],
);

export const objectionNotes = pgTable('objection_notes', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  objectionId: integer('objection_id')
    .notNull()
    .references(() => objections.id, { onDelete: 'cascade' }),
  staffId: integer('staff_id'),
  body: text('body').notNull(),
  createdAt: timestamptz('created_at').notNull(),
  trustCenterId: trustCenterId(),
});

export const announcements = pgTable(
  'announcements',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    title: text('title').notNull(),
    /** markdown */
    body: text('body').notNull(),
    /** JSON array of change topics (subprocessors, docs): whose subscribers it reaches */
    topics: jsonb('topics').notNull(),
    /** UTC day as YYYY-MM-DD, or null when it has none */
    effectiveOn: text('effective_on'),
    status: text('status', { enum: ['draft', 'scheduled', 'published', 'discarded'] }).notNull(),
    publishAt: timestamptz('publish_at'),
    publishedAt: timestamptz('published_at'),
    publishedBy: integer('published_by'),
    notificationId: integer('notification_id'),
    /** a random key the composer carries from its first render: a form posted twice finds the first post's announcement */
    formKey: text('form_key'),
    createdBy: integer('created_by'),
    createdAt: timestamptz('created_at').notNull(),
    updatedAt: timestamptz('updated_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('announcements_status').on(t.status, t.publishedAt), uniqueIndex('announcements_form_key').on(t.formKey)],
);
