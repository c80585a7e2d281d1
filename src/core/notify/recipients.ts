/**
 * Addresses Candor delivers to. Stored sealed; found by blind index;
 * suppressed when a provider says the address must not be written to again.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { recipients } from '../../../db/schema.ts';
import { blindIndex } from '../crypto/blind-index.ts';
import { seal, unseal } from '../crypto/seal.ts';
import { emailDomainHash } from '../organisations/domains.ts';
import type { ChannelName } from './types.ts';

export interface Keys {
  /** encryption keys, the current one first */
  keys: readonly Buffer[];
  secret: string;
}

export type Recipient = typeof recipients.$inferSelect;

export function normaliseAddress(channel: ChannelName, address: string): string {
  return channel === 'email' ? address.trim().toLowerCase() : address.trim();
}

const context = (channel: ChannelName, what: 'address' | 'secret') => `recipient:${channel}:${what}`;

export function addressHash(keys: Keys, channel: ChannelName, address: string): string {
  return blindIndex(keys.secret, `recipient:${channel}`, normaliseAddress(channel, address));
}

export interface NewRecipient {
  channel: ChannelName;
  address: string;
  secret?: string | null;
  subscriberId?: number | null;
  status?: Recipient['status'];
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

export function openRecipient(
  keys: Keys,
  recipient: Pick<Recipient, 'channel' | 'address' | 'secret'>,
): { address: string; secret: string | null } {
  return {
    address: unseal(keys.keys, recipient.address, context(recipient.channel, 'address')),
    secret: recipient.secret ? unseal(keys.keys, recipient.secret, context(recipient.channel, 'secret')) : null,
  };
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

/** Lifts a suppression: the address returns to the status it had (active when that was not recorded). */
export function unsuppressRecipient(db: Db, recipientId: number): void {
  db.update(recipients)
    .set({
      status: sql`coalesce(${recipients.suppressedFrom}, 'active')`,
      suppressedAt: null,
      suppressedReason: null,
      suppressedFrom: null,
    })
    .where(and(eq(recipients.id, recipientId), eq(recipients.status, 'suppressed')))
    .run();
}

/** "ad…@example.com", "+44 …1234": enough to recognise in the console, not a copy of the data. */
export function maskAddress(channel: ChannelName, address: string): string {
  if (channel === 'email') {
    const [local = '', domain = ''] = address.split('@');
    return `${local.slice(0, 2)}…@${domain}`;
  }
  if (channel === 'sms') return `${address.slice(0, 3)} …${address.slice(-4)}`;
  try {
    const url = new URL(address);
    return `${url.protocol}//${url.host}/…`;
  } catch {
    return `${address.slice(0, 4)}…`;
  }
}
