CREATE TABLE `postmortems` (
	`incident_id` integer PRIMARY KEY NOT NULL,
	`body` text NOT NULL,
	`published_at` integer NOT NULL,
	`published_by` integer NOT NULL,
	`notification_id` integer,
	FOREIGN KEY (`incident_id`) REFERENCES `incidents`(`id`) ON UPDATE no action ON DELETE cascade
);
