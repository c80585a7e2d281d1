/**
 * The outbox's sending side (`deliveries`, `delivery_attempts`, `logged_messages`, and the
 * notifications they carry), on SQLite and PostgreSQL alike. The convention is
 * src/stores/rate-limits.ts's: async functions on the caller's `Tx` or `Reader`, every query scoped
 * to `q.trustCenter`, no transaction opened here. What a result means (when to retry, which batch a
 * job goes in) is src/core/notify/dispatcher.ts's; what the console shows is progress.ts's.
 *
 * Claiming (`claimDue`) is the one read-then-write: due deliveries are read, then leased. SQLite's
 * transactions never interleave, so the read is the truth when the lease is written. On PostgreSQL the
 * rows read are locked `FOR UPDATE SKIP LOCKED`: two dispatchers claiming at once lock disjoint rows,
 * and neither waits for the other. A batch (one provider request, `batch_key`) is claimed whole or
 * not at all: the rows of its batches a claimer could lock are compared with those of them that are
 * claimable, and a batch another claimer holds part of is left to it (or, when both hold a part, to
 * the next round).
 *
 * The statements per delivery are few: leases and batch keys are written with one statement per
 * group; sends and attempts with one statement per list on PostgreSQL (a round trip each), and on
 * SQLite, which has no round trips, with one prepared statement run per row (cheaper there).
 *
 * `unknown_since` says a send may have reached its provider without its outcome being recorded. A claim
 * sets it (keeping an earlier value) and hands back the value it had before, which is set when the last
 * sender died holding the lease or its answer was lost: the dispatcher then asks the provider before
 * sending again. Recording sent, failed or suppressed clears it; a retry clears it unless the answer
 * says the provider may have acted; handing a delivery back unsent restores what the claim found.
 */
import { and, asc, count, type DriverValueEncoder, desc, eq, gt, inArray, lt, lte, or, type SQL, sql } from 'drizzle-orm';
import { toInteger } from '../../db/engine/common.ts';
import { affected, type Query, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ChannelName, DeliveryStatus } from '../../db/schema/notify.ts';

/** A claimed delivery with what sending it needs of its recipient (all null when the recipient is gone). */
export interface ClaimedDelivery {
  id: number;
  notificationId: number;
  recipientId: number | null;
  /** attempts including this one */
  attempts: number;
  batchKey: string | null;
  address: string | null;
  secret: string | null;
  recipientChannel: ChannelName | null;
  recipientStatus: string | null;
  subscriberId: number | null;
  /**
   * `unknown_since` as the claim found it: set when an earlier send may have reached the provider
   * with no outcome recorded (its sender died, or its answer was lost), null otherwise
   */
  unknownSince: Date | null;
}

/**
 * PostgreSQL's row lock for a select the store built with the shared builder (typed as SQLite's,
 * which has no `.for()`): the object is node-postgres's select, which has it.
 */
function lockedSkipping<T>(q: Query, select: PromiseLike<T>): PromiseLike<T> {
  if (q.engine !== 'postgres') return select;
  return (select as unknown as { for(strength: 'update', config: { skipLocked: true }): PromiseLike<T> }).for('update', {
    skipLocked: true,
  });
}

/** Pending, or held under a lease that has run out (its dispatcher died): what a claim may take. */
function claimable(q: Query, now: Date): SQL | undefined {
  const d = q.t.deliveries;
  return or(eq(d.status, 'pending'), and(eq(d.status, 'sending'), lt(d.leaseExpiresAt, now)));
}

/**
 * `column IN (ids)` with the ids as one JSON parameter: the builder's `inArray` costs a parameter per id
 * (hundreds in a claim) and gives a statement text per list length, where this one text is built
 * cheaply and prepared once.
 */
