CREATE TABLE `announcements` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`title` text NOT NULL,
	`body` text NOT NULL,
	`topics` text NOT NULL,
	`effective_on` text,
	`status` text NOT NULL,
	`publish_at` integer,
	`published_at` integer,
	`published_by` integer,
	`notification_id` integer,
	`form_key` text,
	`created_by` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `announcements_status` ON `announcements` (`status`,`published_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `announcements_form_key` ON `announcements` (`form_key`);