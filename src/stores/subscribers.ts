/**
 * Subscribers, what they follow, their addresses as the subscription flows see them, and the traces
 * erasure removes (`subscribers`, `subscriber_topics`, `recipients`, `slack_oauth_states`; for erasure
 * also rows of `deliveries`, `delivery_attempts`, `logged_messages`, `organisation_members`,
 * `rate_limits` and `objections` that point at them), on SQLite and PostgreSQL alike (issue 15). The
 * convention is src/stores/rate-limits.ts's: async functions on the caller's `Tx` or `Reader`, every
 * query scoped to `q.trustCenter`, no transaction opened here; what the rows mean (who is subscribed
 * already, what is audited) is src/core/subscriptions/'s.
 *
 * Races, and how each is met (PostgreSQL runs transactions concurrently, READ COMMITTED):
 * - two sign-ups of one address: the unique key `recipients (channel, address_hash)`; the domain
 *   inserts (src/stores/recipients.ts) inside `tx.savepoint()` and answers `isUniqueViolation` as
 *   "already subscribed";
 * - confirming, re-sealing a Slack token, taking a Slack OAuth state: one
 *   conditional UPDATE each, whose affected rows say whether this caller won;
 * - removing an address and, with the last one, its subscriber: `lockSubscriber` (FOR NO KEY UPDATE
 *   on PostgreSQL) first, so two removals of one subscriber's addresses run one after the other and the
 *   second counts what the first left;
 * - re-using a found address (new topics, a new challenge): `lockRecipientByAddress` (FOR UPDATE on
 *   PostgreSQL), so a concurrent unsubscribe either waits or has already removed it.
 * SQLite's transactions never interleave, so there the locks are not needed and not taken.
 */
import { and, asc, count, countDistinct, desc, eq, exists, gt, inArray, isNotNull, isNull, lt, not, or, type SQL, sql } from 'drizzle-orm';
import { errorCode, toInteger } from '../../db/engine/common.ts';
import { affected, query, type ReadQuery, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ChannelName, recipients } from '../../db/schema/notify.ts';
import { recipients as pgRecipients, subscribers as pgSubscribers } from '../../db/schema-pg.ts';
import { recipientByHash } from './recipients.ts';

/** An address row as stored (sealed address and secret). */
export type Recipient = typeof recipients.$inferSelect;

export interface TopicRow {
  topic: string;
  /** '' for every component */
  component: string;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byTopic = (a: TopicRow, b: TopicRow) => byText(a.topic, b.topic) || byText(a.component, b.component);

/** A unique key refused the row: PostgreSQL's 23505, SQLite's SQLITE_CONSTRAINT_UNIQUE (or _PRIMARYKEY). */
export function isUniqueViolation(error: unknown): boolean {
  const code = errorCode(error);
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

// --- subscribers and topics ---

export async function insertSubscriber(tx: Tx, organisation: string | null, createdAt: Date): Promise<number> {
  const q = query(tx);
  const s = q.t.subscribers;
  const rows = await q.db.insert(s).values({ organisation, createdAt, trustCenterId: q.trustCenter }).returning({ id: s.id });
  const row = rows[0];
  if (!row) throw new Error('the subscriber was not inserted');
  return row.id;
}

/** Replaces what the subscriber follows (rows named twice are kept once) and the company name they gave. */
export async function replaceTopics(tx: Tx, subscriberId: number, topics: readonly TopicRow[], organisation: string | null): Promise<void> {
  const q = query(tx);
  const { subscriberTopics: t, subscribers: s } = q.t;
  await q.db.delete(t).where(and(eq(t.trustCenterId, q.trustCenter), eq(t.subscriberId, subscriberId)));
  if (topics.length > 0)
    await q.db
      .insert(t)
      .values(topics.map((row) => ({ subscriberId, topic: row.topic, component: row.component, trustCenterId: q.trustCenter })))
      .onConflictDoNothing();
  await q.db
    .update(s)
    .set({ organisation })
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, subscriberId)));
}

/** Adds what a new subscriber follows (one statement; rows named twice are kept once). */
export async function insertTopics(tx: Tx, subscriberId: number, topics: readonly TopicRow[]): Promise<void> {
  if (topics.length === 0) return;
  const q = query(tx);
  await q.db
    .insert(q.t.subscriberTopics)
    .values(topics.map((row) => ({ subscriberId, topic: row.topic, component: row.component, trustCenterId: q.trustCenter })))
    .onConflictDoNothing();
}

