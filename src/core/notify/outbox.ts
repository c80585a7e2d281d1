/**
 * Writing a notification and all its deliveries: one transaction, the
 * deliveries chosen by `INSERT … SELECT` from the recipients query, so no
 * subscriber list ever passes through memory and a crash leaves either
 * everything or nothing.
 */
import type { Db } from '../../../db/client.ts';
import { type ChannelName, channels } from '../../../db/schema/notify.ts';
import { type MembershipBasis, VERIFIED_MEMBERS_SQL } from '../organisations/membership.ts';
import type { NotificationContent } from './types.ts';

/** Who receives it. Suppressed, pending and removed recipients never do. */
export type Audience =
  /**
   * subscribers of a topic; with components, only those following one of them or the whole topic;
   * with organisations (targeted breach notices), only addresses Candor verified as members of one of
   * those customer organisations (src/core/organisations/membership.ts); an empty list reaches no one
   */
  | { kind: 'topic'; topic: string; components?: string[]; organisations?: number[] }
  /** subscribers of any of these topics (a free-form announcement), each recipient once */
  | { kind: 'topics'; topics: string[] }
  /** named recipients (a test send, staff reminders); `includePending` for the message that confirms an address */
  | { kind: 'recipients'; ids: number[]; includePending?: boolean };

export interface NewNotification {
  kind: string;
  title: string;
  threadKey?: string | null;
  content: NotificationContent;
  audience: Audience;
  createdBy?: number | null;
  /** when the first attempt is due (a scheduled send); default now */
  notBefore?: Date;
}

export interface Enqueued {
  notificationId: number;
  deliveries: number;
  byChannel: Partial<Record<ChannelName, number>>;
}

export function enqueueNotification(db: Db, input: NewNotification, now: Date): Enqueued {
  const contentChannels = channels.filter((c) => input.content[c] !== undefined);
  if (contentChannels.length === 0) throw new Error('a notification needs content for at least one channel');
  const sqlite = db.$client;
  const due = (input.notBefore ?? now).getTime();
  return sqlite
    .transaction((): Enqueued => {
      const { id } = sqlite
        .prepare(
          `INSERT INTO notifications (kind, thread_key, title, content, audience, recipient_count, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, 0, ?, ?) RETURNING id`,
        )
        .get(
          input.kind,
          input.threadKey ?? null,
          input.title,
          JSON.stringify(input.content),
          JSON.stringify(input.audience),
          input.createdBy ?? null,
          now.getTime(),
        ) as {
        id: number;
      };
      const { where, params } = audienceFilter(input.audience, contentChannels);
      sqlite
        .prepare(
          `INSERT INTO deliveries (notification_id, recipient_id, channel, status, attempts, next_attempt_at)
         SELECT ?, r.id, r.channel, 'pending', 0, ? FROM recipients r WHERE ${where}`,
        )
        .run(id, due, ...params);
      const counts = sqlite.prepare('SELECT channel, count(*) AS n FROM deliveries WHERE notification_id = ? GROUP BY channel').all(id) as {
        channel: ChannelName;
        n: number;
      }[];
      const total = counts.reduce((sum, c) => sum + c.n, 0);
      sqlite.prepare('UPDATE notifications SET recipient_count = ? WHERE id = ?').run(total, id);
      return { notificationId: id, deliveries: total, byChannel: Object.fromEntries(counts.map((c) => [c.channel, c.n])) };
    })
    .immediate();
}