function inIds(q: Query, column: typeof q.t.deliveries.id, ids: Iterable<number>): SQL {
  const json = JSON.stringify([...ids]);
  return q.engine === 'postgres'
    ? sql`${column} IN (SELECT jsonb_array_elements_text(${json}::jsonb)::bigint)`
    : sql`${column} IN (SELECT value FROM json_each(${json}))`;
}

/**
 * Leases up to about `limit` due deliveries of `channel` to `owner` until `leaseUntil` (attempts + 1)
 * and returns them in id order. A delivery is due when pending and its next attempt is at or before
 * `now`, or when its lease expired. The rest of each claimed delivery's batch comes along whatever its
 * next attempt (a batch is resent whole: its request, and so its idempotency key, must not change), so
 * the claim may exceed `limit` by less than a batch.
 */
export async function claimDue(
  tx: Tx,
  channel: ChannelName,
  owner: string,
  now: Date,
  leaseUntil: Date,
  limit: number,
): Promise<ClaimedDelivery[]> {
  const q = query(tx);
  const d = q.t.deliveries;
  const scoped = (condition: SQL | undefined) => and(eq(d.trustCenterId, q.trustCenter), eq(d.channel, channel), condition);
  const columns = { id: d.id, nextAttemptAt: d.nextAttemptAt, batchKey: d.batchKey, unknownSince: d.unknownSince };
  // Two reads, each in index order and stopping at the limit: one OR over both statuses made SQLite gather
  // and sort every due delivery of the channel (100,000 in a large fan-out) to keep a few hundred. Expired
  // leases are few: only what dead dispatchers held.
  const pending = await lockedSkipping(
    q,
    q.db
      .select(columns)
      .from(d)
      .where(scoped(and(eq(d.status, 'pending'), lte(d.nextAttemptAt, now))))
      .orderBy(asc(d.nextAttemptAt), asc(d.id))
      .limit(limit),
  );
  const expired = await lockedSkipping(
    q,
    q.db
      .select(columns)
      .from(d)
      .where(scoped(and(eq(d.status, 'sending'), lt(d.leaseExpiresAt, now))))
      .orderBy(asc(d.nextAttemptAt), asc(d.id))
      .limit(limit),
  );
  const due = [...pending, ...expired].sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || a.id - b.id).slice(0, limit);
  const ids = new Set(due.map((row) => row.id));
  // what each row's unknown_since was before this claim sets it (read with the rows, no statement more)
  const before = new Map(due.map((row) => [row.id, row.unknownSince]));
  const keys = [...new Set(due.flatMap((row) => (row.batchKey === null ? [] : [row.batchKey])))];
  if (keys.length) {
    const inBatches = scoped(and(inArray(d.batchKey, keys), claimable(q, now)));
    const mates = await lockedSkipping(
      q,
      q.db.select({ id: d.id, batchKey: d.batchKey, unknownSince: d.unknownSince }).from(d).where(inBatches),
    );
    for (const mate of mates) {
      ids.add(mate.id);
      before.set(mate.id, mate.unknownSince);
    }
    if (q.engine === 'postgres') {
      // Rows another claimer locked were skipped above but are still claimable as committed: that batch
      // is the other claimer's (or, when each holds a part, the next round's), none of it is taken here.
      const held = new Map<string, number>();
      for (const mate of mates) if (mate.batchKey !== null) held.set(mate.batchKey, (held.get(mate.batchKey) ?? 0) + 1);
      const all = await q.db.select({ batchKey: d.batchKey, n: count() }).from(d).where(inBatches).groupBy(d.batchKey);
      const split = new Set(
        all.filter((row) => row.batchKey !== null && toInteger(row.n) > (held.get(row.batchKey) ?? 0)).map((r) => r.batchKey),
      );
      if (split.size) {
        for (const row of [...due, ...mates]) if (row.batchKey !== null && split.has(row.batchKey)) ids.delete(row.id);
      }
    }
  }
  if (ids.size === 0) return [];
  const leased = await q.db
    .update(d)
    .set({
      status: 'sending',
      leaseOwner: owner,
      leaseExpiresAt: leaseUntil,
      attempts: sql`${d.attempts} + 1`,
      // from now until an outcome is recorded, a send of it may be at the provider
      unknownSince: sql`coalesce(${d.unknownSince}, ${moment(q, d.unknownSince, now)})`,
    })
    .where(and(eq(d.trustCenterId, q.trustCenter), inIds(q, d.id, ids)))
    .returning({ id: d.id });
  if (leased.length === 0) return [];
  const r = q.t.recipients;
  const rows = await q.db
    .select({
      id: d.id,
      notificationId: d.notificationId,
      recipientId: d.recipientId,
      attempts: d.attempts,
      batchKey: d.batchKey,
      address: r.address,
      secret: r.secret,
      recipientChannel: r.channel,
      recipientStatus: r.status,
      subscriberId: r.subscriberId,
    })
    .from(d)
    .leftJoin(r, and(eq(r.id, d.recipientId), eq(r.trustCenterId, q.trustCenter)))
    .where(
      and(
        eq(d.trustCenterId, q.trustCenter),
        inIds(
          q,
          d.id,
          leased.map((row) => row.id),
        ),
      ),
    );
  return rows.map((row) => ({ ...row, unknownSince: before.get(row.id) ?? null })).sort((a, b) => a.id - b.id);
}

