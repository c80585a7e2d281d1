/**
 * Console settings kept by staff (`console_settings`), on SQLite and PostgreSQL alike: one row per
 * setting and trust center, its value as JSON text, with when and by whom it was last changed. The
 * convention is src/stores/rate-limits.ts's; what a setting means (and who may change it) is the
 * domain's (today src/core/auth/sso-requirement.ts).
 */
import { and, eq } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';

export interface StoredSetting {
  /** the value as stored, parsed from JSON */
  value: unknown;
  updatedAt: Date;
  updatedBy: number | null;
}

/** The stored setting, or undefined when it was never set (its default applies). */
export async function settingOf(r: Reader | Tx, key: string): Promise<StoredSetting | undefined> {
  const q = reading(r);
  const cs = q.t.consoleSettings;
  const rows = await q.db
    .select({ value: cs.value, updatedAt: cs.updatedAt, updatedBy: cs.updatedBy })
    .from(cs)
    .where(and(eq(cs.trustCenterId, q.trustCenter), eq(cs.key, key)))
    .limit(1);
  const row = rows[0];
  return row ? { value: JSON.parse(row.value) as unknown, updatedAt: row.updatedAt, updatedBy: row.updatedBy } : undefined;
}

/** Sets the setting in one statement (an upsert on the trust center and key). */
export async function putSetting(tx: Tx, key: string, value: unknown, now: Date, updatedBy: number | null): Promise<void> {
  const q = query(tx);
  const cs = q.t.consoleSettings;
  const text = JSON.stringify(value);
  await q.db
    .insert(cs)
    .values({ key, value: text, updatedAt: now, updatedBy, trustCenterId: q.trustCenter })
    .onConflictDoUpdate({ target: [cs.trustCenterId, cs.key], set: { value: text, updatedAt: now, updatedBy } });
}
