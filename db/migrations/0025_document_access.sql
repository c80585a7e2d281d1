CREATE TABLE `access_grants` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`request_id` integer,
	`recipient_id` integer NOT NULL,
	`name` text NOT NULL,
	`company` text NOT NULL,
	`documents` text NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` integer,
	`expires_at` integer NOT NULL,
	`revoked_at` integer,
	`revoked_by` integer,
	`expiry_notice_at` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `access_requests`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `access_grants_recipient` ON `access_grants` (`recipient_id`);--> statement-breakpoint
CREATE INDEX `access_grants_expires` ON `access_grants` (`expires_at`);--> statement-breakpoint
CREATE TABLE `access_requests` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`recipient_id` integer NOT NULL,
	`domain` text NOT NULL,
	`name` text NOT NULL,
	`company` text NOT NULL,
	`reason` text NOT NULL,
	`documents` text NOT NULL,
	`status` text NOT NULL,
	`created_at` integer NOT NULL,
	`verified_at` integer,
	`decided_via` text,
	`rule_id` integer,
	`rule_pattern` text,
	`decided_by` integer,
	`decided_at` integer,
	`refusal_message` text,
	`reminded_at` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `access_requests_status` ON `access_requests` (`status`,`created_at`);--> statement-breakpoint
CREATE INDEX `access_requests_recipient` ON `access_requests` (`recipient_id`);--> statement-breakpoint
CREATE TABLE `access_rules` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`pattern` text NOT NULL,
	`decision` text NOT NULL,
	`documents` text,
	`grant_days` integer,
	`created_at` integer NOT NULL,
	`created_by` integer,
	`updated_at` integer NOT NULL,
	`updated_by` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `access_rules_pattern` ON `access_rules` (`pattern`);--> statement-breakpoint
CREATE TABLE `document_views` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`grant_id` integer NOT NULL,
	`recipient_id` integer NOT NULL,
	`document` text NOT NULL,
	`kind` text NOT NULL,
	`at` integer NOT NULL,
	`watermark` text NOT NULL,
	`ip` text,
	`user_agent` text,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`grant_id`) REFERENCES `access_grants`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `document_views_grant` ON `document_views` (`grant_id`);--> statement-breakpoint
CREATE INDEX `document_views_at` ON `document_views` (`at`);--> statement-breakpoint
CREATE TABLE `nda_acceptances` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`nda_hash` text NOT NULL,
	`recipient_id` integer NOT NULL,
	`grant_id` integer,
	`full_name` text NOT NULL,
	`company` text NOT NULL,
	`accepted_at` integer NOT NULL,
	`ip` text,
	`user_agent` text,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`nda_hash`) REFERENCES `nda_texts`(`hash`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`grant_id`) REFERENCES `access_grants`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `nda_acceptances_recipient` ON `nda_acceptances` (`recipient_id`);--> statement-breakpoint
CREATE TABLE `nda_texts` (
	`hash` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`title` text NOT NULL,
	`body` text NOT NULL,
	`first_accepted_at` integer NOT NULL,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `reader_links` (
	`id` text PRIMARY KEY NOT NULL,
	`recipient_id` integer NOT NULL,
	`purpose` text NOT NULL,
	`request_id` integer,
	`secret_hash` blob NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`request_id`) REFERENCES `access_requests`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `reader_links_recipient` ON `reader_links` (`recipient_id`);--> statement-breakpoint
CREATE TABLE `reader_sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`recipient_id` integer NOT NULL,
	`secret_hash` blob NOT NULL,
	`created_at` integer NOT NULL,
	`last_active_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`ip` text,
	`user_agent` text,
	`trust_center_id` integer DEFAULT 1 NOT NULL,
	FOREIGN KEY (`recipient_id`) REFERENCES `recipients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`trust_center_id`) REFERENCES `trust_centers`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `reader_sessions_recipient` ON `reader_sessions` (`recipient_id`);--> statement-breakpoint
-- Evidence is written once (hand-written): an accepted NDA text never changes and is never removed, and
-- acceptances and document views are never rewritten.
CREATE TRIGGER nda_texts_no_update BEFORE UPDATE ON nda_texts
BEGIN
  SELECT RAISE(ABORT, 'nda_texts is append-only: an accepted NDA text cannot change');
END;
--> statement-breakpoint
CREATE TRIGGER nda_texts_no_delete BEFORE DELETE ON nda_texts
BEGIN
  SELECT RAISE(ABORT, 'nda_texts is append-only: an accepted NDA text cannot be removed');
END;
--> statement-breakpoint
CREATE TRIGGER nda_acceptances_no_update BEFORE UPDATE ON nda_acceptances
BEGIN
  SELECT RAISE(ABORT, 'nda_acceptances is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER document_views_no_update BEFORE UPDATE ON document_views
BEGIN
  SELECT RAISE(ABORT, 'document_views is append-only');
END;
