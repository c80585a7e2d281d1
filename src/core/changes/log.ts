import { min } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { contentSnapshots } from '../../../db/schema.ts';

/** Since when the published lists have been tracked (the first snapshot), or null before the first start. */
export function trackedSince(db: Db): Date | null {
  const row = db
    .select({ first: min(contentSnapshots.publishedAt) })
    .from(contentSnapshots)
    .get();
  return row?.first ?? null;
}
