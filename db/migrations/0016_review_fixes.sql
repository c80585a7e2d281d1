ALTER TABLE `scheduled_updates` ADD `notify` integer DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE `scheduled_updates` ADD `next_update_by` integer;--> statement-breakpoint
ALTER TABLE `recipients` ADD `suppressed_from` text;