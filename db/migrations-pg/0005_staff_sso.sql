ALTER TABLE "staff" ADD COLUMN "sso_issuer" text;--> statement-breakpoint
ALTER TABLE "staff" ADD COLUMN "sso_subject" text;--> statement-breakpoint
ALTER TABLE "staff_sessions" ADD COLUMN "method" text DEFAULT 'password' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "staff_sso_identity" ON "staff" USING btree ("sso_issuer","sso_subject");