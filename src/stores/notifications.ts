/**
 * The outbox (`notifications` and the `deliveries` each one fans out to) and the audiences that
 * choose recipients, on SQLite and PostgreSQL alike (the convention is src/stores/rate-limits.ts's).
 * A fan-out is one `INSERT … SELECT` from the recipients the audience selects, so no subscriber list
 * passes through memory; src/core/notify/outbox.ts makes it one transaction with its notification.
 *
 * Who belongs to a customer organisation (src/core/organisations/membership.ts) is written here as
 * two EXISTS conditions, the same definition as src/stores/organisations.ts's joins: an email address
 * whose domain blind index is one of the organisation's, or an address staff placed in it.
 */
import { and, count, countDistinct, eq, exists, inArray, or, type SQL, sql } from 'drizzle-orm';
import { toInteger } from '../../db/engine/common.ts';
import { affected, query, type ReadQuery, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';

/** Who receives a notification (src/core/notify/outbox.ts documents each kind). */
export type AudienceFilter =
  | { kind: 'topic'; topic: string; components?: string[]; organisations?: number[] }
  | { kind: 'topics'; topics: string[] }
  | { kind: 'recipients'; ids: number[]; includePending?: boolean };

export type ChannelCounts = Partial<Record<ChannelName, number>>;

/** The recipients `audience` selects on `channels`: one definition for sending and for counting. */
function audienceCondition(q: ReadQuery, audience: AudienceFilter, channels: readonly ChannelName[]): SQL {
  const { recipients: r, subscriberTopics: t } = q.t;
  const statuses: ('active' | 'pending')[] = audience.kind === 'recipients' && audience.includePending ? ['active', 'pending'] : ['active'];
  const parts: (SQL | undefined)[] = [eq(r.trustCenterId, q.trustCenter), inArray(r.status, statuses), inArray(r.channel, [...channels])];
  const topicOf = (condition: SQL | undefined) =>
    exists(
      q.db
        .select({ one: sql`1` })
        .from(t)
        .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.subscriberId, r.subscriberId), condition)),
    );
  if (audience.kind === 'recipients') parts.push(inArray(r.id, audience.ids));
  else if (audience.kind === 'topics') parts.push(topicOf(inArray(t.topic, audience.topics)));
  else {
    const components = audience.components ?? [];
    parts.push(
      topicOf(and(eq(t.topic, audience.topic), components.length ? or(eq(t.component, ''), inArray(t.component, components)) : undefined)),
    );
    // Verified membership only: the company a subscriber typed is a label and is never consulted.
    if (audience.organisations) parts.push(memberOfAny(q, audience.organisations));
  }
  const condition = and(...parts);
  if (!condition) throw new Error('no audience condition');
  return condition;
}

/** The recipient `recipients r` belongs to one of `organisations`, as Candor verified it. */
function memberOfAny(q: ReadQuery, organisations: readonly number[]): SQL {
  const { recipients: r, organisationDomains: d, organisationMembers: m } = q.t;
  const condition = or(
    and(
      eq(r.channel, 'email'),
      exists(
        q.db
          .select({ one: sql`1` })
          .from(d)
          .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.domainHash, r.domainHash), inArray(d.organisationId, [...organisations]))),
      ),
    ),
    exists(
      q.db
        .select({ one: sql`1` })
        .from(m)
        .where(and(eq(m.trustCenterId, q.trustCenter), eq(m.recipientId, r.id), inArray(m.organisationId, [...organisations]))),
    ),
  );
  if (!condition) throw new Error('no membership condition');
  return condition;
}

export interface NotificationRow {
  kind: string;
  threadKey: string | null;
  title: string;
  content: Record<string, unknown>;
  audience: Record<string, unknown>;
  createdBy: number | null;
  createdAt: Date;
}

/** Writes a notification with no deliveries yet; its id. */
export async function insertNotification(tx: Tx, row: NotificationRow): Promise<number> {
  const q = query(tx);
  const n = q.t.notifications;
  const [made] = await q.db
    .insert(n)
    .values({ ...row, recipientCount: 0, trustCenterId: q.trustCenter })
    .returning({ id: n.id });
  if (!made) throw new Error('the notification was not written');
  return made.id;
}