export interface NotificationRow {
  id: number;
  kind: string;
  content: Record<string, unknown>;
  threadKey: string | null;
}

/** The notifications of these ids (content as stored); an id with none is absent. */
export async function notificationsOf(r: Reader | Tx, ids: readonly number[]): Promise<NotificationRow[]> {
  if (ids.length === 0) return [];
  const q = reading(r);
  const n = q.t.notifications;
  return q.db
    .select({ id: n.id, kind: n.kind, content: n.content, threadKey: n.threadKey })
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), inArray(n.id, [...ids])));
}

/** Records the provider request these deliveries go in, before it is sent. */
export async function assignBatchKey(tx: Tx, key: string, deliveryIds: readonly number[]): Promise<void> {
  if (deliveryIds.length === 0) return;
  const q = query(tx);
  const d = q.t.deliveries;
  await q.db
    .update(d)
    .set({ batchKey: key })
    .where(and(eq(d.trustCenterId, q.trustCenter), inIds(q, d.id, deliveryIds)));
}

/**
 * What a claim set `unknown_since` to, undone for deliveries handed back unsent: `clear` for those the
 * claim found without it (nothing of them can be at the provider), `keep` for those it found set.
 */
export type UnknownBefore = 'clear' | 'keep';

function unknownRestored(before: UnknownBefore): { unknownSince?: null } {
  return before === 'clear' ? { unknownSince: null } : {};
}

/** Hands back deliveries `owner` claimed but did not send (not an attempt); how many. */
export async function releaseLeases(tx: Tx, owner: string, deliveryIds: readonly number[], before: UnknownBefore): Promise<number> {
  if (deliveryIds.length === 0) return 0;
  const q = query(tx);
  const d = q.t.deliveries;
  return affected(
    await q.db
      .update(d)
      .set({ status: 'pending', leaseOwner: null, leaseExpiresAt: null, attempts: sql`${d.attempts} - 1`, ...unknownRestored(before) })
      .where(and(ownedBy(q, owner, deliveryIds), eq(d.status, 'sending'))),
  );
}

/**
 * Extends every lease `owner` holds to `leaseUntil`: a live dispatcher's claims do not run out under
 * it however long its sends take; only a dead one's do. Rows changed.
 */
export async function renewLeases(tx: Tx, owner: string, leaseUntil: Date): Promise<number> {
  const q = query(tx);
  const d = q.t.deliveries;
  return affected(
    await q.db
      .update(d)
      .set({ leaseExpiresAt: leaseUntil })
      .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.status, 'sending'), eq(d.leaseOwner, owner))),
  );
}

