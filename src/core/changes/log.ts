import type { Database } from '../../../db/engine/types.ts';
import { firstSnapshotAt } from '../../stores/content-snapshots.ts';

/** Since when the published lists have been tracked (the first snapshot), or null before the first start. */
export function trackedSince(database: Database): Promise<Date | null> {
  return database.read((r) => firstSnapshotAt(r));
}
