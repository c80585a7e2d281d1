/**
 * The GDPR Art. 33(3) facts of data breaches and when the supervisory authority was notified
 * (`breach_details`), on SQLite and PostgreSQL alike; the clocks computed from them are
 * src/core/incidents/breach.ts's. Convention: src/stores/rate-limits.ts.
 */
import { and, eq, isNull } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { breachDetails } from '../../db/schema/breaches.ts';

export type BreachRow = Omit<typeof breachDetails.$inferSelect, 'trustCenterId'>;
export type BreachFacts = Omit<BreachRow, 'incidentId' | 'authorityNotifiedAt'>;

/** Writes the breach's facts (replacing those it had); the authority's notification is kept. */
export async function saveBreachFacts(tx: Tx, incidentId: number, facts: BreachFacts): Promise<void> {
  const q = query(tx);
  const b = q.t.breachDetails;
  await q.db
    .insert(b)
    .values({ incidentId, ...facts, trustCenterId: q.trustCenter })
    .onConflictDoUpdate({ target: b.incidentId, set: facts, setWhere: eq(b.trustCenterId, q.trustCenter) });
}

export async function breachRow(r: Reader | Tx, incidentId: number): Promise<BreachRow | undefined> {
  const q = reading(r);
  const b = q.t.breachDetails;
  const rows = await q.db
    .select({
      incidentId: b.incidentId,
      awareAt: b.awareAt,
      occurredAt: b.occurredAt,
      nature: b.nature,
      subjects: b.subjects,
      records: b.records,
      consequences: b.consequences,
      measures: b.measures,
      authorityNotifiedAt: b.authorityNotifiedAt,
    })
    .from(b)
    .where(and(eq(b.trustCenterId, q.trustCenter), eq(b.incidentId, incidentId)))
    .limit(1);
  return rows[0];
}

/**
 * Records that the authority was notified, once: a conditional UPDATE (only while none is
 * recorded), so of concurrent callers exactly one changes the row (PostgreSQL re-checks the
 * condition on the row the first committed). True when this call recorded it.
 */
export async function recordAuthorityNotified(tx: Tx, incidentId: number, at: Date): Promise<boolean> {
  const q = query(tx);
  const b = q.t.breachDetails;
  const changed = affected(
    await q.db
      .update(b)
      .set({ authorityNotifiedAt: at })
      .where(and(eq(b.trustCenterId, q.trustCenter), eq(b.incidentId, incidentId), isNull(b.authorityNotifiedAt))),
  );
  return changed === 1;
}
