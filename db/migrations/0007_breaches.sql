CREATE TABLE `breach_details` (
	`incident_id` integer PRIMARY KEY NOT NULL,
	`aware_at` integer NOT NULL,
	`occurred_at` integer,
	`nature` text NOT NULL,
	`subjects` text NOT NULL,
	`records` text NOT NULL,
	`consequences` text NOT NULL,
	`measures` text NOT NULL,
	`authority_notified_at` integer,
	FOREIGN KEY (`incident_id`) REFERENCES `incidents`(`id`) ON UPDATE no action ON DELETE cascade
);