/**
 * One pending delivery per recipient the audience selects, due at `due`, in one statement. Raw SQL:
 * neither builder's insert takes a select of some columns; the columns, tables and the condition
 * come from the builder, and `due` goes through the column's own mapping.
 */
export async function insertDeliveriesFor(
  tx: Tx,
  notificationId: number,
  audience: AudienceFilter,
  channels: readonly ChannelName[],
  due: Date,
): Promise<number> {
  const q = query(tx);
  const { deliveries: d, recipients: r } = q.t;
  const column = (c: { name: string }) => sql.identifier(c.name);
  const statement = sql`INSERT INTO ${d} (${column(d.notificationId)}, ${column(d.recipientId)}, ${column(d.channel)}, ${column(d.status)}, ${column(d.attempts)}, ${column(d.nextAttemptAt)}, ${column(d.trustCenterId)})
    SELECT ${notificationId}, ${r.id}, ${r.channel}, 'pending', 0, ${sql.param(due, d.nextAttemptAt)}, ${q.trustCenter} FROM ${r}
    WHERE ${audienceCondition(q, audience, channels)}`;
  if (tx.engine === 'sqlite') return affected(tx.db.run(statement));
  return affected(await tx.db.execute(statement));
}

/** The deliveries of one notification, per channel. */
export async function deliveriesPerChannel(r: Reader | Tx, notificationId: number): Promise<ChannelCounts> {
  const q = reading(r);
  const d = q.t.deliveries;
  const rows = await q.db
    .select({ channel: d.channel, n: count() })
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, notificationId)))
    .groupBy(d.channel);
  return Object.fromEntries(rows.map((row) => [row.channel, toInteger(row.n)]));
}

export async function setRecipientCount(tx: Tx, notificationId: number, n: number): Promise<void> {
  const q = query(tx);
  const t = q.t.notifications;
  await q.db
    .update(t)
    .set({ recipientCount: n })
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, notificationId)));
}

/** How many recipients an audience selects, per channel (the composer's preview). */
export async function audienceCounts(r: Reader | Tx, audience: AudienceFilter, channels: readonly ChannelName[]): Promise<ChannelCounts> {
  if (channels.length === 0) return {};
  const q = reading(r);
  const t = q.t.recipients;
  const rows = await q.db
    .select({ channel: t.channel, n: count() })
    .from(t)
    .where(audienceCondition(q, audience, channels))
    .groupBy(t.channel);
  return Object.fromEntries(rows.map((row) => [row.channel, toInteger(row.n)]));
}

export interface OrganisationCount {
  organisationId: number;
  channel: ChannelName;
  n: number;
}

export interface BasisCount extends OrganisationCount {
  basis: 'domain' | 'assigned' | 'claim';
  /** the matching domain, for basis `domain` */
  domain: string | null;
}

/**
 * For a targeted audience, per organisation of `organisations`: the distinct recipients it selects
 * that belong to it, per channel (`totals`, a recipient on two bases once), and per basis (`bases`).
 */
