/**
 * The status version (src/core/incidents/status-version.ts): what makes the
 * public status pages render again, and what must not.
 */
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import { statusVersion as readVersion } from '../../src/core/incidents/status-version.ts';

/** The version as the snapshots read it: one read of the connection's engine handle. */
const statusVersion = (db: ReturnType<typeof openDatabase>, now: Date) => databaseOf(db).read((r) => readVersion(r, now));

describe('statusVersion', () => {
  const NOW = new Date('2026-03-01T12:00:00Z');
  const incident = (db: ReturnType<typeof openDatabase>, isPublic: boolean, status = 'investigating') =>
    Number(
      db.$client
        .prepare(
          `INSERT INTO incidents (kind, severity, title, status, public, started_at, created_at) VALUES ('breach', 'major', 'x', ?, ?, ?, ?)`,
        )
        .run(status, isPublic ? 1 : 0, NOW.getTime(), NOW.getTime()).lastInsertRowid,
    );

  it('does not change for work on an incident the public does not see', async () => {
    const db = openDatabase(':memory:');
    const before = await statusVersion(db, NOW);
    const hidden = incident(db, false);
    db.$client
      .prepare(`INSERT INTO incident_updates (incident_id, status, body, published_at) VALUES (?, 'investigating', 'x', ?)`)
      .run(hidden, NOW.getTime());
    db.$client.prepare(`UPDATE incidents SET next_update_by = ? WHERE id = ?`).run(NOW.getTime() + 3_600_000, hidden);
    expect(await statusVersion(db, NOW)).toBe(before);
    db.$client
      .prepare(
        `INSERT INTO component_states (component_id, status, since, incident_id, source) VALUES ('api', 'major_outage', ?, ?, 'update')`,
      )
      .run(NOW.getTime(), hidden);
    // nor later, while that incident stays open
    expect(await statusVersion(db, NOW)).toBe(before);
    expect(await statusVersion(db, new Date(NOW.getTime() + 10 * 60_000))).toBe(before);
  });

  it('changes with a public incident, its recorded states, and every five minutes while it is under way', async () => {
    const db = openDatabase(':memory:');
    const before = await statusVersion(db, NOW);
    const shown = incident(db, true);
    const declared = await statusVersion(db, NOW);
    expect(declared).not.toBe(before);
    db.$client
      .prepare(
        `INSERT INTO component_states (component_id, status, since, incident_id, source) VALUES ('api', 'major_outage', ?, ?, 'update')`,
      )
      .run(NOW.getTime(), shown);
    const recorded = await statusVersion(db, NOW);
    expect(recorded).not.toBe(declared);
    expect(await statusVersion(db, new Date(NOW.getTime() + 60_000))).toBe(recorded);
    expect(await statusVersion(db, new Date(NOW.getTime() + 5 * 60_000))).not.toBe(recorded);
    // a service's history beginning (no incident) changes what the bars show
    db.$client
      .prepare(`INSERT INTO component_states (component_id, status, since, source) VALUES ('web', 'operational', ?, 'listed')`)
      .run(NOW.getTime());
    expect(await statusVersion(db, NOW)).not.toBe(recorded);
  });
});
