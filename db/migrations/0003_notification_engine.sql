CREATE TABLE `deliveries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`notification_id` integer NOT NULL,
	`recipient_id` integer,
	`channel` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`lease_owner` text,
	`lease_expires_at` integer,
	`batch_key` text,
	`provider_message_id` text,
	`last_error` text,
	`sent_at` integer,
	`finished_at` integer,
	FOREIGN KEY (`notification_id`) REFERENCES `notifications`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `deliveries_notification_recipient` ON `deliveries` (`notification_id`,`recipient_id`);--> statement-breakpoint
CREATE INDEX `deliveries_due` ON `deliveries` (`status`,`channel`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `deliveries_provider_id` ON `deliveries` (`provider_message_id`);--> statement-breakpoint
CREATE TABLE `delivery_attempts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`delivery_id` integer NOT NULL,
	`at` integer NOT NULL,
	`outcome` text NOT NULL,
	`http_status` integer,
	`provider_code` text,
	`duration_ms` integer NOT NULL,
	`error` text,
	FOREIGN KEY (`delivery_id`) REFERENCES `deliveries`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `delivery_attempts_delivery` ON `delivery_attempts` (`delivery_id`);--> statement-breakpoint
CREATE TABLE `logged_messages` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`delivery_id` integer,
	`channel` text NOT NULL,
	`to` text NOT NULL,
	`payload` text NOT NULL,
	`at` integer NOT NULL,
	FOREIGN KEY (`delivery_id`) REFERENCES `deliveries`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `logged_messages_at` ON `logged_messages` (`at`);--> statement-breakpoint
CREATE TABLE `notifications` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`thread_key` text,
	`title` text NOT NULL,
	`content` text NOT NULL,
	`audience` text NOT NULL,
	`recipient_count` integer NOT NULL,
	`created_by` integer,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `recipients` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`subscriber_id` integer,
	`channel` text NOT NULL,
	`address` text NOT NULL,
	`address_hash` text NOT NULL,
	`secret` text,
	`status` text NOT NULL,
	`suppressed_at` integer,
	`suppressed_reason` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`subscriber_id`) REFERENCES `subscribers`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `recipients_channel_address` ON `recipients` (`channel`,`address_hash`);--> statement-breakpoint
CREATE INDEX `recipients_subscriber` ON `recipients` (`subscriber_id`);--> statement-breakpoint
CREATE TABLE `slack_threads` (
	`recipient_id` integer NOT NULL,
	`thread_key` text NOT NULL,
	`channel_id` text NOT NULL,
	`ts` text NOT NULL,
	PRIMARY KEY(`recipient_id`, `thread_key`),
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `subscriber_topics` (
	`subscriber_id` integer NOT NULL,
	`topic` text NOT NULL,
	`component` text DEFAULT '' NOT NULL,
	PRIMARY KEY(`subscriber_id`, `topic`, `component`),
	FOREIGN KEY (`subscriber_id`) REFERENCES `subscribers`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `subscriber_topics_topic` ON `subscriber_topics` (`topic`,`component`);--> statement-breakpoint
CREATE TABLE `subscribers` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation` text,
	`created_at` integer NOT NULL
);