/** What the subscriber follows, by topic and component. */
export async function topicsOf(r: Reader | Tx, subscriberId: number): Promise<TopicRow[]> {
  const q = reading(r);
  const t = q.t.subscriberTopics;
  const rows = await q.db
    .select({ topic: t.topic, component: t.component })
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.subscriberId, subscriberId)));
  return rows.sort(byTopic);
}

/** Each subscriber's topics as the export writes them: `topic` or `topic:component`, space-separated, in order. */
export async function topicLists(r: Reader | Tx, subscriberIds: readonly number[]): Promise<Map<number, string>> {
  if (subscriberIds.length === 0) return new Map();
  const q = reading(r);
  const t = q.t.subscriberTopics;
  const rows = await q.db
    .select({ subscriberId: t.subscriberId, topic: t.topic, component: t.component })
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), inArray(t.subscriberId, [...subscriberIds])));
  const lists = new Map<number, string[]>();
  for (const row of rows.sort(byTopic))
    lists.set(row.subscriberId, [...(lists.get(row.subscriberId) ?? []), row.component ? `${row.topic}:${row.component}` : row.topic]);
  return new Map([...lists].map(([id, list]) => [id, list.join(' ')]));
}

export interface SubscriberHeader {
  id: number;
  organisation: string | null;
  createdAt: Date;
}

export async function subscriberHeader(r: Reader | Tx, id: number): Promise<SubscriberHeader | undefined> {
  const q = reading(r);
  const s = q.t.subscribers;
  const rows = await q.db
    .select({ id: s.id, organisation: s.organisation, createdAt: s.createdAt })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id)))
    .limit(1);
  return rows[0];
}

/**
 * Whether the subscriber exists; on PostgreSQL its row stays locked until the transaction ends, so
 * whatever removes its addresses runs one at a time per subscriber. FOR NO KEY UPDATE, not FOR
 * UPDATE: it does not wait for the KEY SHARE lock a foreign-key check takes, so a sign-up that holds
 * one of the subscriber's addresses (`lockRecipientByAddress`) and writes their topics does not
 * deadlock with a removal waiting for that address.
 */
export async function lockSubscriber(tx: Tx, id: number): Promise<boolean> {
  if (tx.engine === 'postgres') {
    // SQLite's builder has no `.for()` (nor needs it: its transactions never interleave).
    const s = pgSubscribers;
    const rows = await tx.db
      .select({ id: s.id })
      .from(s)
      .where(and(eq(s.trustCenterId, tx.trustCenter), eq(s.id, id)))
      .for('no key update');
    return rows.length === 1;
  }
  return (await subscriberHeader(tx, id)) !== undefined;
}

// --- addresses ---

/** An address's row by its blind index (src/stores/recipients.ts `recipientByHash`), locked (FOR UPDATE) on PostgreSQL until the transaction ends. */
export async function lockRecipientByAddress(tx: Tx, channel: ChannelName, addressHash: string): Promise<Recipient | undefined> {
  if (tx.engine === 'postgres') {
    const rc = pgRecipients;
    const rows = await tx.db
      .select()
      .from(rc)
      .where(and(eq(rc.trustCenterId, tx.trustCenter), eq(rc.channel, channel), eq(rc.addressHash, addressHash)))
      .limit(1)
      .for('update');
    return rows[0];
  }
  return recipientByHash(tx, channel, addressHash);
}

export async function recipientById(r: Reader | Tx, id: number): Promise<Recipient | undefined> {
  const q = reading(r);
  const rc = q.t.recipients;
  const rows = await q.db
    .select()
    .from(rc)
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.id, id)))
    .limit(1);
  return rows[0];
}

/** The subscriber's addresses, by id. */
export async function recipientsOfSubscriber(r: Reader | Tx, subscriberId: number): Promise<Recipient[]> {
  const q = reading(r);
  const rc = q.t.recipients;
  const rows = await q.db
    .select()
    .from(rc)
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.subscriberId, subscriberId)));
  return rows.sort((a, b) => a.id - b.id);
}