/** These deliveries, while `owner` holds their lease (a lease taken over by another dispatcher is theirs). */
function ownedBy(q: Query, owner: string, deliveryIds: readonly number[]): SQL | undefined {
  const d = q.t.deliveries;
  return and(eq(d.trustCenterId, q.trustCenter), inIds(q, d.id, deliveryIds), eq(d.leaseOwner, owner));
}

/**
 * Back to the queue at `nextAttemptAt`, not counted as an attempt: waiting for another dispatcher's work,
 * or for a provider that could not yet say whether an earlier send reached it (`keep`: still unknown).
 */
export async function deferDeliveries(
  tx: Tx,
  owner: string,
  deliveryIds: readonly number[],
  nextAttemptAt: Date,
  before: UnknownBefore,
): Promise<void> {
  if (deliveryIds.length === 0) return;
  const q = query(tx);
  const d = q.t.deliveries;
  await q.db
    .update(d)
    .set({
      status: 'pending',
      nextAttemptAt,
      leaseOwner: null,
      leaseExpiresAt: null,
      attempts: sql`${d.attempts} - 1`,
      ...unknownRestored(before),
    })
    .where(ownedBy(q, owner, deliveryIds));
}

/**
 * Takes back the attempt a claim counted for deliveries whose provider request was a reconciliation
 * (asking whether an earlier send arrived), not a send: retries and backoff count sends only.
 */
export async function uncountClaims(tx: Tx, owner: string, deliveryIds: readonly number[]): Promise<void> {
  if (deliveryIds.length === 0) return;
  const q = query(tx);
  const d = q.t.deliveries;
  await q.db
    .update(d)
    .set({ attempts: sql`${d.attempts} - 1` })
    .where(ownedBy(q, owner, deliveryIds));
}

/**
 * One row of `delivery_attempts`. `kind` `reconcile` is a question to the provider about an earlier send
 * whose outcome was unknown, not a send: `sent` (it had the message: recorded sent, not sent again),
 * `retry` with `providerCode` `absent` (it had none: sent in the same round, that send its own row),
 * `retry` with an error (it could not say: asked again later).
 */
export interface AttemptInput {
  deliveryId: number;
  kind: 'send' | 'reconcile';
  outcome: 'sent' | 'retry' | 'failed' | 'suppressed';
  httpStatus: number | null;
  providerCode: string | null;
  durationMs: number;
  error: string | null;
}

/**
 * Rows a statement reads from one JSON parameter, as a table (`json_each` on SQLite,
 * `jsonb_to_recordset` on PostgreSQL): the builder's multi-row forms cost a parameter, and building
 * it, per value, which at a hundred rows per provider request cost more than the statements
 * themselves (npm run bench -- fanout). `columns` are the JSON keys and, for PostgreSQL, their types.
 */
function jsonRows(q: Query, rows: readonly Record<string, unknown>[], columns: Record<string, string>): SQL {
  const json = JSON.stringify(rows);
  const names = Object.keys(columns);
  if (q.engine === 'postgres') {
    const types = sql.raw(names.map((n) => `${n} ${columns[n]}`).join(', '));
    return sql`(SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS v(${types}))`;
  }
  const fields = sql.raw(names.map((n) => `json_extract(value, '$.${n}') AS ${n}`).join(', '));
  return sql`(SELECT ${fields} FROM json_each(${json}))`;
}

/** Runs a statement the builder cannot say (see `jsonRows`); the rows it returns, if it has RETURNING. */
async function raw(tx: Tx, statement: SQL, returning = false): Promise<Record<string, unknown>[]> {
  if (tx.engine === 'postgres') return (await tx.db.execute(statement)).rows;
  if (returning) return tx.db.all<Record<string, unknown>>(statement);
  tx.db.run(statement);
  return [];
}

