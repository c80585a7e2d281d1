/**
 * Subscribers, their addresses and what they follow. The rows are src/stores/subscribers.ts's (issue
 * 15); functions taking a `tx` run inside the caller's transaction, the others open their own.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import { type RemovalReason, rememberRemoved } from '../../stores/removed-addresses.ts';
import {
  addressKeysOf,
  deleteRecipients,
  deleteSubscriberRow,
  deleteSubscribersWithoutAddress,
  forgetTraces,
  insertSubscriber,
  isUniqueViolation,
  lockRecipientByAddress,
  lockSubscriber,
  type Recipient,
  recipientById,
  recipientCount,
  replaceTopics,
  type TopicRow,
  topicsOf as topicRows,
} from '../../stores/subscribers.ts';
import { seal } from '../crypto/seal.ts';
import { addRecipient, addressHash, type Keys, normaliseAddress, recipientContext } from '../notify/recipients.ts';
import type { ChannelName } from '../notify/types.ts';
import type { Choices } from './context.ts';

/** The rows of what a subscriber follows. Components narrow incidents and maintenance only. */
export function topicRowsOf(choices: Choices): TopicRow[] {
  return choices.topics.flatMap((topic) => {
    const narrowed = (topic === 'incidents' || topic === 'maintenance') && choices.components.length > 0;
    return (narrowed ? choices.components : ['']).map((component) => ({ topic, component }));
  });
}

/** Replaces what a subscriber follows, in the caller's transaction. */
export function setTopicsIn(tx: Tx, subscriberId: number, choices: Choices): Promise<void> {
  return replaceTopics(tx, subscriberId, topicRowsOf(choices), choices.organisation);
}

/** Replaces what a subscriber follows. */
export function setTopics(database: Database, subscriberId: number, choices: Choices): Promise<void> {
  return database.transaction((tx) => setTopicsIn(tx, subscriberId, choices));
}

export function topicsOf(database: Database, subscriberId: number): Promise<TopicRow[]> {
  return database.read((r) => topicRows(r, subscriberId));
}

/** A secret (a webhook's signing secret, a Slack bot token) sealed as notify/recipients.ts's `openRecipient` reads it. */
export function sealSecret(keys: Keys, channel: ChannelName, secret: string): string {
  const [key] = keys.keys;
  if (!key) throw new Error('no encryption key configured');
  return seal(key, secret, recipientContext(channel, 'secret'));
}

export interface NewAddress {
  channel: ChannelName;
  address: string;
  secret?: string | null;
  status: 'pending' | 'active';
}

export interface SignUp {
  recipient: Recipient;
  /** false: the address was there already (found first, or added by a concurrent sign-up), as it is */
  created: boolean;
}

/**
 * The address as it is, or, when it is new, a new subscriber with these choices and the address: in
 * the caller's transaction. Two sign-ups of one address at once meet on the unique key of
 * `recipients (channel, address_hash)`: the new subscriber, topics and address are inserted inside a
 * savepoint, and the one that loses undoes them and answers with the row the other added. The found
 * row is locked on PostgreSQL (FOR UPDATE) until the transaction ends, so what the caller does with it
 * next (new topics, a new challenge) is not undercut by a concurrent removal.
 */
export async function signUpIn(tx: Tx, keys: Keys, input: NewAddress, choices: Choices, now: Date): Promise<SignUp> {
  const address = normaliseAddress(input.channel, input.address);
  const hash = addressHash(keys, input.channel, address);
  const found = await lockRecipientByAddress(tx, input.channel, hash);
  if (found) return { recipient: found, created: false };
  try {
    const recipient = await tx.savepoint(async (sp) => {
      const subscriberId = await insertSubscriber(sp, choices.organisation, now);
      await setTopicsIn(sp, subscriberId, choices);
      // notify/recipients.ts seals the address and fails on the unique key when it is there already
      return addRecipient(sp, keys, { ...input, address, subscriberId }, now);
    });
    return { recipient, created: true };
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // Added by a sign-up that committed since the look-up: this statement sees it (READ COMMITTED).
    const other = await lockRecipientByAddress(tx, input.channel, hash);
    if (!other) throw err;
    return { recipient: other, created: false };
  }
}

/** `signUpIn` as a transaction of its own. */
export function signUp(database: Database, keys: Keys, input: NewAddress, choices: Choices, now: Date): Promise<SignUp> {
  return database.transaction((tx) => signUpIn(tx, keys, input, choices, now));
}

/**
 * Removes an address, and its subscriber when nothing else of theirs is left; in the caller's
 * transaction. Its blind index is kept as removed, with the reason, so an import never adds it again
 * (src/stores/removed-addresses.ts). Deliveries stay, anonymous. The subscriber's row is locked first (PostgreSQL), so two
 * removals of one subscriber's last two addresses run one after the other and the second removes the
 * subscriber. Returns the address as it was, or undefined when it was gone already.
 */
export async function removeRecipientIn(tx: Tx, recipientId: number, reason: RemovalReason, now: Date): Promise<Recipient | undefined> {
  const before = await recipientById(tx, recipientId);
  if (!before) return undefined;
  if (before.subscriberId !== null) await lockSubscriber(tx, before.subscriberId);
  await rememberRemoved(tx, [before], reason, now);
  await forgetTraces(tx, { recipientId });
  if ((await deleteRecipients(tx, { recipientId })) === 0) return undefined;
  if (before.subscriberId !== null && (await recipientCount(tx, before.subscriberId)) === 0)
    await deleteSubscriberRow(tx, before.subscriberId);
  return before;
}

export function removeRecipient(database: Database, recipientId: number, reason: RemovalReason, now: Date): Promise<Recipient | undefined> {
  return database.transaction((tx) => removeRecipientIn(tx, recipientId, reason, now));
}

/**
 * Erasure, in the caller's transaction: every address, secret and choice of the subscriber goes;
 * delivery counts stay, with no link to them. Only each address's blind index is kept, as removed
 * with the reason, so an import never adds it again. How many addresses went, or null when the
 * subscriber was gone already.
 */
export async function deleteSubscriberIn(
  tx: Tx,
  subscriberId: number,
  reason: RemovalReason,
  now: Date,
): Promise<{ channels: number } | null> {
  const existed = await lockSubscriber(tx, subscriberId);
  await rememberRemoved(tx, await addressKeysOf(tx, { subscriberId }), reason, now);
  await forgetTraces(tx, { subscriberId });
  const channels = await deleteRecipients(tx, { subscriberId });
  if (existed) await deleteSubscriberRow(tx, subscriberId);
  return existed || channels > 0 ? { channels } : null;
}

export function deleteSubscriber(
  database: Database,
  subscriberId: number,
  reason: RemovalReason,
  now: Date,
): Promise<{ channels: number } | null> {
  return database.transaction((tx) => deleteSubscriberIn(tx, subscriberId, reason, now));
}

/**
 * Unconfirmed sign-ups are forgotten after a week; how many addresses went. A subscriber is removed
 * only once no address of theirs is left (a sign-up commits its subscriber and address together).
 */
export function purgeUnconfirmed(database: Database, now: Date, maxAgeMs = 7 * 86_400_000): Promise<number> {
  const pendingBefore = new Date(now.getTime() - maxAgeMs);
  return database.transaction(async (tx) => {
    await forgetTraces(tx, { pendingBefore });
    const removed = await deleteRecipients(tx, { pendingBefore });
    await deleteSubscribersWithoutAddress(tx);
    return removed;
  });
}
