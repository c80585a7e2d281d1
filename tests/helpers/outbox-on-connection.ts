/**
 * The product's outbox and recipients (src/core/notify/outbox.ts, recipients.ts) on a SQLite connection
 * a test opened itself (db/client.ts `openDatabase`), through that connection's async handle
 * (db/engine/sqlite.ts `databaseOf`): the code the server runs, not a copy of it, with the signatures
 * of tests written before the stores (a connection, not a transaction). Each call is one transaction
 * (or one read snapshot).
 */
import type { Db } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import * as outbox from '../../src/core/notify/outbox.ts';
import * as recipients from '../../src/core/notify/recipients.ts';

export function enqueueNotification(db: Db, input: outbox.NewNotification, now: Date): Promise<outbox.Enqueued> {
  return databaseOf(db).transaction((tx) => outbox.enqueueNotification(tx, input, now));
}

export function countAudience(db: Db, audience: outbox.Audience, channels: readonly ChannelName[]): Promise<outbox.ChannelCounts> {
  return databaseOf(db).read((r) => outbox.countAudience(r, audience, channels));
}

export function organisationBreakdown(
  db: Db,
  audience: outbox.Audience,
  channels: readonly ChannelName[],
): Promise<outbox.OrganisationBreakdown[]> {
  return databaseOf(db).read((r) => outbox.organisationBreakdown(r, audience, channels));
}

export function addRecipient(db: Db, keys: recipients.Keys, input: recipients.NewRecipient, now: Date): Promise<recipients.Recipient> {
  return databaseOf(db).transaction((tx) => recipients.addRecipient(tx, keys, input, now));
}

export function findRecipient(
  db: Db,
  keys: recipients.Keys,
  channel: ChannelName,
  address: string,
): Promise<recipients.Recipient | undefined> {
  return databaseOf(db).read((r) => recipients.findRecipient(r, keys, channel, address));
}

export function suppressRecipient(db: Db, recipientId: number, reason: string, now: Date): Promise<void> {
  return databaseOf(db).transaction((tx) => recipients.suppressRecipient(tx, recipientId, reason, now));
}

export function indexEmailDomains(db: Db, keys: recipients.Keys, options: { all?: boolean } = {}): Promise<number> {
  return recipients.indexEmailDomains(databaseOf(db), keys, options);
}
