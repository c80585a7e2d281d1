CREATE TABLE `trust_centers` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`slug` text NOT NULL,
	`hostname` text,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `trust_centers_slug_unique` ON `trust_centers` (`slug`);--> statement-breakpoint
CREATE UNIQUE INDEX `trust_centers_hostname_unique` ON `trust_centers` (`hostname`);--> statement-breakpoint
ALTER TABLE `audit_chain_upgrade` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `audit_log` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `audit_purges` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `audit_repeats` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `breach_details` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `announcements` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `change_notices` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `objection_notes` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `objections` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `content_snapshots` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `component_states` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `incident_components` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `incident_revisions` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `incident_updates` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `incidents` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `jobs` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `scheduled_updates` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `deliveries` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `delivery_attempts` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `logged_messages` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `notifications` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `recipients` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `slack_threads` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `subscriber_topics` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `subscribers` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `customer_organisations` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `organisation_domains` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `organisation_members` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `postmortems` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `rate_limits` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `recovery_codes` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `staff` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `staff_links` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `staff_sessions` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `slack_oauth_states` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
ALTER TABLE `subscription_challenges` ADD `trust_center_id` integer DEFAULT 1 NOT NULL REFERENCES trust_centers(id);--> statement-breakpoint
-- Hand-written: the one trust center every existing row (and every insert that names none) belongs to.
-- Migrations run with foreign keys off (db/client.ts), which is what lets the REFERENCES columns above
-- have DEFAULT 1; the keys are checked once the migration is applied.
INSERT INTO `trust_centers` (`id`, `slug`, `hostname`, `name`, `created_at`)
VALUES (1, 'default', NULL, 'Trust center', CAST(strftime('%s', 'now') AS INTEGER) * 1000);
