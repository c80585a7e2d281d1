import { bigint, index, integer, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/**
 * db/schema/audit.ts on PostgreSQL (see there for what each table is).
 * Append-only as on SQLite: the migration's triggers refuse UPDATE, and
 * DELETE except of entries a recorded purge covers. Ids are bigint: the log
 * grows with every action for as long as the deployment lives.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    at: timestamptz('at').notNull(),
    actorType: text('actor_type', { enum: ['staff', 'system', 'anonymous'] }).notNull(),
    actorId: integer('actor_id'),
    /** who it was at the time (staff email), kept even if the account is later renamed */
    actorLabel: text('actor_label'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    action: text('action').notNull(),
    target: text('target'),
    /** before/after summary, never secrets */
    summary: jsonb('summary').$type<Record<string, unknown>>().notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
    /** fingerprint of the key whose MAC `hash` is; null: a plain SHA-256 entry of an older version */
    keyId: text('key_id'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('audit_log_at').on(t.at), index('audit_log_action').on(t.action), index('audit_log_actor').on(t.actorId)],
);

export const auditPurges = pgTable('audit_purges', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  at: timestamptz('at').notNull(),
  upToId: bigint('up_to_id', { mode: 'number' }).notNull(),
  lastHash: text('last_hash').notNull(),
  removed: integer('removed').notNull(),
  trustCenterId: trustCenterId(),
});

export const auditChainUpgrade = pgTable('audit_chain_upgrade', {
  lastPlainId: bigint('last_plain_id', { mode: 'number' }).primaryKey(),
  trustCenterId: trustCenterId(),
});

export const auditRepeats = pgTable(
  'audit_repeats',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    /** what makes two refusals the same: action, actor, source (an IPv4 address or IPv6 network), target and summary */
    fingerprint: text('fingerprint').notNull().unique(),
    action: text('action').notNull(),
    actorType: text('actor_type', { enum: ['staff', 'system', 'anonymous'] }).notNull(),
    actorId: integer('actor_id'),
    actorLabel: text('actor_label'),
    ip: text('ip'),
    target: text('target'),
    summary: jsonb('summary').$type<Record<string, unknown>>().notNull(),
    firstEntryId: bigint('first_entry_id', { mode: 'number' }).notNull(),
    openedAt: timestamptz('opened_at').notNull(),
    closesAt: timestamptz('closes_at').notNull(),
    repeats: integer('repeats').notNull().default(0),
    firstRepeatAt: timestamptz('first_repeat_at'),
    lastRepeatAt: timestamptz('last_repeat_at'),
    /** the distinct client addresses seen in the window, the first included, at most REPEAT_ADDRESSES_MAX */
    addresses: jsonb('addresses').$type<string[]>().notNull().default([]),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('audit_repeats_closes').on(t.closesAt)],
);
