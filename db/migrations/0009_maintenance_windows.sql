ALTER TABLE `incidents` ADD `window_starts_at` integer;--> statement-breakpoint
ALTER TABLE `incidents` ADD `window_ends_at` integer;