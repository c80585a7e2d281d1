CREATE TABLE `change_notices` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`subject` text NOT NULL,
	`change` text NOT NULL,
	`subject_id` text NOT NULL,
	`subject_name` text NOT NULL,
	`details` text NOT NULL,
	`fingerprint` text NOT NULL,
	`status` text NOT NULL,
	`intro` text NOT NULL,
	`effective_on` text,
	`objection_deadline` text,
	`override_reason` text,
	`publish_at` integer,
	`published_at` integer,
	`published_by` integer,
	`notification_id` integer,
	`detected_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `change_notices_status` ON `change_notices` (`status`,`published_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `change_notices_open_fingerprint` ON `change_notices` (`fingerprint`) WHERE status IN ('draft', 'scheduled');--> statement-breakpoint
CREATE TABLE `objection_notes` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`objection_id` integer NOT NULL,
	`staff_id` integer,
	`body` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`objection_id`) REFERENCES `objections`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `objections` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`notice_id` integer NOT NULL,
	`recipient_id` integer,
	`link_recipient` integer NOT NULL,
	`subscriber_id` integer,
	`organisation` text,
	`contact_name` text,
	`reasons` text NOT NULL,
	`status` text NOT NULL,
	`late` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`notice_id`) REFERENCES `change_notices`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`subscriber_id`) REFERENCES `subscribers`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `objections_notice_link` ON `objections` (`notice_id`,`link_recipient`);--> statement-breakpoint
CREATE INDEX `objections_status` ON `objections` (`status`,`created_at`);--> statement-breakpoint
-- Until now the first-start snapshot was never shown to anyone; from here it is the public history.
-- Re-taken from the content at the next start, so an upgrade does not roll the public list back.
DELETE FROM `content_snapshots`;
