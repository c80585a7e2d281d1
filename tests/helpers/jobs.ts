/** Durable timers (the jobs table) brought forward by tests, on either engine, so the next worker pass runs them. */
import { and, eq, inArray } from 'drizzle-orm';
import type { Database } from '../../db/engine/types.ts';
import { writeRows } from './engine-server.ts';

/** Makes the jobs with these keys, or of this kind, due a second ago; returns how many there were. */
export function makeDue(database: Database, which: { keys: readonly string[] } | { kind: string }): Promise<number> {
  return writeRows(database, async (q) => {
    const j = q.t.jobs;
    const rows = await q.db
      .update(j)
      .set({ runAt: new Date(Date.now() - 1000) })
      .where(and(eq(j.trustCenterId, q.trustCenter), 'kind' in which ? eq(j.kind, which.kind) : inArray(j.key, [...which.keys])))
      .returning({ id: j.id });
    return rows.length;
  });
}
