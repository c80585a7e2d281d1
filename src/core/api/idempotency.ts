/**
 * `Idempotency-Key` for the staff API's POSTs (issue 17; the IETF httpapi draft
 * "The Idempotency-Key HTTP Header Field"): a client that retries a request with the same key never
 * acts twice. The first request with a key claims it (one INSERT on the primary key (token, key), so
 * of two concurrent requests exactly one wins, on both engines); its answer is kept 24 hours and sent
 * again, with `Idempotent-Replayed: true`, to a retry of the same request (SHA-256 of method, path and
 * body). The same key with another request is refused (422), and a retry while the first is still
 * running too (409). A server error releases the key, so the client may try again. Keys are per token:
 * two programs cannot see or spoil each other's replies. Housekeeping removes kept replies after 24 h.
 */
import { createHash } from 'node:crypto';
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  idempotencyRow,
  releaseIdempotencyKey,
  removeExpiredIdempotencyKey,
  removeExpiredIdempotencyKeys,
} from '../../stores/api-tokens.ts';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
export const REPLAYED_HEADER = 'Idempotent-Replayed';
/** How long a reply is kept for retries (Stripe's and the IETF draft's usual figure). */
export const IDEMPOTENCY_KEEP_MS = 24 * 3_600_000;
const KEY_MAX = 255;

/** Why this header value cannot be a key (missing, empty, too long, not printable ASCII), or null. */
export function idempotencyKeyProblem(key: string | null): string | null {
  if (key === null)
    return `Every POST needs an ${IDEMPOTENCY_HEADER} header (1 to ${KEY_MAX} printable ASCII characters, e.g. a UUID), so that a retry never acts twice.`;
  if (key.length === 0 || key.length > KEY_MAX) return `The ${IDEMPOTENCY_HEADER} header must be 1 to ${KEY_MAX} characters long.`;
  if (!/^[\x20-\x7e]+$/.test(key)) return `The ${IDEMPOTENCY_HEADER} header may hold printable ASCII characters only.`;
  return null;
}

/** What identifies "the same request": method, path (with its query) and the body's exact bytes. */
export function requestFingerprint(method: string, path: string, body: string): string {
  return createHash('sha256').update(`${method.toUpperCase()}\n${path}\n`, 'utf8').update(body, 'utf8').digest('hex');
}

export type IdempotencyClaim =
  /** the first request with this key: run it, then `completeIdempotency` (or `releaseIdempotency` on a server error) */
  | { kind: 'first' }
  /** a retry of a finished request: answer what was answered */
  | { kind: 'replay'; status: number; body: string }
  /** the key was used for a different request */
  | { kind: 'mismatch' }
  /** the first request with this key is still running */
  | { kind: 'in-progress' };

export function claimIdempotency(
  database: Database,
  tokenId: number,
  key: string,
  requestHash: string,
  now: Date,
): Promise<IdempotencyClaim> {
  return database.transaction(async (tx): Promise<IdempotencyClaim> => {
    await removeExpiredIdempotencyKey(tx, tokenId, key, now);
    // On PostgreSQL a concurrent INSERT of the same (token, key) waits here until the first commits, then does nothing.
    const claimed = await claimIdempotencyKey(tx, {
      tokenId,
      key,
      requestHash,
      createdAt: now,
      expiresAt: new Date(now.getTime() + IDEMPOTENCY_KEEP_MS),
    });
    if (claimed) return { kind: 'first' };
    const row = await idempotencyRow(tx, tokenId, key);
    // Released between the INSERT and this read: the other request failed; this one may be retried.
    if (!row) return { kind: 'in-progress' };
    if (row.requestHash !== requestHash) return { kind: 'mismatch' };
    if (row.state === 'pending' || row.responseStatus === null || row.responseBody === null) return { kind: 'in-progress' };
    return { kind: 'replay', status: row.responseStatus, body: row.responseBody };
  });
}

/** Keeps the answer of the first request for its retries. */
export function completeIdempotency(database: Database, tokenId: number, key: string, status: number, body: string): Promise<void> {
  return database.transaction((tx) => completeIdempotencyKey(tx, tokenId, key, status, body));
}

/** Frees the key after a server error: nothing was kept, so a retry runs again. */
export function releaseIdempotency(database: Database, tokenId: number, key: string): Promise<void> {
  return database.transaction((tx) => releaseIdempotencyKey(tx, tokenId, key));
}

/** Housekeeping's step: replies older than 24 hours. */
export function removeExpiredIdempotencyReplies(tx: Tx, now: Date): Promise<number> {
  return removeExpiredIdempotencyKeys(tx, now);
}
