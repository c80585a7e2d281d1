/**
 * A fingerprint of everything the public status pages show: it changes when
 * an incident, an update, a postmortem, an edit or a recorded service state
 * is written for a public incident, and when the UTC day turns (the 90-day bars). While an incident
 * is under way it also changes every five minutes, so the time it has
 * lasted and the uptime figures keep up. Pages rendered for one fingerprint
 * are served from memory until it changes, so a surge of readers during an
 * incident costs one render per change, not one per request.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../db/client.ts';

interface VersionRow {
  u: number;
  i: number;
  p: number;
  n: number;
  s: number;
  o: number;
  e: number;
}

/** Prepared once per connection: a surge asks on every turn of the event loop. */
const statements = new WeakMap<Db, Statement<[], VersionRow>>();

/** How often the pages of an incident under way are rendered afresh, at most. */
export const OPEN_INCIDENT_REFRESH_MS = 5 * 60_000;

export function statusVersion(db: Db, now: Date): string {
  let statement = statements.get(db);
  if (!statement) {
    statement = db.$client.prepare(
      // Public incidents only: work on a breach without a public notice must not show as a fresh render.
      // The newest row first by rowid, so each lookup stops at the first public one.
      `SELECT coalesce((SELECT u.id FROM incident_updates u JOIN incidents i ON i.id = u.incident_id
                         WHERE i.public = 1 ORDER BY u.id DESC LIMIT 1), 0) AS u,
              (SELECT count(*) FROM incidents WHERE public = 1) AS i,
              (SELECT count(*) FROM postmortems p JOIN incidents i ON i.id = p.incident_id WHERE i.public = 1) AS p,
              (SELECT coalesce(max(next_update_by), 0) FROM incidents WHERE status != 'resolved' AND public = 1) AS n,
              coalesce((SELECT s.id FROM component_states s LEFT JOIN incidents i ON i.id = s.incident_id
                         WHERE s.incident_id IS NULL OR i.public = 1 ORDER BY s.id DESC LIMIT 1), 0) AS s,
              EXISTS (SELECT 1 FROM incidents WHERE public = 1 AND status IN ('investigating', 'identified', 'monitoring', 'in_progress')) AS o,
              coalesce((SELECT r.id FROM incident_revisions r JOIN incidents i ON i.id = r.incident_id
                         WHERE i.public = 1 ORDER BY r.id DESC LIMIT 1), 0) AS e`,
    );
    statements.set(db, statement);
  }
  const row = statement.get();
  if (!row) throw new Error('the status version query returned no row');
  const turn = row.o ? `:${Math.floor(now.getTime() / OPEN_INCIDENT_REFRESH_MS)}` : '';
  return `${row.u}:${row.i}:${row.p}:${row.n}:${row.s}:${row.e}:${now.toISOString().slice(0, 10)}${turn}`;
}
