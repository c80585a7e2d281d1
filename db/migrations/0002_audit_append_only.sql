-- The audit trail is append-only: no entry is ever changed, and entries are
-- removed only when a retention purge covering them has been recorded first.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be changed');
END;
--> statement-breakpoint
CREATE TRIGGER audit_log_delete_only_purged BEFORE DELETE ON audit_log
WHEN OLD.id > COALESCE((SELECT MAX(up_to_id) FROM audit_purges), 0)
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only: only entries covered by a recorded purge can be removed');
END;
--> statement-breakpoint
CREATE TRIGGER audit_purges_no_update BEFORE UPDATE ON audit_purges
BEGIN
  SELECT RAISE(ABORT, 'audit_purges is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER audit_purges_no_delete BEFORE DELETE ON audit_purges
BEGIN
  SELECT RAISE(ABORT, 'audit_purges is append-only');
END;