/** A moment as the column stores it (milliseconds on SQLite, a timestamptz on PostgreSQL), for raw SQL. */
function moment(q: Query, column: DriverValueEncoder<Date, unknown>, at: Date): SQL {
  return q.engine === 'postgres' ? sql`${sql.param(at, column)}::timestamptz` : sql`${sql.param(at, column)}`;
}

/** The trust center as a typed value, for raw SQL. */
function trustCenterValue(q: Query): SQL {
  return q.engine === 'postgres' ? sql`${q.trustCenter}::integer` : sql`${q.trustCenter}`;
}

/** One attempt row per input, in one statement. */
export async function insertAttempts(tx: Tx, at: Date, attempts: readonly AttemptInput[]): Promise<void> {
  if (attempts.length === 0) return;
  const q = query(tx);
  const a = q.t.deliveryAttempts;
  if (q.engine === 'sqlite') {
    // A statement prepared once and run per row: on SQLite (no round trips) cheaper than one statement
    // reading the rows from JSON (json_each and json_extract per value cost about twice as much).
    const insert = q.db
      .insert(a)
      .values({
        deliveryId: sql.placeholder('d'),
        at,
        kind: sql.placeholder('k'),
        outcome: sql.placeholder('o'),
        httpStatus: sql.placeholder('h'),
        providerCode: sql.placeholder('p'),
        durationMs: sql.placeholder('ms'),
        error: sql.placeholder('e'),
        trustCenterId: q.trustCenter,
      })
      .prepare();
    for (const x of attempts)
      insert.run({ d: x.deliveryId, k: x.kind, o: x.outcome, h: x.httpStatus, p: x.providerCode, ms: x.durationMs, e: x.error });
    return;
  }
  const rows = jsonRows(
    q,
    attempts.map((x) => ({ d: x.deliveryId, k: x.kind, o: x.outcome, h: x.httpStatus, p: x.providerCode, ms: x.durationMs, e: x.error })),
    { d: 'bigint', k: 'text', o: 'text', h: 'integer', p: 'text', ms: 'integer', e: 'text' },
  );
  const column = (c: { name: string }) => sql.identifier(c.name);
  await raw(
    tx,
    sql`INSERT INTO ${a} (${column(a.deliveryId)}, ${column(a.at)}, ${column(a.kind)}, ${column(a.outcome)}, ${column(a.httpStatus)}, ${column(a.providerCode)}, ${column(a.durationMs)}, ${column(a.error)}, ${column(a.trustCenterId)})
        SELECT v.d, ${moment(q, a.at, at)}, v.k, v.o, v.h, v.p, v.ms, v.e, ${trustCenterValue(q)} FROM ${rows} AS v`,
  );
}

/** Sent: each delivery with its provider message id, in one statement (an UPDATE … FROM the list). */
export async function markSent(
  tx: Tx,
  owner: string,
  sentAt: Date,
  sent: readonly { deliveryId: number; providerMessageId: string | null }[],
): Promise<void> {
  if (sent.length === 0) return;
  const q = query(tx);
  const d = q.t.deliveries;
  if (q.engine === 'sqlite') {
    // per row, as insertAttempts; the index of sent deliveries grows in order either way
    const update = q.db
      .update(d)
      .set({
        status: 'sent',
        providerMessageId: sql`${sql.placeholder('m')}`,
        sentAt,
        leaseOwner: null,
        leaseExpiresAt: null,
        lastError: null,
        unknownSince: null,
      })
      .where(and(eq(d.id, sql.placeholder('d')), eq(d.leaseOwner, owner), eq(d.trustCenterId, q.trustCenter)))
      .prepare();
    for (const s of sent) update.run({ d: s.deliveryId, m: s.providerMessageId });
    return;
  }
  const rows = jsonRows(
    q,
    sent.map((s) => ({ d: s.deliveryId, m: s.providerMessageId })),
    { d: 'bigint', m: 'text' },
  );
  const column = (c: { name: string }) => sql.identifier(c.name);
  // SET names bare columns (PostgreSQL refuses them qualified); WHERE qualifies them against the list's.
  await raw(
    tx,
    sql`UPDATE ${d} SET ${column(d.status)} = 'sent', ${column(d.providerMessageId)} = v.m, ${column(d.sentAt)} = ${moment(q, d.sentAt, sentAt)},
          ${column(d.leaseOwner)} = NULL, ${column(d.leaseExpiresAt)} = NULL, ${column(d.lastError)} = NULL, ${column(d.unknownSince)} = NULL
        FROM ${rows} AS v
        WHERE ${d.id} = v.d AND ${d.leaseOwner} = ${owner} AND ${d.trustCenterId} = ${trustCenterValue(q)}`,
  );
}

