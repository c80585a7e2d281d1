CREATE TABLE `incident_revisions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`incident_id` integer NOT NULL,
	`update_id` integer,
	`field` text NOT NULL,
	`before` text NOT NULL,
	`after` text NOT NULL,
	`notified` integer NOT NULL,
	`at` integer NOT NULL,
	`by` integer,
	FOREIGN KEY (`incident_id`) REFERENCES `incidents`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`update_id`) REFERENCES `incident_updates`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `incident_revisions_incident` ON `incident_revisions` (`incident_id`,`id`);--> statement-breakpoint
ALTER TABLE `incident_updates` ADD `notified` integer DEFAULT true NOT NULL;--> statement-breakpoint
-- Hand-written: revisions are history; what was published and what it became are never rewritten.
CREATE TRIGGER incident_revisions_no_update BEFORE UPDATE ON incident_revisions
BEGIN
  SELECT RAISE(ABORT, 'incident_revisions is append-only');
END;
