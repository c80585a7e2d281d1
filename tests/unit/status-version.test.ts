/**
 * The status version (src/core/incidents/status-version.ts): what makes the
 * public status pages render again, and what must not. On each engine (SQLite
 * always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, as the application
 * role under row-level security); one database for the cases, seeded through
 * the builder.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { statusVersion as readVersion } from '../../src/core/incidents/status-version.ts';
import type { ComponentStatus } from '../../src/core/incidents/types.ts';
import { writeRows } from '../helpers/engine-server.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';

describe.each(enginesUnderTest())('statusVersion on $name', (engine) => {
  const NOW = new Date('2026-03-01T12:00:00Z');
  let opened: OpenedEngine;
  let database: Database;
  beforeAll(async () => {
    opened = await engine.open();
    database = opened.database;
  });
  afterAll(() => opened?.close());

  /** The version as the snapshots read it: one read of the engine handle. */
  const statusVersion = (now: Date) =>
    database.engine === 'sqlite' ? database.read((r) => readVersion(r, now)) : database.read((r) => readVersion(r, now));

  const incident = (isPublic: boolean) =>
    writeRows(database, async (q) => {
      const [row] = await q.db
        .insert(q.t.incidents)
        .values({
          kind: 'breach',
          severity: 'major',
          title: 'x',
          status: 'investigating',
          public: isPublic,
          startedAt: NOW,
          createdAt: NOW,
        })
        .returning({ id: q.t.incidents.id });
      if (!row) throw new Error('no incident');
      return row.id;
    });

  const state = (componentId: string, status: ComponentStatus, incidentId: number | null, source: 'update' | 'listed') =>
    writeRows(database, (q) => q.db.insert(q.t.componentStates).values({ componentId, status, since: NOW, incidentId, source }));

  it('does not change for work on an incident the public does not see', async () => {
    const before = await statusVersion(NOW);
    const hidden = await incident(false);
    await writeRows(database, async (q) => {
      await q.db.insert(q.t.incidentUpdates).values({ incidentId: hidden, status: 'investigating', body: 'x', publishedAt: NOW });
      await q.db
        .update(q.t.incidents)
        .set({ nextUpdateBy: new Date(NOW.getTime() + 3_600_000) })
        .where(eq(q.t.incidents.id, hidden));
    });
    expect(await statusVersion(NOW)).toBe(before);
    await state('api', 'major_outage', hidden, 'update');
    // nor later, while that incident stays open
    expect(await statusVersion(NOW)).toBe(before);
    expect(await statusVersion(new Date(NOW.getTime() + 10 * 60_000))).toBe(before);
  });

  it('changes with a public incident, its recorded states, and every five minutes while it is under way', async () => {
    const before = await statusVersion(NOW);
    const shown = await incident(true);
    const declared = await statusVersion(NOW);
    expect(declared).not.toBe(before);
    await state('api', 'major_outage', shown, 'update');
    const recorded = await statusVersion(NOW);
    expect(recorded).not.toBe(declared);
    expect(await statusVersion(new Date(NOW.getTime() + 60_000))).toBe(recorded);
    expect(await statusVersion(new Date(NOW.getTime() + 5 * 60_000))).not.toBe(recorded);
    // a service's history beginning (no incident) changes what the bars show
    await state('web', 'operational', null, 'listed');
    expect(await statusVersion(NOW)).not.toBe(recorded);
  });
});
