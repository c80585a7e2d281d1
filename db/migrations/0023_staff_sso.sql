ALTER TABLE `staff` ADD `sso_issuer` text;--> statement-breakpoint
ALTER TABLE `staff` ADD `sso_subject` text;--> statement-breakpoint
CREATE UNIQUE INDEX `staff_sso_identity` ON `staff` (`sso_issuer`,`sso_subject`);--> statement-breakpoint
ALTER TABLE `staff_sessions` ADD `method` text DEFAULT 'password' NOT NULL;