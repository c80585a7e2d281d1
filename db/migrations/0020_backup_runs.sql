CREATE TABLE `backup_alerts` (
	`key` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`at` integer NOT NULL,
	`notification_id` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `backup_runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`slot` integer NOT NULL,
	`taken_by` text NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	`file` text,
	`bytes` integer,
	`outcome` text NOT NULL,
	`error` text,
	`counts` text,
	`restore_checked_at` integer,
	`restore_ms` integer,
	`restore_outcome` text,
	`restore_error` text,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `backup_runs_slot_unique` ON `backup_runs` (`slot`);--> statement-breakpoint
CREATE INDEX `backup_runs_started` ON `backup_runs` (`started_at`);