/** A pending address becomes active; false when it was not pending (confirmed already, suppressed, gone). */
export async function activateRecipient(tx: Tx, id: number): Promise<boolean> {
  const q = query(tx);
  const rc = q.t.recipients;
  return (
    affected(
      await q.db
        .update(rc)
        .set({ status: 'active' })
        .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.id, id), eq(rc.status, 'pending'))),
    ) === 1
  );
}

/** A Slack channel installed again: its new (sealed) bot token, active, any suppression gone. */
export async function reinstallSlack(tx: Tx, id: number, sealedToken: string): Promise<void> {
  const q = query(tx);
  const rc = q.t.recipients;
  await q.db
    .update(rc)
    .set({ secret: sealedToken, status: 'active', suppressedAt: null, suppressedReason: null, suppressedFrom: null })
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.id, id)));
}

// --- erasure ---

/** Which addresses erasure is about: one, a subscriber's, or the unconfirmed ones signed up before a time. */
export type Whose = { recipientId: number } | { subscriberId: number } | { pendingBefore: Date };

function whose(q: ReadQuery, of: Whose): SQL | undefined {
  const rc = q.t.recipients;
  const which =
    'recipientId' in of
      ? eq(rc.id, of.recipientId)
      : 'subscriberId' in of
        ? eq(rc.subscriberId, of.subscriberId)
        : and(eq(rc.status, 'pending'), lt(rc.createdAt, of.pendingBefore));
  return and(eq(rc.trustCenterId, q.trustCenter), which);
}

/**
 * What deleting the addresses would leave behind about them: the log transport's copy of each
 * message (masked address, their links), the provider's error texts (which can quote an address or
 * number), the rate-limit windows keyed by the address's blind index (any bucket: rate_limits is
 * src/stores/rate-limits.ts's table, cleared here by key because erasure is read in one place), and
 * the customer organisations staff placed the address in. Deliveries themselves stay, as anonymous
 * counts. Call it before deleting the addresses.
 */
export async function forgetTraces(tx: Tx, of: Whose): Promise<void> {
  const q = query(tx);
  const { recipients: rc, deliveries: d, deliveryAttempts: da, loggedMessages: lm, organisationMembers: om, rateLimits: rl } = q.t;
  const theirIds = q.db.select({ id: rc.id }).from(rc).where(whose(q, of));
  const theirDeliveries = q.db
    .select({ id: d.id })
    .from(d)
    .innerJoin(rc, eq(rc.id, d.recipientId))
    .where(and(eq(d.trustCenterId, q.trustCenter), whose(q, of)));
  await q.db.delete(om).where(and(eq(om.trustCenterId, q.trustCenter), inArray(om.recipientId, theirIds)));
  await q.db.delete(lm).where(and(eq(lm.trustCenterId, q.trustCenter), inArray(lm.deliveryId, theirDeliveries)));
  await q.db
    .update(da)
    .set({ error: null })
    .where(and(eq(da.trustCenterId, q.trustCenter), isNotNull(da.error), inArray(da.deliveryId, theirDeliveries)));
  await q.db
    .update(d)
    .set({ lastError: null })
    .where(and(eq(d.trustCenterId, q.trustCenter), isNotNull(d.lastError), inArray(d.id, theirDeliveries)));
  await q.db
    .delete(rl)
    .where(and(eq(rl.trustCenterId, q.trustCenter), inArray(rl.key, q.db.select({ hash: rc.addressHash }).from(rc).where(whose(q, of)))));
}

/** Deletes the addresses; how many. */
/**
 * Deletes the addresses; how many left their subscriber. An address that is also a customer's for gated
 * documents (a request, grant, NDA acceptance or view names it) is only detached from the subscriber: the
 * subscription goes, and the record of what the customer asked for, accepted and read stays (the access
 * rows would go with the address, by foreign key). Unsubscribing, erasing a subscription and forgetting
 * an unconfirmed sign-up never erase that record.
 */
