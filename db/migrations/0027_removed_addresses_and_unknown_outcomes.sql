CREATE TABLE `removed_addresses` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`channel` text NOT NULL,
	`address_hash` text NOT NULL,
	`reason` text NOT NULL,
	`removed_at` integer NOT NULL,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `removed_addresses_address` ON `removed_addresses` (`trust_center_id`,`channel`,`address_hash`);--> statement-breakpoint
ALTER TABLE `deliveries` ADD `unknown_since` integer;--> statement-breakpoint
ALTER TABLE `delivery_attempts` ADD `kind` text DEFAULT 'send' NOT NULL;