-- Customer organisations kept by staff, their verified email domains and the addresses staff placed in
-- them. recipients.domain_hash cannot be filled here (SQL cannot open a sealed address): the server fills
-- it at start-up (src/core/organisations/domains.ts). incidents.audience_organisations keeps the company
-- names typed before this migration, readable; such an incident reaches no one (names prove nothing).
CREATE TABLE `customer_organisations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` integer,
	`updated_at` integer NOT NULL,
	`updated_by` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `customer_organisations_name` ON `customer_organisations` (lower("name"));--> statement-breakpoint
CREATE TABLE `organisation_domains` (
	`organisation_id` integer NOT NULL,
	`domain` text NOT NULL,
	`domain_hash` text NOT NULL,
	`added_at` integer NOT NULL,
	`added_by` integer,
	PRIMARY KEY(`organisation_id`, `domain`),
	FOREIGN KEY (`organisation_id`) REFERENCES `customer_organisations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `organisation_domains_hash` ON `organisation_domains` (`domain_hash`);--> statement-breakpoint
CREATE TABLE `organisation_members` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`recipient_id` integer NOT NULL,
	`basis` text NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` integer,
	FOREIGN KEY (`organisation_id`) REFERENCES `customer_organisations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `organisation_members_recipient` ON `organisation_members` (`organisation_id`,`recipient_id`);--> statement-breakpoint
CREATE INDEX `organisation_members_by_recipient` ON `organisation_members` (`recipient_id`);--> statement-breakpoint
ALTER TABLE `incidents` ADD `audience_organisation_ids` text;--> statement-breakpoint
ALTER TABLE `recipients` ADD `domain_hash` text;--> statement-breakpoint
CREATE INDEX `recipients_domain` ON `recipients` (`domain_hash`);