export async function deleteRecipients(tx: Tx, of: Whose): Promise<number> {
  const q = query(tx);
  const { recipients: rc, accessRequests: ar, accessGrants: ag, ndaAcceptances: na, documentViews: dv } = q.t;
  const named = (t: typeof ar | typeof ag | typeof na | typeof dv) =>
    exists(
      q.db
        .select({ one: sql`1` })
        .from(t)
        .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.recipientId, rc.id))),
    );
  const customer = sql`(${named(ar)} or ${named(ag)} or ${named(na)} or ${named(dv)})`;
  const detached = affected(
    await q.db
      .update(rc)
      .set({ subscriberId: null })
      .where(and(whose(q, of), isNotNull(rc.subscriberId), customer)),
  );
  return detached + affected(await q.db.delete(rc).where(and(whose(q, of), not(customer))));
}

/** The channel and blind index of each of these addresses (what src/stores/removed-addresses.ts keeps of them). */
export async function addressKeysOf(tx: Tx, of: Whose): Promise<{ channel: ChannelName; addressHash: string }[]> {
  const q = query(tx);
  const rc = q.t.recipients;
  return q.db.select({ channel: rc.channel, addressHash: rc.addressHash }).from(rc).where(whose(q, of));
}

export async function recipientCount(r: Reader | Tx, subscriberId: number): Promise<number> {
  const q = reading(r);
  const rc = q.t.recipients;
  return toInteger(await q.db.$count(rc, and(eq(rc.trustCenterId, q.trustCenter), eq(rc.subscriberId, subscriberId))));
}

/**
 * Deletes the subscriber (their topics go with it, by foreign key). An objection they filed stays
 * (organisation and reasons are the record of a contractual objection), but the name they gave goes.
 */
export async function deleteSubscriberRow(tx: Tx, subscriberId: number): Promise<number> {
  const q = query(tx);
  const { objections: o, subscribers: s } = q.t;
  await q.db
    .update(o)
    .set({ contactName: null })
    .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.subscriberId, subscriberId)));
  return affected(await q.db.delete(s).where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, subscriberId))));
}

/** Deletes every subscriber left without an address; how many. */
export async function deleteSubscribersWithoutAddress(tx: Tx): Promise<number> {
  const q = query(tx);
  const { objections: o, subscribers: s, recipients: rc } = q.t;
  const hasAddress = exists(
    q.db
      .select({ one: sql`1` })
      .from(rc)
      .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.subscriberId, s.id))),
  );
  const orphans = q.db
    .select({ id: s.id })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), sql`not ${hasAddress}`));
  await q.db
    .update(o)
    .set({ contactName: null })
    .where(and(eq(o.trustCenterId, q.trustCenter), inArray(o.subscriberId, orphans)));
  return affected(await q.db.delete(s).where(and(eq(s.trustCenterId, q.trustCenter), sql`not ${hasAddress}`)));
}

// --- the console's directory ---

export interface DirectoryCounts {
  byChannel: { channel: string; status: string; n: number }[];
  byTopic: { topic: string; n: number }[];
  subscribers: number;
}

export async function directoryCounts(r: Reader | Tx): Promise<DirectoryCounts> {
  const q = reading(r);
  const { recipients: rc, subscriberTopics: t, subscribers: s } = q.t;
  const byChannel = await q.db
    .select({ channel: rc.channel, status: rc.status, n: count() })
    .from(rc)
    .where(and(eq(rc.trustCenterId, q.trustCenter), isNotNull(rc.subscriberId)))
    .groupBy(rc.channel, rc.status);
  const byTopic = await q.db
    .select({ topic: t.topic, n: countDistinct(t.subscriberId) })
    .from(t)
    .where(eq(t.trustCenterId, q.trustCenter))
    .groupBy(t.topic);
  return {
    byChannel: byChannel
      .map((row) => ({ channel: row.channel, status: row.status, n: toInteger(row.n) }))
      .sort((a, b) => byText(a.channel, b.channel) || byText(a.status, b.status)),
    byTopic: byTopic.map((row) => ({ topic: row.topic, n: toInteger(row.n) })).sort((a, b) => byText(a.topic, b.topic)),
    subscribers: toInteger(await q.db.$count(s, eq(s.trustCenterId, q.trustCenter))),
  };
}

/** How many addresses belong to a subscriber (the rows of the CSV export). */
export async function subscribedAddressCount(r: Reader | Tx): Promise<number> {
  const q = reading(r);
  const rc = q.t.recipients;
  return toInteger(await q.db.$count(rc, and(eq(rc.trustCenterId, q.trustCenter), isNotNull(rc.subscriberId))));
}

