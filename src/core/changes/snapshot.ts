/**
 * The published state of the subprocessor list and the docs. The first
 * start records a baseline; the published history (history.ts) is that
 * baseline with every published notice applied, and change detection
 * compares content/ against it.
 */
import { createHash } from 'node:crypto';
import { desc, eq } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { contentSnapshots } from '../../../db/schema.ts';
import type { TrustContent } from '../content/load.ts';

export type SnapshotKind = 'subprocessors' | 'docs';

export function snapshotData(content: TrustContent, kind: SnapshotKind): unknown {
  if (kind === 'subprocessors') return content.subprocessors;
  return content.docs.map(({ slug, title, summary, updated, body }) => ({ slug, title, summary, updated, body }));
}

export function hashJson(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

export function latestSnapshot(db: Db, kind: SnapshotKind) {
  return db
    .select()
    .from(contentSnapshots)
    .where(eq(contentSnapshots.kind, kind))
    .orderBy(desc(contentSnapshots.publishedAt), desc(contentSnapshots.id))
    .limit(1)
    .get();
}

/** Records the current content as published when nothing was yet. Returns the kinds recorded. */
export function recordBaseline(db: Db, content: TrustContent, now: Date): SnapshotKind[] {
  const recorded: SnapshotKind[] = [];
  db.transaction((tx) => {
    for (const kind of ['subprocessors', 'docs'] as const) {
      const existing = tx.select({ id: contentSnapshots.id }).from(contentSnapshots).where(eq(contentSnapshots.kind, kind)).limit(1).get();
      if (existing) continue;
      const data = snapshotData(content, kind);
      tx.insert(contentSnapshots)
        .values({ kind, data, hash: hashJson(data), publishedAt: now })
        .run();
      recorded.push(kind);
    }
  });
  return recorded;
}
