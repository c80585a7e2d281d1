/**
 * A fingerprint of everything the public status pages show: it changes when
 * an incident, an update or a postmortem is written, and when the UTC day
 * turns (the 90-day bars). Pages rendered for one fingerprint are served
 * from memory until it changes, so a surge of readers during an incident
 * costs one render per change, not one per request.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../db/client.ts';

/** Prepared once per connection: a surge asks on every turn of the event loop. */
const statements = new WeakMap<Db, Statement<[], { u: number; i: number; p: number; n: number }>>();

export function statusVersion(db: Db, now: Date): string {
  let statement = statements.get(db);
  if (!statement) {
    statement = db.$client.prepare(
      `SELECT (SELECT coalesce(max(id), 0) FROM incident_updates) AS u,
              (SELECT count(*) FROM incidents) AS i,
              (SELECT count(*) FROM postmortems) AS p,
              (SELECT coalesce(max(next_update_by), 0) FROM incidents WHERE status != 'resolved') AS n`,
    );
    statements.set(db, statement);
  }
  const row = statement.get();
  if (!row) throw new Error('the status version query returned no row');
  return `${row.u}:${row.i}:${row.p}:${row.n}:${now.toISOString().slice(0, 10)}`;
}
