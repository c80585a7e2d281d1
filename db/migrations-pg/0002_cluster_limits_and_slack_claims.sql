CREATE TABLE "provider_limits" (
	"key" text PRIMARY KEY NOT NULL,
	"tokens" double precision NOT NULL,
	"granted" double precision NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"paused_until" timestamp with time zone,
	"trust_center_id" integer DEFAULT nullif(current_setting('app.trust_center', true), '')::integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "slack_threads" ALTER COLUMN "channel_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "slack_threads" ALTER COLUMN "ts" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "slack_threads" ADD COLUMN "claimed_by" text;--> statement-breakpoint
ALTER TABLE "slack_threads" ADD COLUMN "claim_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "provider_limits" ADD CONSTRAINT "provider_limits_trust_center_id_trust_centers_id_fk" FOREIGN KEY ("trust_center_id") REFERENCES "public"."trust_centers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "provider_limits" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "provider_limits" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "trust_center_isolation" ON "provider_limits"
  USING ("trust_center_id" = nullif(current_setting('app.trust_center', true), '')::integer)
  WITH CHECK ("trust_center_id" = nullif(current_setting('app.trust_center', true), '')::integer);
