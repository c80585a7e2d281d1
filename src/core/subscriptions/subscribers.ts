/** Subscribers and what they follow. */
import type { Db } from '../../../db/client.ts';
import type { Choices } from './context.ts';

export function createSubscriber(db: Db, choices: Choices, now: Date): number {
  const { id } = db.$client
    .prepare('INSERT INTO subscribers (organisation, created_at) VALUES (?, ?) RETURNING id')
    .get(choices.organisation, now.getTime()) as { id: number };
  setTopics(db, id, choices);
  return id;
}

/** Replaces what a subscriber follows. Components narrow incidents and maintenance only. */
export function setTopics(db: Db, subscriberId: number, choices: Choices): void {
  const sqlite = db.$client;
  const insert = sqlite.prepare('INSERT OR IGNORE INTO subscriber_topics (subscriber_id, topic, component) VALUES (?, ?, ?)');
  sqlite.transaction(() => {
    sqlite.prepare('DELETE FROM subscriber_topics WHERE subscriber_id = ?').run(subscriberId);
    for (const topic of choices.topics) {
      const narrowed = (topic === 'incidents' || topic === 'maintenance') && choices.components.length > 0;
      for (const component of narrowed ? choices.components : ['']) insert.run(subscriberId, topic, component);
    }
    sqlite.prepare('UPDATE subscribers SET organisation = ? WHERE id = ?').run(choices.organisation, subscriberId);
  })();
}

export function topicsOf(db: Db, subscriberId: number): { topic: string; component: string }[] {
  return db.$client
    .prepare('SELECT topic, component FROM subscriber_topics WHERE subscriber_id = ? ORDER BY topic, component')
    .all(subscriberId) as {
    topic: string;
    component: string;
  }[];
}

/**
 * What deleting a recipient row would leave behind about them: the log
 * transport's copy of each message (masked address, their links), the
 * provider's error texts (which can quote an address or number), the
 * per-address rate-limit window keyed by the address's blind index, and the
 * customer organisations staff placed the address in (the foreign key would
 * drop those too; said here so erasure is read in one place). Deliveries
 * themselves stay, as anonymous counts. `where` selects the recipients (`r`
 * in `recipients r`); call it before deleting them.
 */
function forgetTraces(db: Db, where: string, ...params: (string | number)[]): void {
  const sqlite = db.$client;
  sqlite.prepare(`DELETE FROM organisation_members WHERE recipient_id IN (SELECT r.id FROM recipients r WHERE ${where})`).run(...params);
  const ofThem = `SELECT d.id FROM deliveries d JOIN recipients r ON r.id = d.recipient_id WHERE ${where}`;
  sqlite.prepare(`DELETE FROM logged_messages WHERE delivery_id IN (${ofThem})`).run(...params);
  sqlite.prepare(`UPDATE delivery_attempts SET error = NULL WHERE error IS NOT NULL AND delivery_id IN (${ofThem})`).run(...params);
  sqlite.prepare(`UPDATE deliveries SET last_error = NULL WHERE last_error IS NOT NULL AND id IN (${ofThem})`).run(...params);
  sqlite.prepare(`DELETE FROM rate_limits WHERE key IN (SELECT r.address_hash FROM recipients r WHERE ${where})`).run(...params);
}

/** Removes a recipient, and its subscriber when nothing else of theirs is left. Deliveries stay, anonymous. */
export function removeRecipient(db: Db, recipientId: number): void {
  const sqlite = db.$client;
  sqlite.transaction(() => {
    const row = sqlite.prepare('SELECT subscriber_id FROM recipients WHERE id = ?').get(recipientId) as
      | { subscriber_id: number | null }
      | undefined;
    forgetTraces(db, 'r.id = ?', recipientId);
    sqlite.prepare('DELETE FROM recipients WHERE id = ?').run(recipientId);
    if (row?.subscriber_id != null) {
      const left = sqlite.prepare('SELECT count(*) AS n FROM recipients WHERE subscriber_id = ?').get(row.subscriber_id) as { n: number };
      if (left.n === 0) forgetSubscriber(db, row.subscriber_id);
    }
  })();
}

/** Erasure: every address, secret and choice of the subscriber goes; delivery counts stay, with no link to them. */
export function deleteSubscriber(db: Db, subscriberId: number): void {
  const sqlite = db.$client;
  sqlite.transaction(() => {
    forgetTraces(db, 'r.subscriber_id = ?', subscriberId);
    sqlite.prepare('DELETE FROM recipients WHERE subscriber_id = ?').run(subscriberId);
    forgetSubscriber(db, subscriberId);
  })();
}

/**
 * An objection they filed stays (organisation and reasons are the record of a contractual
 * objection), but the name they gave goes with them.
 */
function forgetSubscriber(db: Db, subscriberId: number): void {
  db.$client.prepare('UPDATE objections SET contact_name = NULL WHERE subscriber_id = ?').run(subscriberId);
  db.$client.prepare('DELETE FROM subscribers WHERE id = ?').run(subscriberId);
}

/** Unconfirmed sign-ups are forgotten after a week. */
export function purgeUnconfirmed(db: Db, now: Date, maxAgeMs = 7 * 86_400_000): number {
  const sqlite = db.$client;
  const cutoff = now.getTime() - maxAgeMs;
  return sqlite.transaction(() => {
    forgetTraces(db, `r.status = 'pending' AND r.created_at < ?`, cutoff);
    const removed = sqlite.prepare(`DELETE FROM recipients WHERE status = 'pending' AND created_at < ?`).run(cutoff).changes;
    sqlite.prepare('DELETE FROM subscribers WHERE id NOT IN (SELECT subscriber_id FROM recipients WHERE subscriber_id IS NOT NULL)').run();
    return removed;
  })();
}
