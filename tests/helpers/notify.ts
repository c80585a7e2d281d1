/** Subscribers and recipients made in bulk for engine tests, straight into the database. */
import type { Db } from '../../db/client.ts';
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

export function deliveryCounts(db: Db, notificationId?: number): Record<string, number> {
  const rows = db.$client
    .prepare(`SELECT status, count(*) AS n FROM deliveries ${notificationId ? 'WHERE notification_id = ?' : ''} GROUP BY status`)
    .all(...(notificationId ? [notificationId] : [])) as { status: string; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

export const emailContent = (subject = 'Elevated API errors') => ({
  email: { subject, html: `<p>${subject}: we are investigating.</p>`, text: `${subject}: we are investigating.` },
});
