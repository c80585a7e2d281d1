CREATE TABLE `alert_drafts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`fingerprint` text NOT NULL,
	`source` text NOT NULL,
	`component_id` text NOT NULL,
	`component_status` text NOT NULL,
	`severity` text NOT NULL,
	`title` text NOT NULL,
	`body` text NOT NULL,
	`state` text NOT NULL,
	`incident_id` integer,
	`published_by` integer,
	`published_at` integer,
	`first_firing_at` integer NOT NULL,
	`last_firing_at` integer NOT NULL,
	`firing_count` integer NOT NULL,
	`flaps` integer DEFAULT 0 NOT NULL,
	`alert_resolved_at` integer,
	`closed_at` integer,
	`closed_by` integer,
	`created_at` integer NOT NULL,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`incident_id`) REFERENCES `incidents`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `alert_drafts_fingerprint` ON `alert_drafts` (`fingerprint`,`closed_at`);--> statement-breakpoint
CREATE INDEX `alert_drafts_state` ON `alert_drafts` (`state`,`created_at`);--> statement-breakpoint
CREATE TABLE `alert_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`draft_id` integer,
	`token_id` integer,
	`source` text NOT NULL,
	`fingerprint` text NOT NULL,
	`status` text NOT NULL,
	`detail` text NOT NULL,
	`received_at` integer NOT NULL,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`draft_id`) REFERENCES `alert_drafts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `alert_events_draft` ON `alert_events` (`draft_id`,`id`);--> statement-breakpoint
CREATE TABLE `api_idempotency_keys` (
	`token_id` integer NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`state` text NOT NULL,
	`response_status` integer,
	`response_body` text,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	PRIMARY KEY(`token_id`, `key`),
	FOREIGN KEY (`token_id`) REFERENCES `api_tokens`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `api_idempotency_keys_expires` ON `api_idempotency_keys` (`expires_at`);--> statement-breakpoint
CREATE TABLE `api_tokens` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`scopes` text NOT NULL,
	`created_by` integer NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer,
	`revoked_by` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash` ON `api_tokens` (`token_hash`);--> statement-breakpoint
CREATE TABLE `subscriber_consents` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`subscriber_id` integer,
	`recipient_id` integer NOT NULL,
	`source` text NOT NULL,
	`method` text NOT NULL,
	`opted_in_at` integer,
	`opted_in_via` text NOT NULL,
	`import_id` integer,
	`import_row` integer,
	`recorded_at` integer NOT NULL,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`subscriber_id`) REFERENCES `subscribers`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`import_id`) REFERENCES `subscriber_imports`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `subscriber_consents_recipient` ON `subscriber_consents` (`recipient_id`);--> statement-breakpoint
CREATE INDEX `subscriber_consents_subscriber` ON `subscriber_consents` (`subscriber_id`);--> statement-breakpoint
CREATE TABLE `subscriber_imports` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`format` text NOT NULL,
	`file_name` text NOT NULL,
	`file_sha256` text NOT NULL,
	`dry_run` integer NOT NULL,
	`consent` text NOT NULL,
	`counts` text,
	`created_by` integer,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TRIGGER alert_events_no_update BEFORE UPDATE ON alert_events
BEGIN
  SELECT RAISE(ABORT, 'alert_events is append-only');
END;
