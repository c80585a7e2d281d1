import { index, integer, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/content.ts on PostgreSQL: what the trust center had published, the baseline of change detection. */
export const contentSnapshots = pgTable(
  'content_snapshots',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    kind: text('kind', { enum: ['subprocessors', 'docs'] }).notNull(),
    /** SHA-256 of the canonical JSON in `data` */
    hash: text('hash').notNull(),
    data: jsonb('data').notNull(),
    publishedAt: timestamptz('published_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('content_snapshots_kind_published').on(t.kind, t.publishedAt)],
);