/** The recipients an audience selects, as SQL over `recipients r`: one definition for sending and for counting. */
function audienceFilter(audience: Audience, channels: readonly ChannelName[]): { where: string; params: unknown[] } {
  const list = (n: number) => Array.from({ length: n }, () => '?').join(', ');
  const statuses = audience.kind === 'recipients' && audience.includePending ? `'active', 'pending'` : `'active'`;
  const parts = [`r.status IN (${statuses})`, `r.channel IN (${list(channels.length)})`];
  const params: unknown[] = [...channels];
  if (audience.kind === 'recipients') {
    // ids travel as one JSON array parameter: no statement grows with the list
    parts.push('r.id IN (SELECT value FROM json_each(?))');
    params.push(JSON.stringify(audience.ids));
    return { where: parts.join(' AND '), params };
  }
  if (audience.kind === 'topics') {
    parts.push(
      'EXISTS (SELECT 1 FROM subscriber_topics t WHERE t.subscriber_id = r.subscriber_id AND t.topic IN (SELECT value FROM json_each(?)))',
    );
    params.push(JSON.stringify(audience.topics));
    return { where: parts.join(' AND '), params };
  }
  const components = audience.components ?? [];
  parts.push(
    `EXISTS (SELECT 1 FROM subscriber_topics t WHERE t.subscriber_id = r.subscriber_id AND t.topic = ?${
      components.length ? ` AND (t.component = '' OR t.component IN (${list(components.length)}))` : ''
    })`,
  );
  params.push(audience.topic, ...components);
  if (audience.organisations) {
    // Verified membership only: the company a subscriber typed is a label and is never consulted.
    parts.push(
      `r.id IN (SELECT vm.recipient_id FROM (${VERIFIED_MEMBERS_SQL}) vm WHERE vm.organisation_id IN (SELECT value FROM json_each(?)))`,
    );
    params.push(JSON.stringify(audience.organisations));
  }
  return { where: parts.join(' AND '), params };
}

/** How many deliveries a notification to this audience would make, per channel (the composer's preview). */
export function countAudience(db: Db, audience: Audience, channels: readonly ChannelName[]): Partial<Record<ChannelName, number>> {
  if (channels.length === 0) return {};
  const { where, params } = audienceFilter(audience, channels);
  const rows = db.$client.prepare(`SELECT r.channel, count(*) AS n FROM recipients r WHERE ${where} GROUP BY r.channel`).all(...params) as {
    channel: ChannelName;
    n: number;
  }[];
  return Object.fromEntries(rows.map((r) => [r.channel, r.n]));
}

export type ChannelCounts = Partial<Record<ChannelName, number>>;

export interface OrganisationBreakdown {
  organisationId: number;
  /** distinct recipients of this organisation in the audience, per channel */
  byChannel: ChannelCounts;
  /** the same recipients by the basis they belong on; one matching on two bases is under both */
  bases: { basis: MembershipBasis; domain: string | null; byChannel: ChannelCounts }[];
}

/**
 * For a targeted audience: per organisation, how many of the recipients it
 * selects belong to that organisation, per channel and per basis. The same
 * filter as sending, with the membership joined instead of tested.
 */
export function organisationBreakdown(db: Db, audience: Audience, channels: readonly ChannelName[]): OrganisationBreakdown[] {
  if (audience.kind !== 'topic' || !audience.organisations) return [];
  const ids = audience.organisations;
  const result = new Map<number, OrganisationBreakdown>(ids.map((id) => [id, { organisationId: id, byChannel: {}, bases: [] }]));
  if (channels.length === 0 || ids.length === 0) return [...result.values()];
  const { where, params } = audienceFilter(audience, channels);
  const from = `FROM recipients r JOIN (${VERIFIED_MEMBERS_SQL}) v ON v.recipient_id = r.id
    WHERE ${where} AND v.organisation_id IN (SELECT value FROM json_each(?))`;
  const sqlite = db.$client;
  const totals = sqlite
    .prepare(`SELECT v.organisation_id, r.channel, count(DISTINCT r.id) AS n ${from} GROUP BY v.organisation_id, r.channel`)
    .all(...params, JSON.stringify(ids)) as { organisation_id: number; channel: ChannelName; n: number }[];
  for (const t of totals) {
    const entry = result.get(t.organisation_id);
    if (entry) entry.byChannel[t.channel] = t.n;
  }
  const bases = sqlite
    .prepare(
      `SELECT v.organisation_id, v.basis, v.domain, r.channel, count(DISTINCT r.id) AS n ${from}
       GROUP BY v.organisation_id, v.basis, v.domain, r.channel ORDER BY v.basis = 'domain' DESC, v.domain, v.basis`,
    )
    .all(...params, JSON.stringify(ids)) as {
    organisation_id: number;
    basis: MembershipBasis;
    domain: string | null;
    channel: ChannelName;
    n: number;
  }[];
  for (const b of bases) {
    const entry = result.get(b.organisation_id);
    if (!entry) continue;
    let basis = entry.bases.find((x) => x.basis === b.basis && x.domain === b.domain);
    if (!basis) {
      basis = { basis: b.basis, domain: b.domain, byChannel: {} };
      entry.bases.push(basis);
    }
    basis.byChannel[b.channel] = b.n;
  }
  return [...result.values()];
}
