import { boolean, index, integer, jsonb, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/incidents.ts on PostgreSQL: incidents, their updates, components, revisions and service history. */
export const incidents = pgTable(
  'incidents',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    kind: text('kind', { enum: ['outage', 'security', 'breach', 'maintenance'] }).notNull(),
    severity: text('severity', { enum: ['minor', 'major', 'critical'] }).notNull(),
    title: text('title').notNull(),
    status: text('status', { enum: ['investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress'] }).notNull(),
    /** shown on /status and in feeds; breaches only when staff choose a public notice */
    public: boolean('public').notNull(),
    /** the company names typed before customer organisations were kept by staff; reach no one */
    audienceOrganisations: jsonb('audience_organisations').$type<string[] | null>(),
    /** null: every subscriber of the topic; else only the verified members of these customer organisations */
    audienceOrganisationIds: jsonb('audience_organisation_ids').$type<number[] | null>(),
    startedAt: timestamptz('started_at').notNull(),
    resolvedAt: timestamptz('resolved_at'),
    nextUpdateBy: timestamptz('next_update_by'),
    /** scheduled maintenance: the announced window */
    windowStartsAt: timestamptz('window_starts_at'),
    windowEndsAt: timestamptz('window_ends_at'),
    createdBy: integer('created_by'),
    createdAt: timestamptz('created_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('incidents_status').on(t.status, t.startedAt)],
);

export const incidentComponents = pgTable(
  'incident_components',
  {
    incidentId: integer('incident_id')
      .notNull()
      .references(() => incidents.id, { onDelete: 'cascade' }),
    componentId: text('component_id').notNull(),
    status: text('status', { enum: ['operational', 'degraded', 'partial_outage', 'major_outage', 'under_maintenance'] }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.incidentId, t.componentId] })],
);

export const incidentUpdates = pgTable(
  'incident_updates',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    incidentId: integer('incident_id')
      .notNull()
      .references(() => incidents.id, { onDelete: 'cascade' }),
    status: text('status', { enum: ['investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress'] }).notNull(),
    body: text('body').notNull(),
    publishedAt: timestamptz('published_at').notNull(),
    notificationId: integer('notification_id'),
    /** false: published on the pages only, staff chose not to notify subscribers of it */
    notified: boolean('notified').notNull().default(true),
    createdBy: integer('created_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('incident_updates_incident').on(t.incidentId, t.publishedAt)],
);

/** Written once, never changed (a trigger in the migration refuses UPDATE). */
export const incidentRevisions = pgTable(
  'incident_revisions',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    incidentId: integer('incident_id')
      .notNull()
      .references(() => incidents.id, { onDelete: 'cascade' }),
    /** the update whose text changed; null for the incident's own fields */
    updateId: integer('update_id').references(() => incidentUpdates.id, { onDelete: 'cascade' }),
    field: text('field', { enum: ['body', 'title', 'severity'] }).notNull(),
    before: text('before').notNull(),
    after: text('after').notNull(),
    /** a correction notice went to subscribers */
    notified: boolean('notified').notNull(),
    at: timestamptz('at').notNull(),
    by: integer('by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('incident_revisions_incident').on(t.incidentId, t.id)],
);

/** The history of each service's state; never updated (a trigger in the migration refuses UPDATE). */
export const componentStates = pgTable(
  'component_states',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    componentId: text('component_id').notNull(),
    status: text('status', { enum: ['operational', 'degraded', 'partial_outage', 'major_outage', 'under_maintenance'] }).notNull(),
    /** from when the source declares this state (until its next row) */
    since: timestamptz('since').notNull(),
    /** the incident that declared it; null for sources outside incidents */
    incidentId: integer('incident_id').references(() => incidents.id, { onDelete: 'cascade' }),
    /** the published update that carried it, when one did */
    updateId: integer('update_id'),
    source: text('source', { enum: ['update', 'maintenance', 'automation', 'listed', 'backfill'] }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    index('component_states_component').on(t.componentId, t.since),
    index('component_states_incident').on(t.incidentId, t.componentId),
  ],
);