/** Done for good (failed or suppressed), with the same error for all; the batch key goes (no resend). */
export async function markFinished(
  tx: Tx,
  owner: string,
  status: Extract<DeliveryStatus, 'failed' | 'suppressed'>,
  finishedAt: Date,
  error: string | null,
  deliveryIds: readonly number[],
): Promise<void> {
  if (deliveryIds.length === 0) return;
  const q = query(tx);
  await q.db
    .update(q.t.deliveries)
    .set({ status, finishedAt, leaseOwner: null, leaseExpiresAt: null, lastError: error, batchKey: null, unknownSince: null })
    .where(ownedBy(q, owner, deliveryIds));
}

/**
 * A failed attempt: back to the queue at `nextAttemptAt`, or failed for good (`finishedAt` set) when the
 * dispatcher says the attempts are used up. The batch key stays: a retry resends the same request.
 * `mayHaveSent` (a timeout, a connection lost after the request, a 5xx: when that send began) sets
 * `unknown_since` to that moment, so the next claim asks the provider first and looks from when the
 * request went, not from an earlier claim; otherwise the answer proved nothing was sent and it is cleared.
 */
export async function markRetry(
  tx: Tx,
  owner: string,
  deliveryId: number,
  retry: { status: 'pending' | 'failed'; nextAttemptAt: Date; finishedAt: Date | null; error: string | null; mayHaveSent: Date | null },
): Promise<void> {
  const q = query(tx);
  await q.db
    .update(q.t.deliveries)
    .set({
      status: retry.status,
      finishedAt: retry.finishedAt,
      nextAttemptAt: retry.nextAttemptAt,
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: retry.error,
      unknownSince: retry.mayHaveSent,
    })
    .where(ownedBy(q, owner, [deliveryId]));
}

/**
 * The provider said an earlier send never reached it: the delivery is about to be sent again, and should
 * that send's outcome be lost too, the next question looks from now, not from the earlier send.
 */
export async function restartUnknown(tx: Tx, owner: string, deliveryId: number, at: Date): Promise<void> {
  const q = query(tx);
  await q.db
    .update(q.t.deliveries)
    .set({ unknownSince: at })
    .where(ownedBy(q, owner, [deliveryId]));
}

/** The provider refused these deliveries' recipients for good: active ones are suppressed. */
export async function suppressRecipientsOf(tx: Tx, deliveryIds: readonly number[], at: Date, reason: string): Promise<void> {
  if (deliveryIds.length === 0) return;
  const q = query(tx);
  const { recipients: r, deliveries: d } = q.t;
  const theirs = q.db
    .select({ id: d.recipientId })
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), inArray(d.id, [...deliveryIds])));
  await q.db
    .update(r)
    .set({ status: 'suppressed', suppressedAt: at, suppressedReason: reason })
    .where(and(eq(r.trustCenterId, q.trustCenter), inArray(r.id, theirs), eq(r.status, 'active')));
}

// ---- the console's figures ----

export interface NotificationSummary {
  id: number;
  kind: string;
  title: string;
  createdAt: Date;
  recipientCount: number;
}

