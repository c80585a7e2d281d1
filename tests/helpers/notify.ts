/**
 * Subscribers and recipients made in bulk for engine tests, straight into the database: `addSubscribers`
 * on a SQLite connection, synchronously; `addSubscribersTo` on either engine through the async handle
 * (on PostgreSQL as the application role, row-level security applying).
 */
import { and, count, eq } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { query, reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { seal } from '../../src/core/crypto/seal.ts';
import { addressHash, type Keys } from '../../src/core/notify/recipients.ts';
import { emailDomainHash } from '../../src/core/organisations/domains.ts';

export const TEST_KEYS: Keys = { keys: [Buffer.alloc(32, 9)], secret: 'engine-test-secret-of-sufficient-length' };

export interface BulkOptions {
  count: number;
  channel: ChannelName;
  topic?: string;
  component?: string;
  /** address of the i-th recipient */
  address?: (i: number) => string;
  secret?: (i: number) => string | null;
}

/**
 * One subscriber per recipient, following `topic`. Sealing 100,000 addresses
 * costs a few hundred milliseconds; the rows go in one transaction.
 */
export function addSubscribers(db: Db, keys: Keys, options: BulkOptions): number[] {
  const [key] = keys.keys;
  if (!key) throw new Error('no key');
  const sqlite = db.$client;
  const now = Date.now();
  const addSubscriber = sqlite.prepare('INSERT INTO subscribers (organisation, created_at) VALUES (NULL, ?) RETURNING id');
  const addTopic = sqlite.prepare('INSERT INTO subscriber_topics (subscriber_id, topic, component) VALUES (?, ?, ?)');
  const addRecipient = sqlite.prepare(
    `INSERT INTO recipients (subscriber_id, channel, address, address_hash, domain_hash, secret, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?) RETURNING id`,
  );
  const address = options.address ?? ((i: number) => `person${i}@customer.example`);
  return sqlite.transaction(() => {
    const ids: number[] = [];
    for (let i = 0; i < options.count; i++) {
      const { id: subscriberId } = addSubscriber.get(now) as { id: number };
      addTopic.run(subscriberId, options.topic ?? 'incidents', options.component ?? '');
      const a = address(i);
      const s = options.secret?.(i) ?? null;
      const { id } = addRecipient.get(
        subscriberId,
        options.channel,
        seal(key, a, `recipient:${options.channel}:address`),
        addressHash(keys, options.channel, a),
        options.channel === 'email' ? emailDomainHash(keys.secret, a) : null,
        s ? seal(key, s, `recipient:${options.channel}:secret`) : null,
        now,
      ) as { id: number };
      ids.push(id);
    }
    return ids;
  })();
}

/** Rows per INSERT statement: 1,000 recipients are about 9,000 parameters, far below both engines' limits. */
const BATCH = 1000;

/**
 * `addSubscribers` on either engine: one subscriber per recipient, following `topic`, in one transaction,
 * written 1,000 rows per statement. Returns the recipient ids, the i-th for `address(i)`.
 */
export async function addSubscribersTo(database: Database, keys: Keys, options: BulkOptions): Promise<number[]> {
  const [key] = keys.keys;
  if (!key) throw new Error('no key');
  const address = options.address ?? ((i: number) => `person${i}@customer.example`);
  const now = new Date();
  const { channel } = options;
  const run = async (q: ReturnType<typeof query>): Promise<number[]> => {
    const ids: number[] = [];
    for (let start = 0; start < options.count; start += BATCH) {
      const size = Math.min(BATCH, options.count - start);
      const made = await q.db
        .insert(q.t.subscribers)
        .values(Array.from({ length: size }, () => ({ organisation: null, createdAt: now, trustCenterId: q.trustCenter })))
        .returning({ id: q.t.subscribers.id });
      // Ids are given in the order the rows are written; RETURNING's order is not promised, so sort.
      const subscriberIds = made.map((r) => r.id).sort((a, b) => a - b);
      await q.db.insert(q.t.subscriberTopics).values(
        subscriberIds.map((subscriberId) => ({
          subscriberId,
          topic: options.topic ?? 'incidents',
          component: options.component ?? '',
          trustCenterId: q.trustCenter,
        })),
      );
      const rows = subscriberIds.map((subscriberId, n) => {
        const a = address(start + n);
        const s = options.secret?.(start + n) ?? null;
        return {
          subscriberId,
          channel,
          address: seal(key, a, `recipient:${channel}:address`),
          addressHash: addressHash(keys, channel, a),
          domainHash: channel === 'email' ? emailDomainHash(keys.secret, a) : null,
          secret: s ? seal(key, s, `recipient:${channel}:secret`) : null,
          status: 'active' as const,
          createdAt: now,
          trustCenterId: q.trustCenter,
        };
      });
      const recipients = await q.db
        .insert(q.t.recipients)
        .values(rows)
        .returning({ id: q.t.recipients.id, subscriberId: q.t.recipients.subscriberId });
      const bySubscriber = new Map(recipients.map((r) => [r.subscriberId, r.id]));
      for (const subscriberId of subscriberIds) {
        const id = bySubscriber.get(subscriberId);
        if (id === undefined) throw new Error('a recipient was not written');
        ids.push(id);
      }
    }
    return ids;
  };
  return database.engine === 'sqlite' ? database.transaction((tx) => run(query(tx))) : database.transaction((tx) => run(query(tx)));
}

/** Deliveries per status, of one notification or of all, on either engine. */
export async function deliveryCountsOf(database: Database, notificationId?: number): Promise<Record<string, number>> {
  const tally = async (q: ReturnType<typeof reading>) => {
    const d = q.t.deliveries;
    const rows = await q.db
      .select({ status: d.status, n: count() })
      .from(d)
      .where(and(eq(d.trustCenterId, q.trustCenter), notificationId === undefined ? undefined : eq(d.notificationId, notificationId)))
      .groupBy(d.status);
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  };
  return database.engine === 'sqlite' ? database.read((r) => tally(reading(r))) : database.read((r) => tally(reading(r)));
}

export function deliveryCounts(db: Db, notificationId?: number): Record<string, number> {
  const rows = db.$client
    .prepare(`SELECT status, count(*) AS n FROM deliveries ${notificationId ? 'WHERE notification_id = ?' : ''} GROUP BY status`)
    .all(...(notificationId ? [notificationId] : [])) as { status: string; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

export const emailContent = (subject = 'Elevated API errors') => ({
  email: { subject, html: `<p>${subject}: we are investigating.</p>`, text: `${subject}: we are investigating.` },
});
