import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { trustCenterId } from './trust-centers.ts';

export const incidents = sqliteTable(
  'incidents',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    kind: text('kind', { enum: ['outage', 'security', 'breach', 'maintenance'] }).notNull(),
    severity: text('severity', { enum: ['minor', 'major', 'critical'] }).notNull(),
    title: text('title').notNull(),
    status: text('status', { enum: ['investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress'] }).notNull(),
    /** shown on /status and in feeds; breaches only when staff choose a public notice */
    public: integer('public', { mode: 'boolean' }).notNull(),
    /**
     * Before customer organisations were kept by staff: the company names typed in the composer. Kept
     * readable; an incident with names and no ids below reaches no one (names prove nothing).
     */
    audienceOrganisations: text('audience_organisations', { mode: 'json' }).$type<string[] | null>(),
    /** null: every subscriber of the topic; else only the verified members of these customer organisations */
    audienceOrganisationIds: text('audience_organisation_ids', { mode: 'json' }).$type<number[] | null>(),
    startedAt: integer('started_at', { mode: 'timestamp_ms' }).notNull(),
    resolvedAt: integer('resolved_at', { mode: 'timestamp_ms' }),
    nextUpdateBy: integer('next_update_by', { mode: 'timestamp_ms' }),
    /** scheduled maintenance: the announced window */
    windowStartsAt: integer('window_starts_at', { mode: 'timestamp_ms' }),
    windowEndsAt: integer('window_ends_at', { mode: 'timestamp_ms' }),
    createdBy: integer('created_by'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('incidents_status').on(t.status, t.startedAt)],
);

/** The services an incident affects, and the state it leaves each in. */
export const incidentComponents = sqliteTable(
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

export const incidentUpdates = sqliteTable(
  'incident_updates',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    incidentId: integer('incident_id')
      .notNull()
      .references(() => incidents.id, { onDelete: 'cascade' }),
    status: text('status', { enum: ['investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress'] }).notNull(),
    body: text('body').notNull(),
    publishedAt: integer('published_at', { mode: 'timestamp_ms' }).notNull(),
    notificationId: integer('notification_id'),
    /** false: published on the pages only, staff chose not to notify subscribers of it */
    notified: integer('notified', { mode: 'boolean' }).notNull().default(true),
    createdBy: integer('created_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('incident_updates_incident').on(t.incidentId, t.publishedAt)],
);

/**
 * What staff changed after publishing: an update's text, an incident's
 * title or severity, with the text before and after. Written once, never
 * changed: the pages say "edited" from these rows, and the audit log
 * records who did it.
 */
export const incidentRevisions = sqliteTable(
  'incident_revisions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    incidentId: integer('incident_id')
      .notNull()
      .references(() => incidents.id, { onDelete: 'cascade' }),
    /** the update whose text changed; null for the incident's own fields */
    updateId: integer('update_id').references(() => incidentUpdates.id, { onDelete: 'cascade' }),
    field: text('field', { enum: ['body', 'title', 'severity'] }).notNull(),
    before: text('before').notNull(),
    after: text('after').notNull(),
    /** a correction notice went to subscribers */
    notified: integer('notified', { mode: 'boolean' }).notNull(),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
    by: integer('by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('incident_revisions_incident').on(t.incidentId, t.id)],
);

/**
 * The history of each service's state: one row each time a source changes
 * the state it declares for a service (an incident's update, a maintenance
 * step, later automation), written in the transaction of that change. A
 * service's state at any moment is the worst any source declares then; the
 * 90-day bars, the day details and uptime are computed from these rows
 * (src/core/incidents/availability.ts). Rows are never updated.
 */
export const componentStates = sqliteTable(
  'component_states',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    componentId: text('component_id').notNull(),
    status: text('status', { enum: ['operational', 'degraded', 'partial_outage', 'major_outage', 'under_maintenance'] }).notNull(),
    /** from when the source declares this state (until its next row) */
    since: integer('since', { mode: 'timestamp_ms' }).notNull(),
    /** the incident that declared it; null for sources outside incidents (automation, the service's listing) */
    incidentId: integer('incident_id').references(() => incidents.id, { onDelete: 'cascade' }),
    /** the published update that carried it, when one did */
    updateId: integer('update_id'),
    /**
     * update: an incident update by staff (or published on their schedule); maintenance: a maintenance step
     * the scheduler took; automation: a monitor (later); listed: the service first appeared on the status page,
     * operational, which is where its data begins; backfill: reconstructed when the table was added
     */
    source: text('source', { enum: ['update', 'maintenance', 'automation', 'listed', 'backfill'] }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    index('component_states_component').on(t.componentId, t.since),
    index('component_states_incident').on(t.incidentId, t.componentId),
  ],
);
