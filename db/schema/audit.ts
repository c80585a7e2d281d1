import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * The audit trail. Append-only (triggers in the migrations refuse UPDATE,
 * and DELETE except of rows a recorded purge covers) and hash-chained:
 * `hash` = SHA-256 over `prevHash` and the entry's own content.
 */
export const auditLog = sqliteTable(
  'audit_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
    actorType: text('actor_type', { enum: ['staff', 'system', 'anonymous'] }).notNull(),
    actorId: integer('actor_id'),
    /** who it was at the time (staff email), kept even if the account is later renamed */
    actorLabel: text('actor_label'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    action: text('action').notNull(),
    target: text('target'),
    /** before/after summary, never secrets */
    summary: text('summary', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [index('audit_log_at').on(t.at), index('audit_log_action').on(t.action), index('audit_log_actor').on(t.actorId)],
);

/**
 * Each retention purge: entries up to `upToId` were removed; `lastHash` is
 * the hash of the last removed entry, where verification of the chain now
 * starts. Append-only too.
 */
export const auditPurges = sqliteTable('audit_purges', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  at: integer('at', { mode: 'timestamp_ms' }).notNull(),
  upToId: integer('up_to_id').notNull(),
  lastHash: text('last_hash').notNull(),
  removed: integer('removed').notNull(),
});
