import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { trustCenterId } from './trust-centers.ts';

/**
 * The audit trail. Append-only (triggers in the migrations refuse UPDATE,
 * and DELETE except of rows a recorded purge covers) and chained: `hash` =
 * HMAC-SHA256 under the audit key `keyId` (derived from CANDOR_SECRET, see
 * src/core/audit/key.ts) over `prevHash` and the entry's own content.
 * Entries written before the chain was keyed have no `keyId` and a plain
 * SHA-256 `hash`; the keyed `audit.chain_keyed` entry after them seals them.
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
    /** fingerprint of the key whose MAC `hash` is; null: a plain SHA-256 entry of an older version */
    keyId: text('key_id'),
    trustCenterId: trustCenterId(),
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
  trustCenterId: trustCenterId(),
});

/**
 * Written by the migration that introduced the keyed chain (0011), when the
 * log then held entries: the id of the last plain SHA-256 entry, which the
 * first keyed write seals with `audit.chain_keyed` (and then removes this
 * row). Plain entries no such row names are never sealed: a log rewritten
 * as plain after the upgrade stays unverifiable instead of being blessed.
 */
export const auditChainUpgrade = sqliteTable('audit_chain_upgrade', {
  lastPlainId: integer('last_plain_id').primaryKey(),
  trustCenterId: trustCenterId(),
});

/**
 * Refusals repeated within a window (locked sign-ins, refused links): the
 * first is an ordinary audit entry (`firstEntryId`), the repeats are only
 * counted here, one row per kind of refusal, until the window closes; then
 * one entry saying "repeated N more times between T1 and T2" goes into the
 * chain and the row is removed. Not chained itself: see
 * src/core/audit/repeats.ts.
 */
export const auditRepeats = sqliteTable(
  'audit_repeats',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** what makes two refusals the same: action, actor, source (an IPv4 address or IPv6 network, auth/lockouts.ts sourceOf), target and summary */
    fingerprint: text('fingerprint').notNull().unique(),
    action: text('action').notNull(),
    actorType: text('actor_type', { enum: ['staff', 'system', 'anonymous'] }).notNull(),
    actorId: integer('actor_id'),
    actorLabel: text('actor_label'),
    ip: text('ip'),
    target: text('target'),
    summary: text('summary', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    firstEntryId: integer('first_entry_id').notNull(),
    openedAt: integer('opened_at', { mode: 'timestamp_ms' }).notNull(),
    closesAt: integer('closes_at', { mode: 'timestamp_ms' }).notNull(),
    repeats: integer('repeats').notNull().default(0),
    firstRepeatAt: integer('first_repeat_at', { mode: 'timestamp_ms' }),
    lastRepeatAt: integer('last_repeat_at', { mode: 'timestamp_ms' }),
    /** the distinct client addresses seen in the window, the first included, at most REPEAT_ADDRESSES_MAX */
    addresses: text('addresses', { mode: 'json' }).$type<string[]>().notNull().default([]),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('audit_repeats_closes').on(t.closesAt)],
);