export async function organisationCounts(
  r: Reader | Tx,
  audience: AudienceFilter,
  channels: readonly ChannelName[],
  organisations: readonly number[],
): Promise<{ totals: OrganisationCount[]; bases: BasisCount[] }> {
  if (channels.length === 0 || organisations.length === 0) return { totals: [], bases: [] };
  const q = reading(r);
  const { recipients: rc, organisationDomains: d, organisationMembers: m, customerOrganisations: o } = q.t;
  const selected = audienceCondition(q, audience, channels);
  const ids = [...organisations];
  const byDomain = and(
    eq(d.trustCenterId, q.trustCenter),
    eq(d.domainHash, rc.domainHash),
    eq(rc.channel, 'email'),
    inArray(d.organisationId, ids),
  );
  const byMember = and(eq(m.trustCenterId, q.trustCenter), eq(m.recipientId, rc.id), inArray(m.organisationId, ids));
  const domainRows = await q.db
    .select({ organisationId: d.organisationId, domain: d.domain, channel: rc.channel, n: countDistinct(rc.id) })
    .from(rc)
    .innerJoin(d, byDomain)
    .where(selected)
    .groupBy(d.organisationId, d.domain, rc.channel);
  const memberRows = await q.db
    .select({ organisationId: m.organisationId, basis: m.basis, channel: rc.channel, n: countDistinct(rc.id) })
    .from(rc)
    .innerJoin(m, byMember)
    .where(selected)
    .groupBy(m.organisationId, m.basis, rc.channel);
  // Per organisation, each recipient once whichever bases it is on.
  const belongs = or(
    exists(
      q.db
        .select({ one: sql`1` })
        .from(d)
        .where(
          and(eq(d.trustCenterId, q.trustCenter), eq(d.organisationId, o.id), eq(d.domainHash, rc.domainHash), eq(rc.channel, 'email')),
        ),
    ),
    exists(
      q.db
        .select({ one: sql`1` })
        .from(m)
        .where(and(eq(m.trustCenterId, q.trustCenter), eq(m.organisationId, o.id), eq(m.recipientId, rc.id))),
    ),
  );
  const totals = await q.db
    .select({ organisationId: o.id, channel: rc.channel, n: countDistinct(rc.id) })
    .from(o)
    .innerJoin(rc, and(selected, belongs))
    .where(and(eq(o.trustCenterId, q.trustCenter), inArray(o.id, ids)))
    .groupBy(o.id, rc.channel);
  return {
    totals: totals.map((row) => ({ ...row, n: toInteger(row.n) })),
    bases: [
      ...domainRows.map((row) => ({ ...row, basis: 'domain' as const, n: toInteger(row.n) })),
      ...memberRows.map((row) => ({ ...row, domain: null, n: toInteger(row.n) })),
    ],
  };
}

/** The email addresses of every active owner (a break-glass sign-in is told to them alone). */
export async function ownersToTell(r: Reader | Tx): Promise<string[]> {
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db
    .select({ email: s.email })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.status, 'active'), eq(s.role, 'owner')));
  return rows.map((row) => row.email);
}

/** The email addresses of the staff who are told what they must act on: active owners, admins and responders. */
export async function staffToTell(r: Reader | Tx): Promise<string[]> {
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db
    .select({ email: s.email })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.status, 'active'), inArray(s.role, ['owner', 'admin', 'responder'])));
  return rows.map((row) => row.email);
}

export type DeliveryFact = 'reached' | 'logged' | 'onTheWay' | 'failed' | 'suppressed';

export interface ReachRow {
  notificationId: number;
  channel: ChannelName;
  fact: DeliveryFact;
  /** of these, confirmed delivered */
  delivered: number;
  n: number;
  /** the latest acceptance (or, with none recorded, end) among them */
  lastAt: Date | null;
}

/**
 * The deliveries of these notifications counted per channel and fact: reached (accepted or
 * delivered), logged (`sent` by the log transport, whose message ids start with `loggedPrefix`),
 * on the way (pending or sending), failed or suppressed.
 */
export async function reachRows(r: Reader | Tx, notificationIds: readonly number[], loggedPrefix: string): Promise<ReachRow[]> {
  if (notificationIds.length === 0) return [];
  const q = reading(r);
  const d = q.t.deliveries;
  // Grouped by this expression: written without parameters, since PostgreSQL matches a GROUP BY expression
  // to the selected one by its text, and each would get parameters of its own ($1 there, $5 here).
  const pattern = sql.raw(`'${`${loggedPrefix}%`.replace(/'/g, "''")}'`);
  const fact = sql<DeliveryFact>`CASE
      WHEN ${d.status} IN ('sent', 'delivered') AND ${d.providerMessageId} LIKE ${pattern} THEN 'logged'
      WHEN ${d.status} IN ('sent', 'delivered') THEN 'reached'
      WHEN ${d.status} IN ('pending', 'sending') THEN 'onTheWay'
      ELSE ${d.status}
    END`;
  const rows = await q.db
    .select({
      notificationId: d.notificationId,
      channel: d.channel,
      fact,
      delivered: sql<number | string>`sum(CASE WHEN ${d.status} = 'delivered' THEN 1 ELSE 0 END)`,
      n: count(),
      lastAt: sql<Date | null>`max(coalesce(${d.sentAt}, ${d.finishedAt}))`.mapWith(d.sentAt),
    })
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), inArray(d.notificationId, [...notificationIds])))
    .groupBy(d.notificationId, d.channel, fact);
  return rows.map((row) => ({ ...row, delivered: toInteger(row.delivered), n: toInteger(row.n), lastAt: row.lastAt ?? null }));
}
