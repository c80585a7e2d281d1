import { encodeBase32LowerCaseNoPadding } from '@oslojs/encoding';

/** 120 bits of randomness as 24 lower-case base32 characters (Lucia's recommendation for ids and secrets). */
export function randomToken(): string {
  const bytes = new Uint8Array(15);
  crypto.getRandomValues(bytes);
  return encodeBase32LowerCaseNoPadding(bytes);
}
