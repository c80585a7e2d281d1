CREATE TABLE `console_settings` (
	`key` text NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer NOT NULL,
	`updated_by` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	PRIMARY KEY(`trust_center_id`, `key`),
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
ALTER TABLE `staff` ADD `break_glass` integer DEFAULT false NOT NULL;