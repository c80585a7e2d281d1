DROP INDEX "deliveries_provider_id";--> statement-breakpoint
CREATE INDEX "deliveries_recipient_sent" ON "deliveries" USING btree ("recipient_id") WHERE "deliveries"."provider_message_id" IS NOT NULL;