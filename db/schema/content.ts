import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { trustCenterId } from './trust-centers.ts';

/**
 * What the trust center had published, as of a moment: the baseline that
 * change detection compares content/ against.
 */
export const contentSnapshots = sqliteTable(
  'content_snapshots',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    kind: text('kind', { enum: ['subprocessors', 'docs'] }).notNull(),
    /** SHA-256 of the canonical JSON in `data` */
    hash: text('hash').notNull(),
    data: text('data', { mode: 'json' }).notNull(),
    publishedAt: integer('published_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('content_snapshots_kind_published').on(t.kind, t.publishedAt)],
);