export interface DeliveryRow {
  id: number;
  channel: string;
  status: string;
  lastError: string | null;
  sentAt: Date | null;
  finishedAt: Date | null;
  title: string;
  createdAt: Date;
}

/** Deliveries to the subscriber's addresses with their notification's title and time, by id. */
export async function deliveriesOf(
  r: Reader | Tx,
  subscriberId: number,
  options: { newestFirst?: boolean; limit?: number } = {},
): Promise<DeliveryRow[]> {
  const q = reading(r);
  const { deliveries: d, notifications: n, recipients: rc } = q.t;
  const base = q.db
    .select({
      id: d.id,
      channel: d.channel,
      status: d.status,
      lastError: d.lastError,
      sentAt: d.sentAt,
      finishedAt: d.finishedAt,
      title: n.title,
      createdAt: n.createdAt,
    })
    .from(d)
    .innerJoin(n, and(eq(n.id, d.notificationId), eq(n.trustCenterId, q.trustCenter)))
    .innerJoin(rc, and(eq(rc.id, d.recipientId), eq(rc.trustCenterId, q.trustCenter)))
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(rc.subscriberId, subscriberId)))
    .orderBy(options.newestFirst ? desc(d.id) : asc(d.id));
  return options.limit === undefined ? base : base.limit(options.limit);
}

/** Suppressed addresses, most recently suppressed first: the quarantine. */
export async function suppressedRecipients(r: Reader | Tx, limit: number): Promise<Recipient[]> {
  const q = reading(r);
  const rc = q.t.recipients;
  // NULLS LAST said outright (both engines have it): PostgreSQL's DESC puts NULLs first, SQLite's last.
  return q.db
    .select()
    .from(rc)
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.status, 'suppressed')))
    .orderBy(sql`${rc.suppressedAt} desc nulls last`, desc(rc.id))
    .limit(limit);
}

export interface ExportRow {
  subscriberId: number;
  organisation: string | null;
  subscribedAt: Date;
  recipientId: number;
  channel: ChannelName;
  /** sealed */
  address: string;
  status: string;
}

/** Where an export page starts: after this subscriber's address, in (subscriber, address) order. */
export interface ExportCursor {
  subscriberId: number;
  recipientId: number;
}

/** One page of every subscriber's addresses, in (subscriber id, address id) order, after `after` (keyset). */
export async function exportPage(r: Reader | Tx, after: ExportCursor | null, limit: number): Promise<ExportRow[]> {
  const q = reading(r);
  const { subscribers: s, recipients: rc } = q.t;
  const from = after ? or(gt(s.id, after.subscriberId), and(eq(s.id, after.subscriberId), gt(rc.id, after.recipientId))) : undefined;
  return q.db
    .select({
      subscriberId: s.id,
      organisation: s.organisation,
      subscribedAt: s.createdAt,
      recipientId: rc.id,
      channel: rc.channel,
      address: rc.address,
      status: rc.status,
    })
    .from(s)
    .innerJoin(rc, and(eq(rc.subscriberId, s.id), eq(rc.trustCenterId, q.trustCenter)))
    .where(and(eq(s.trustCenterId, q.trustCenter), from))
    .orderBy(asc(s.id), asc(rc.id))
    .limit(limit);
}

// --- "Add to Slack" ---

export async function insertSlackState(
  tx: Tx,
  state: { id: string; choices: Record<string, unknown>; createdAt: Date; expiresAt: Date },
): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.slackOauthStates).values({ ...state, trustCenterId: q.trustCenter });
}

/**
 * Spends the state in one conditional UPDATE: its choices when it was unused and not expired at
 * `now`, else undefined. Of two callbacks with one state, one gets the choices.
 */
export async function takeSlackState(tx: Tx, id: string, now: Date): Promise<Record<string, unknown> | undefined> {
  const q = query(tx);
  const st = q.t.slackOauthStates;
  const rows = await q.db
    .update(st)
    .set({ usedAt: now })
    .where(and(eq(st.trustCenterId, q.trustCenter), eq(st.id, id), isNull(st.usedAt), gt(st.expiresAt, now)))
    .returning({ choices: st.choices });
  return rows[0]?.choices;
}
