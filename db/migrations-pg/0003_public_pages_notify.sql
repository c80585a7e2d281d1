-- The public pages every node keeps in memory (src/runtime/status-snapshots.ts) follow changes
-- made on any node: a write to a table those pages show sends a notification on the channel
-- `candor_public`, with the trust center as payload. PostgreSQL delivers it when the writing
-- transaction commits (never for one rolled back), once per transaction and payload; each node
-- LISTENs (db/engine/postgres.ts `listen`) and reads its versions afresh. Statement-level, so a
-- fan-out writing many rows notifies once.
CREATE FUNCTION candor_public_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('candor_public', coalesce(current_setting('app.trust_center', true), ''));
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER public_changed AFTER INSERT OR UPDATE OR DELETE ON "incidents" FOR EACH STATEMENT EXECUTE FUNCTION candor_public_changed();
--> statement-breakpoint
CREATE TRIGGER public_changed AFTER INSERT OR UPDATE OR DELETE ON "incident_updates" FOR EACH STATEMENT EXECUTE FUNCTION candor_public_changed();
--> statement-breakpoint
CREATE TRIGGER public_changed AFTER INSERT OR UPDATE OR DELETE ON "incident_revisions" FOR EACH STATEMENT EXECUTE FUNCTION candor_public_changed();
--> statement-breakpoint
CREATE TRIGGER public_changed AFTER INSERT OR UPDATE OR DELETE ON "postmortems" FOR EACH STATEMENT EXECUTE FUNCTION candor_public_changed();
--> statement-breakpoint
CREATE TRIGGER public_changed AFTER INSERT OR UPDATE OR DELETE ON "component_states" FOR EACH STATEMENT EXECUTE FUNCTION candor_public_changed();
--> statement-breakpoint
CREATE TRIGGER public_changed AFTER INSERT OR UPDATE OR DELETE ON "change_notices" FOR EACH STATEMENT EXECUTE FUNCTION candor_public_changed();
--> statement-breakpoint
CREATE TRIGGER public_changed AFTER INSERT OR UPDATE OR DELETE ON "announcements" FOR EACH STATEMENT EXECUTE FUNCTION candor_public_changed();
