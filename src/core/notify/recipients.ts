/**
 * Addresses Candor delivers to. Stored sealed; found by blind index;
 * suppressed when a provider says the address must not be written to again.
 * The rows are src/stores/recipients.ts's.
 */
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import {
  emailPage,
  insertRecipient,
  insertRecipientOnce,
  type RecipientRow,
  recipientByHash,
  setDomainHash,
  suppressRow,
  unsuppressRow,
} from '../../stores/recipients.ts';
import { blindIndex } from '../crypto/blind-index.ts';
import { seal, unseal } from '../crypto/seal.ts';
import { emailDomainHash } from '../organisations/domains.ts';
import type { ChannelName } from './types.ts';

export interface Keys {
  /** encryption keys, the current one first */
  keys: readonly Buffer[];
  secret: string;
}

export type Recipient = RecipientRow;

export function normaliseAddress(channel: ChannelName, address: string): string {
  return channel === 'email' ? address.trim().toLowerCase() : address.trim();
}

/** The associated data an address or secret of a channel is sealed under. */
export const recipientContext = (channel: ChannelName, what: 'address' | 'secret') => `recipient:${channel}:${what}`;
const context = recipientContext;

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

function sealedRow(keys: Keys, input: NewRecipient) {
  const [key] = keys.keys;
  if (!key) throw new Error('no encryption key configured');
  const address = normaliseAddress(input.channel, input.address);
  return {
    subscriberId: input.subscriberId ?? null,
    channel: input.channel,
    address: seal(key, address, context(input.channel, 'address')),
    addressHash: addressHash(keys, input.channel, address),
    domainHash: input.channel === 'email' ? emailDomainHash(keys.secret, address) : null,
    secret: input.secret ? seal(key, input.secret, context(input.channel, 'secret')) : null,
    status: input.status ?? 'active',
  };
}

/** Adds an address; one already there (same channel and address) fails on the unique key. */
export function addRecipient(tx: Tx, keys: Keys, input: NewRecipient, now: Date): Promise<Recipient> {
  return insertRecipient(tx, { ...sealedRow(keys, input), createdAt: now });
}

/** The address's row, added when there is none (concurrent callers get the same row). */
export function ensureRecipient(tx: Tx, keys: Keys, input: NewRecipient, now: Date): Promise<Recipient> {
  return insertRecipientOnce(tx, { ...sealedRow(keys, input), createdAt: now });
}

export function findRecipient(r: Reader | Tx, keys: Keys, channel: ChannelName, address: string): Promise<Recipient | undefined> {
  return recipientByHash(r, channel, addressHash(keys, channel, address));
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
 * (`all`: everywhere, e.g. after `keys rotate`), opening each address once,
 * a page of addresses per transaction. Idempotent; rows added since the column
 * exists already carry it. Returns how many rows it wrote.
 */
export async function indexEmailDomains(database: Database, keys: Keys, options: { all?: boolean } = {}): Promise<number> {
  const PAGE = 500;
  let written = 0;
  let after = 0;
  for (;;) {
    const page = await database.transaction(async (tx) => {
      const rows = await emailPage(tx, after, PAGE, options.all ?? false);
      let changed = 0;
      for (const row of rows) {
        let hash: string | null;
        try {
          hash = emailDomainHash(keys.secret, openRecipient(keys, { ...row, secret: null }).address);
        } catch {
          // sealed under a key this process lacks: it cannot be sent to either; `keys rotate` settles it
          continue;
        }
        if (hash !== row.domainHash) {
          await setDomainHash(tx, row.id, hash);
          changed++;
        }
      }
      return { rows, changed };
    });
    written += page.changed;
    const last = page.rows.at(-1);
    if (!last || page.rows.length < PAGE) return written;
    after = last.id;
  }
}

/**
 * Stops every later fan-out to this address; `reason` is shown in the console's quarantine view. The
 * status it had is kept, so lifting the suppression never turns an unconfirmed address into a confirmed
 * one (a confirmation email that bounced, then lifted, stays unconfirmed). Removed addresses stay removed.
 */
export async function suppressRecipient(tx: Tx, recipientId: number, reason: string, now: Date): Promise<void> {
  await suppressRow(tx, recipientId, reason.slice(0, 300), now);
}

/** Lifts a suppression: the address returns to the status it had (active when that was not recorded). */
export async function unsuppressRecipient(tx: Tx, recipientId: number): Promise<void> {
  await unsuppressRow(tx, recipientId);
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
