import { createHmac } from 'node:crypto';

/**
 * Finds an encrypted value by exact match without decrypting every row:
 * an HMAC of the normalised value, keyed by CANDOR_SECRET and scoped by
 * purpose so equal values in different columns do not correlate.
 */
export function blindIndex(secret: string, purpose: string, normalised: string): string {
  return createHmac('sha256', secret).update(`${purpose}\0${normalised}`).digest('base64url');
}
