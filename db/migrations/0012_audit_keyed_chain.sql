CREATE TABLE `audit_chain_upgrade` (
	`last_plain_id` integer PRIMARY KEY NOT NULL
);
--> statement-breakpoint
CREATE TABLE `audit_repeats` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`fingerprint` text NOT NULL,
	`action` text NOT NULL,
	`actor_type` text NOT NULL,
	`actor_id` integer,
	`actor_label` text,
	`ip` text,
	`target` text,
	`summary` text NOT NULL,
	`first_entry_id` integer NOT NULL,
	`opened_at` integer NOT NULL,
	`closes_at` integer NOT NULL,
	`repeats` integer DEFAULT 0 NOT NULL,
	`first_repeat_at` integer,
	`last_repeat_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `audit_repeats_fingerprint_unique` ON `audit_repeats` (`fingerprint`);--> statement-breakpoint
CREATE INDEX `audit_repeats_closes` ON `audit_repeats` (`closes_at`);--> statement-breakpoint
ALTER TABLE `audit_log` ADD `key_id` text;--> statement-breakpoint
-- Hand-written: the log's plain SHA-256 entries as they stand at the upgrade are the ones the first keyed
-- write may seal (src/core/audit/log.ts); none when the log is empty.
INSERT INTO `audit_chain_upgrade` (`last_plain_id`) SELECT max(`id`) FROM `audit_log` HAVING count(*) > 0;
