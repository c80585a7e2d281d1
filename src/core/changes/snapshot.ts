/**
 * The published state of the subprocessor list and the docs. The first
 * start records a baseline; the published history (history.ts) is that
 * baseline with every published notice applied, and change detection
 * compares content/ against it. The rows are src/stores/content-snapshots.ts's
 * (issue 15).
 */
import { createHash } from 'node:crypto';
import type { Database } from '../../../db/engine/types.ts';
import { hasSnapshot, insertSnapshot, lockBaselines, type SnapshotKind } from '../../stores/content-snapshots.ts';
import type { TrustContent } from '../content/load.ts';

export type { SnapshotKind };

const KINDS = ['subprocessors', 'docs'] as const;

export function snapshotData(content: TrustContent, kind: SnapshotKind): unknown {
  if (kind === 'subprocessors') return content.subprocessors;
  return content.docs.map(({ slug, title, summary, updated, body }) => ({ slug, title, summary, updated, body }));
}

export function hashJson(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * Records the current content as published when nothing was yet. Returns the kinds recorded.
 * Two nodes starting at once record one baseline: the check and the insert run under the
 * baselines' lock (src/stores/content-snapshots.ts).
 */
export function recordBaseline(database: Database, content: TrustContent, now: Date): Promise<SnapshotKind[]> {
  return database.transaction(async (tx) => {
    await lockBaselines(tx);
    const recorded: SnapshotKind[] = [];
    for (const kind of KINDS) {
      if (await hasSnapshot(tx, kind)) continue;
      const data = snapshotData(content, kind);
      await insertSnapshot(tx, { kind, data, hash: hashJson(data), publishedAt: now });
      recorded.push(kind);
    }
    return recorded;
  });
}
