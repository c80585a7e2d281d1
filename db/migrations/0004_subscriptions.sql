CREATE TABLE `slack_oauth_states` (
	`id` text PRIMARY KEY NOT NULL,
	`choices` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer
);
--> statement-breakpoint
CREATE TABLE `subscription_challenges` (
	`id` text PRIMARY KEY NOT NULL,
	`recipient_id` integer NOT NULL,
	`kind` text NOT NULL,
	`secret_hash` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `subscription_challenges_recipient` ON `subscription_challenges` (`recipient_id`);