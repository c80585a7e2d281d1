/** Subscribers and recipients made in bulk for engine tests, straight into the database (SQLite's `Db`, or either engine's `Database` through the stores). */
import type { Db } from '../../db/client.ts';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { seal } from '../../src/core/crypto/seal.ts';
import { addressHash, type Keys } from '../../src/core/notify/recipients.ts';
import { emailDomainHash } from '../../src/core/organisations/domains.ts';
import { insertRecipient } from '../../src/stores/recipients.ts';
import { insertSubscriber, replaceTopics } from '../../src/stores/subscribers.ts';

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

/** As `addSubscribers`, on either engine through the stores, in one transaction; returns the recipients' ids. */
export async function addSubscribersOn(database: Database, keys: Keys, options: BulkOptions): Promise<number[]> {
  const [key] = keys.keys;
  if (!key) throw new Error('no key');
  const address = options.address ?? ((i: number) => `person${i}@customer.example`);
  return database.transaction(async (tx) => {
    const now = new Date();
    const ids: number[] = [];
    for (let i = 0; i < options.count; i++) {
      const subscriberId = await insertSubscriber(tx, null, now);
      await replaceTopics(tx, subscriberId, [{ topic: options.topic ?? 'incidents', component: options.component ?? '' }], null);
      const a = address(i);
      const s = options.secret?.(i) ?? null;
      const recipient = await insertRecipient(tx, {
        subscriberId,
        channel: options.channel,
        address: seal(key, a, `recipient:${options.channel}:address`),
        addressHash: addressHash(keys, options.channel, a),
        domainHash: options.channel === 'email' ? emailDomainHash(keys.secret, a) : null,
        secret: s ? seal(key, s, `recipient:${options.channel}:secret`) : null,
        status: 'active',
        createdAt: now,
      });
      ids.push(recipient.id);
    }
    return ids;
  });
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
