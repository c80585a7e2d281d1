CREATE TABLE "console_settings" (
	"key" text NOT NULL,
	"value" text NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"updated_by" integer,
	"trust_center_id" integer DEFAULT nullif(current_setting('app.trust_center', true), '')::integer NOT NULL,
	CONSTRAINT "console_settings_trust_center_id_key_pk" PRIMARY KEY("trust_center_id","key")
);
--> statement-breakpoint
ALTER TABLE "staff" ADD COLUMN "break_glass" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "console_settings" ADD CONSTRAINT "console_settings_trust_center_id_trust_centers_id_fk" FOREIGN KEY ("trust_center_id") REFERENCES "public"."trust_centers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "console_settings" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "console_settings" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "trust_center_isolation" ON "console_settings"
  USING ("trust_center_id" = nullif(current_setting('app.trust_center', true), '')::integer)
  WITH CHECK ("trust_center_id" = nullif(current_setting('app.trust_center', true), '')::integer);
