CREATE TABLE `component_states` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`component_id` text NOT NULL,
	`status` text NOT NULL,
	`since` integer NOT NULL,
	`incident_id` integer,
	`update_id` integer,
	`source` text NOT NULL,
	FOREIGN KEY (`incident_id`) REFERENCES `incidents`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `component_states_component` ON `component_states` (`component_id`,`since`);--> statement-breakpoint
CREATE INDEX `component_states_incident` ON `component_states` (`incident_id`,`component_id`);--> statement-breakpoint
-- History is written once and never rewritten.
CREATE TRIGGER component_states_no_update BEFORE UPDATE ON component_states
BEGIN
  SELECT RAISE(ABORT, 'component_states is append-only: history cannot be changed');
END;
--> statement-breakpoint
-- Backfill (hand-written): before this table, only each incident's current (or last) state per service was
-- kept in incident_components, and resolving reset it to 'operational'. The history is reconstructed the
-- way /status read those rows until now, so the bars and uptime of days before the upgrade stay as they were:
-- * a service whose row is not 'operational' was in that state from the incident's start;
-- * otherwise (the incident was resolved, or the service restored while it stays open) in the state the
--   incident implies: under maintenance for maintenance, degraded performance for a minor incident and a
--   partial outage for a major or critical one (a resolved major outage is thus recorded as a partial outage:
--   the exact states of the past were never stored);
-- * it became operational again when the incident was resolved, or, restored while the incident is still open,
--   at the incident's latest update (the latest moment the restoration can have been published).
-- Maintenance not yet begun, and incidents resolved without a resolution time or before they started
-- (maintenance called off), leave no history. These rows have source 'backfill'. Where each service's data
-- begins ('listed' rows) is recorded at start, when the services of content/components.yaml are known
-- (src/core/incidents/history.ts).
INSERT INTO component_states (component_id, status, since, incident_id, update_id, source)
SELECT c.component_id,
       CASE WHEN c.status != 'operational' THEN c.status
            WHEN i.kind = 'maintenance' THEN 'under_maintenance'
            WHEN i.severity = 'minor' THEN 'degraded'
            ELSE 'partial_outage' END,
       i.started_at, i.id, NULL, 'backfill'
  FROM incidents i JOIN incident_components c ON c.incident_id = i.id
 WHERE i.status != 'scheduled'
   AND CASE WHEN i.status = 'resolved' THEN coalesce(i.resolved_at, i.started_at) > i.started_at
            WHEN c.status != 'operational' THEN 1
            ELSE coalesce((SELECT max(u.published_at) FROM incident_updates u WHERE u.incident_id = i.id), i.started_at) > i.started_at END
 ORDER BY i.started_at, i.id, c.component_id;
--> statement-breakpoint
INSERT INTO component_states (component_id, status, since, incident_id, update_id, source)
SELECT c.component_id, 'operational',
       CASE WHEN i.status = 'resolved' THEN i.resolved_at
            ELSE (SELECT max(u.published_at) FROM incident_updates u WHERE u.incident_id = i.id) END,
       i.id, NULL, 'backfill'
  FROM incidents i JOIN incident_components c ON c.incident_id = i.id
 WHERE i.status != 'scheduled'
   AND CASE WHEN i.status = 'resolved' THEN coalesce(i.resolved_at, i.started_at) > i.started_at
            WHEN c.status != 'operational' THEN 0
            ELSE coalesce((SELECT max(u.published_at) FROM incident_updates u WHERE u.incident_id = i.id), i.started_at) > i.started_at END
 ORDER BY 3, i.id, c.component_id;
