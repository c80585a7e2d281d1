/**
 * The key that seals the audit chain: HMAC-SHA256 under a key derived
 * (HKDF-SHA256, fixed info label) from CANDOR_SECRET. It is never stored in
 * the database, so whoever can write the database file but does not know
 * the secret cannot recompute the chain after changing it.
 *
 * Each keyed entry records the key's id: a short fingerprint of the derived
 * key (an HMAC of a fixed label, which reveals nothing of the key). The
 * verifier matches it against the current secret and those listed in
 * CANDOR_PREVIOUS_SECRETS, so after the secret changes it can say "written
 * with another secret" instead of "tampered".
 *
 * Writers find the keyring bound to their database handle (`bindAuditKeys`,
 * done where the handle is opened for the app, the CLI and restore), so the
 * many places that record an entry need nothing more than the handle. A
 * handle without a keyring cannot write to the log: there is no unkeyed
 * fallback.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { chainUpgradedHere, type Db } from '../../../db/client.ts';
import { ownerOf } from '../../../db/engine/common.ts';
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';

export interface AuditKey {
  /** 16 hex characters, stored with every entry the key seals */
  id: string;
  key: Buffer;
}

export interface AuditKeyring {
  /** from CANDOR_SECRET: seals new entries */
  current: AuditKey;
  /** from CANDOR_PREVIOUS_SECRETS: verify entries written before the secret changed */
  previous: AuditKey[];
  /**
   * Set by bindAuditKeys: when this handle's opening applied the keyed-chain migration, the last
   * plain entry it noted, which this handle may seal once (db/client.ts chainUpgradedHere); cleared
   * when sealed. No other handle may seal plain entries.
   */
  upgrade?: { lastPlainId: number | null };
}

const KDF_INFO = 'candor-audit-chain-v1';
const ID_LABEL = 'candor-audit-key-id';

export function deriveAuditKey(secret: string): AuditKey {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), KDF_INFO, 32));
  return { id: createHmac('sha256', key).update(ID_LABEL).digest('hex').slice(0, 16), key };
}

export function auditKeyring(secret: string, previousSecrets: readonly string[] = []): AuditKeyring {
  const current = deriveAuditKey(secret);
  const previous = previousSecrets
    .map(deriveAuditKey)
    .filter((k, i, all) => k.id !== current.id && all.findIndex((o) => o.id === k.id) === i);
  return { current, previous };
}

/** The key with that id, if the keyring holds it. */
export function keyById(keyring: AuditKeyring, id: string): AuditKey | undefined {
  return [keyring.current, ...keyring.previous].find((k) => k.id === id);
}

/**
 * Kept on the handle itself under a registered symbol, not in a module-level map: the server's
 * entry and Astro's bundle of the pages each load their own copy of this module, and both must
 * find what createAppContext bound. Not enumerable, so it never shows in a dump of the handle.
 */
const BOUND = Symbol.for('candor.auditKeyring');

function isKeyring(value: unknown): value is AuditKeyring {
  return typeof value === 'object' && value !== null && 'current' in value && 'previous' in value;
}

/** Where a keyring can be bound: a SQLite connection (legacy code) or an engine handle (db/engine). */
export type AuditKeyHolder = Db | Database;

const isDb = (holder: object): holder is Db => '$client' in holder;

/** From now on, entries written through this handle (and every tx of it) are sealed with the keyring's current key. */
export function bindAuditKeys<T extends AuditKeyHolder>(holder: T, keyring: AuditKeyring): T {
  const connection = isDb(holder) ? holder : holder.engine === 'sqlite' && 'connection' in holder ? holder.connection : undefined;
  const upgrade = { lastPlainId: connection ? chainUpgradedHere(connection as Db) : null };
  const bound: AuditKeyring = { current: keyring.current, previous: keyring.previous, upgrade };
  // An engine over a SQLite connection shares the connection's keyring (and its one-time upgrade seal) with code still on it.
  for (const target of connection && connection !== holder ? [holder, connection] : [holder])
    Object.defineProperty(target, BOUND, { value: bound, configurable: true, enumerable: false, writable: false });
  return holder;
}

/**
 * The keyring bound to a handle, found also from a tx or reader of an engine handle (its owner,
 * db/engine/common.ts) and from the engine over a SQLite connection that was bound (`databaseOf`).
 */
export function boundAuditKeys(from: AuditKeyHolder | Tx | Reader): AuditKeyring {
  const keyring = findKeys(from);
  if (!keyring) {
    throw new Error('the audit log cannot be written: this database handle has no audit key (bindAuditKeys after opening it)');
  }
  return keyring;
}

function findKeys(from: object): AuditKeyring | undefined {
  const keyring: unknown = Reflect.get(from, BOUND);
  if (isKeyring(keyring)) return keyring;
  const owner = ownerOf(from);
  if (owner) return findKeys(owner);
  const connection: unknown = Reflect.get(from, 'connection');
  return typeof connection === 'object' && connection !== null ? findKeys(connection) : undefined;
}
