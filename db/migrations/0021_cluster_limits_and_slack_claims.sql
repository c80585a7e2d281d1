CREATE TABLE `provider_limits` (
	`key` text PRIMARY KEY NOT NULL,
	`tokens` real NOT NULL,
	`granted` real NOT NULL,
	`updated_at` integer NOT NULL,
	`paused_until` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_slack_threads` (
	`recipient_id` integer NOT NULL,
	`thread_key` text NOT NULL,
	`channel_id` text,
	`ts` text,
	`claimed_by` text,
	`claim_expires_at` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	PRIMARY KEY(`recipient_id`, `thread_key`),
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
-- drizzle-kit generated a copy of the new claim columns from the old table, which has none: only existing columns are copied.
INSERT INTO `__new_slack_threads`("recipient_id", "thread_key", "channel_id", "ts", "trust_center_id") SELECT "recipient_id", "thread_key", "channel_id", "ts", "trust_center_id" FROM `slack_threads`;--> statement-breakpoint
DROP TABLE `slack_threads`;--> statement-breakpoint
ALTER TABLE `__new_slack_threads` RENAME TO `slack_threads`;--> statement-breakpoint
PRAGMA foreign_keys=ON;