/** Notifications by id, or the `limit` latest (before `beforeId`, when given); newest first. */
export async function notificationSummaries(
  r: Reader | Tx,
  which: { ids: readonly number[] } | { beforeId?: number | undefined; limit: number },
): Promise<NotificationSummary[]> {
  const q = reading(r);
  const n = q.t.notifications;
  const columns = { id: n.id, kind: n.kind, title: n.title, createdAt: n.createdAt, recipientCount: n.recipientCount };
  if ('ids' in which) {
    if (which.ids.length === 0) return [];
    return q.db
      .select(columns)
      .from(n)
      .where(and(eq(n.trustCenterId, q.trustCenter), inArray(n.id, [...which.ids])))
      .orderBy(desc(n.id));
  }
  return q.db
    .select(columns)
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), which.beforeId === undefined ? undefined : lt(n.id, which.beforeId)))
    .orderBy(desc(n.id))
    .limit(which.limit);
}

export interface StatusCount {
  notificationId: number;
  channel: ChannelName;
  status: DeliveryStatus;
  n: number;
}

/** How many deliveries of these notifications are in each channel and status. */
export async function statusCounts(r: Reader | Tx, notificationIds: readonly number[]): Promise<StatusCount[]> {
  if (notificationIds.length === 0) return [];
  const q = reading(r);
  const d = q.t.deliveries;
  const rows = await q.db
    .select({ notificationId: d.notificationId, channel: d.channel, status: d.status, n: count() })
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), inArray(d.notificationId, [...notificationIds])))
    .groupBy(d.notificationId, d.channel, d.status);
  return rows.map((row) => ({ ...row, n: toInteger(row.n) }));
}

export interface DeliveryRow {
  id: number;
  channel: ChannelName;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  providerMessageId: string | null;
  lastError: string | null;
  recipientId: number | null;
  /** a send began and no outcome is recorded yet (since then) */
  unknownSince: Date | null;
}

/** A notification's deliveries after `afterId`, in id order, optionally of one status and channel. */
export async function deliveryRows(
  r: Reader | Tx,
  notificationId: number,
  filter: { status?: DeliveryStatus | undefined; channel?: ChannelName | undefined; afterId: number; limit: number },
): Promise<DeliveryRow[]> {
  const q = reading(r);
  const d = q.t.deliveries;
  return q.db
    .select({
      id: d.id,
      channel: d.channel,
      status: d.status,
      attempts: d.attempts,
      nextAttemptAt: d.nextAttemptAt,
      providerMessageId: d.providerMessageId,
      lastError: d.lastError,
      recipientId: d.recipientId,
      unknownSince: d.unknownSince,
    })
    .from(d)
    .where(
      and(
        eq(d.trustCenterId, q.trustCenter),
        eq(d.notificationId, notificationId),
        filter.status ? eq(d.status, filter.status) : undefined,
        filter.channel ? eq(d.channel, filter.channel) : undefined,
        gt(d.id, filter.afterId),
      ),
    )
    .orderBy(asc(d.id))
    .limit(filter.limit);
}

export interface AttemptRow {
  deliveryId: number;
  at: Date;
  /** `send`, or `reconcile`: asking the provider whether an earlier send of unknown outcome reached it */
  kind: 'send' | 'reconcile';
  outcome: string;
  httpStatus: number | null;
  providerCode: string | null;
  durationMs: number;
  error: string | null;
}

/** The attempts of these deliveries, oldest first. */
export async function attemptRows(r: Reader | Tx, deliveryIds: readonly number[]): Promise<AttemptRow[]> {
  if (deliveryIds.length === 0) return [];
  const q = reading(r);
  const a = q.t.deliveryAttempts;
  return q.db
    .select({
      deliveryId: a.deliveryId,
      at: a.at,
      kind: a.kind,
      outcome: a.outcome,
      httpStatus: a.httpStatus,
      providerCode: a.providerCode,
      durationMs: a.durationMs,
      error: a.error,
    })
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), inArray(a.deliveryId, [...deliveryIds])))
    .orderBy(asc(a.id));
}

