/**
 * Test fixtures on a SQLite connection, written synchronously: recipients, notifications and their
 * fan-out as the outbox writes them (src/core/notify/outbox.ts, recipients.ts, on the stores), for
 * tests, drills and benchmarks that set up a SQLite data dir directly. Not the product's code: the
 * product writes through the stores on either engine.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { type ChannelName, channels } from '../../db/schema/notify.ts';
import { recipients } from '../../db/schema.ts';
import { seal } from '../../src/core/crypto/seal.ts';
import { LOGGED_MESSAGE_ID_PREFIX } from '../../src/core/notify/channels/log.ts';
import type { Audience, Enqueued, NewNotification, OrganisationBreakdown } from '../../src/core/notify/outbox.ts';
import { type NotificationReach, reachOf } from '../../src/core/notify/reach.ts';
import {
  addressHash,
  recipientContext as context,
  type Keys,
  type NewRecipient,
  normaliseAddress,
  openRecipient,
  type Recipient,
} from '../../src/core/notify/recipients.ts';
import { emailDomainHash } from '../../src/core/organisations/domains.ts';
import { type MembershipBasis, VERIFIED_MEMBERS_SQL } from '../../src/core/organisations/membership.ts';
import type { DeliveryFact } from '../../src/stores/notifications.ts';

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

export function addRecipient(db: Db, keys: Keys, input: NewRecipient, now: Date): Recipient {
  const [key] = keys.keys;
  if (!key) throw new Error('no encryption key configured');
  const address = normaliseAddress(input.channel, input.address);
  return db
    .insert(recipients)
    .values({
      subscriberId: input.subscriberId ?? null,
      channel: input.channel,
      address: seal(key, address, context(input.channel, 'address')),
      addressHash: addressHash(keys, input.channel, address),
      domainHash: input.channel === 'email' ? emailDomainHash(keys.secret, address) : null,
      secret: input.secret ? seal(key, input.secret, context(input.channel, 'secret')) : null,
      status: input.status ?? 'active',
      createdAt: now,
    })
    .returning()
    .get();
}

export function findRecipient(db: Db, keys: Keys, channel: ChannelName, address: string): Recipient | undefined {
  return db
    .select()
    .from(recipients)
    .where(and(eq(recipients.channel, channel), eq(recipients.addressHash, addressHash(keys, channel, address))))
    .get();
}

/**
 * Writes the blind index of each email address's domain where it is missing
 * (`all`: everywhere, e.g. after `keys rotate`), opening each address once.
 * Idempotent; rows added since the column exists already carry it. Returns
 * how many rows it wrote.
 */
export function indexEmailDomains(db: Db, keys: Keys, options: { all?: boolean } = {}): number {
  const sqlite = db.$client;
  return sqlite
    .transaction(() => {
      const rows = sqlite
        .prepare(
          `SELECT id, channel, address, domain_hash FROM recipients WHERE channel = 'email'${options.all ? '' : ' AND domain_hash IS NULL'}`,
        )
        .all() as { id: number; channel: 'email'; address: string; domain_hash: string | null }[];
      const update = sqlite.prepare('UPDATE recipients SET domain_hash = ? WHERE id = ?');
      let written = 0;
      for (const row of rows) {
        let hash: string | null;
        try {
          hash = emailDomainHash(keys.secret, openRecipient(keys, { ...row, secret: null }).address);
        } catch {
          // sealed under a key this process lacks: it cannot be sent to either; `keys rotate` settles it
          continue;
        }
        if (hash !== row.domain_hash) {
          update.run(hash, row.id);
          written++;
        }
      }
      return written;
    })
    .immediate();
}

/**
 * Stops every later fan-out to this address; `reason` is shown in the console's quarantine view. The
 * status it had is kept, so lifting the suppression never turns an unconfirmed address into a confirmed
 * one (a confirmation email that bounced, then lifted, stays unconfirmed). Removed addresses stay removed.
 */
export function suppressRecipient(db: Db, recipientId: number, reason: string, now: Date): void {
  db.update(recipients)
    .set({
      status: 'suppressed',
      suppressedAt: now,
      suppressedReason: reason.slice(0, 300),
      suppressedFrom: sql`CASE WHEN ${recipients.status} IN ('active', 'pending') THEN ${recipients.status} ELSE ${recipients.suppressedFrom} END`,
    })
    .where(and(eq(recipients.id, recipientId), inArray(recipients.status, ['active', 'pending', 'suppressed'])))
    .run();
}

/** The reach of each notification asked for (src/core/notify/reach.ts), synchronously. */
export function notificationReach(db: Db, notificationIds: readonly number[]): Map<number, NotificationReach> {
  const rows = db.$client
    .prepare(
      `SELECT notification_id, channel,
         CASE
           WHEN status IN ('sent', 'delivered') AND provider_message_id LIKE ? THEN 'logged'
           WHEN status IN ('sent', 'delivered') THEN 'reached'
           WHEN status IN ('pending', 'sending') THEN 'onTheWay'
           ELSE status
         END AS fact,
         sum(status = 'delivered') AS delivered, count(*) AS n, max(coalesce(sent_at, finished_at)) AS last_at
       FROM deliveries WHERE notification_id IN (SELECT value FROM json_each(?))
       GROUP BY notification_id, channel, fact`,
    )
    .all(`${LOGGED_MESSAGE_ID_PREFIX}%`, JSON.stringify(notificationIds)) as {
    notification_id: number;
    channel: ChannelName;
    fact: DeliveryFact;
    delivered: number;
    n: number;
    last_at: number | null;
  }[];
  return reachOf(
    notificationIds,
    rows.map((row) => ({
      notificationId: row.notification_id,
      channel: row.channel,
      fact: row.fact,
      delivered: row.delivered,
      n: row.n,
      lastAt: row.last_at === null ? null : new Date(row.last_at),
    })),
  );
}