/**
 * Puts a notification's failed deliveries to still-active recipients back in the queue (fresh attempt
 * count, no batch); how many. One conditional UPDATE: a delivery another request requeued first is no
 * longer failed and is not counted twice.
 */
export async function requeueFailed(tx: Tx, notificationId: number, now: Date): Promise<number> {
  const q = query(tx);
  const { deliveries: d, recipients: r } = q.t;
  const active = q.db
    .select({ id: r.id })
    .from(r)
    .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.status, 'active')));
  return affected(
    await q.db
      .update(d)
      .set({ status: 'pending', attempts: 0, nextAttemptAt: now, finishedAt: null, batchKey: null })
      .where(
        and(
          eq(d.trustCenterId, q.trustCenter),
          eq(d.notificationId, notificationId),
          eq(d.status, 'failed'),
          inArray(d.recipientId, active),
        ),
      ),
  );
}

// ---- the log transport ----

export interface LoggedMessageInput {
  deliveryId: number;
  channel: ChannelName;
  to: string;
  payload: unknown;
}

/** Writes what the log transport "sent", in one statement; the row id of each delivery's message. */
export async function insertLoggedMessages(tx: Tx, at: Date, messages: readonly LoggedMessageInput[]): Promise<Map<number, number>> {
  if (messages.length === 0) return new Map();
  const q = query(tx);
  const l = q.t.loggedMessages;
  // the payload travels as its JSON text (JSON's null when the channel had no content): SQLite stores
  // that text, PostgreSQL casts it to jsonb
  const list = messages.map((m) => ({ d: m.deliveryId, c: m.channel, t: m.to, p: JSON.stringify(m.payload ?? null) }));
  // On SQLite a VALUES list: the payloads are whole rendered messages, which json_each would parse again for each field.
  const rows =
    q.engine === 'postgres'
      ? jsonRows(q, list, { d: 'bigint', c: 'text', t: 'text', p: 'text' })
      : sql`(SELECT column1 AS d, column2 AS c, column3 AS t, column4 AS p FROM (VALUES ${sql.join(
          list.map((m) => sql`(${m.d}, ${m.c}, ${m.t}, ${m.p})`),
          sql`, `,
        )}))`;
  const column = (c: { name: string }) => sql.identifier(c.name);
  const payload = q.engine === 'postgres' ? sql`v.p::jsonb` : sql`v.p`;
  const made = await raw(
    tx,
    sql`INSERT INTO ${l} (${column(l.deliveryId)}, ${column(l.channel)}, ${column(l.to)}, ${column(l.payload)}, ${column(l.at)}, ${column(l.trustCenterId)})
        SELECT v.d, v.c, v.t, ${payload}, ${moment(q, l.at, at)}, ${trustCenterValue(q)} FROM ${rows} AS v
        RETURNING ${column(l.id)} AS id, ${column(l.deliveryId)} AS d`,
    true,
  );
  return new Map(made.map((row) => [Number(row.d), Number(row.id)]));
}

export interface LoggedMessageRow {
  id: number;
  channel: ChannelName;
  to: string;
  payload: unknown;
  at: Date;
}

/** The latest `limit` messages the log transport wrote, newest first. */
export async function loggedMessageRows(r: Reader | Tx, limit: number): Promise<LoggedMessageRow[]> {
  const q = reading(r);
  const l = q.t.loggedMessages;
  return q.db
    .select({ id: l.id, channel: l.channel, to: l.to, payload: l.payload, at: l.at })
    .from(l)
    .where(eq(l.trustCenterId, q.trustCenter))
    .orderBy(desc(l.id))
    .limit(limit);
}
