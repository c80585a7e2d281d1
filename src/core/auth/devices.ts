/**
 * Recognised devices. After a member completes sign-in (password, and the
 * second factor when their account uses one), their browser keeps a signed
 * cookie naming the member, a random device id, the member's device
 * generation and when it expires. A later sign-in or second-factor attempt
 * for the same account that presents it is spared the account's ceiling
 * (lockouts.ts): a stranger failing on purpose from many networks cannot
 * shut the member out of the browsers they already use. Everything else
 * (the per-source counters, the password, the second factor) applies to it
 * as to anyone, and a small count per device bounds what a stolen cookie is
 * worth.
 *
 * The MAC is HMAC-SHA256 under a key derived (HKDF-SHA256, its own info
 * label) from CANDOR_SECRET, as the audit chain's key is; changing the
 * secret forgets every device. Raising the member's generation
 * (`staff.device_generation`) forgets theirs: an owner's sign-in reset,
 * disabling the account, a password change, ending the other sessions.
 * A cookie that is forged, altered, expired, for someone else or of an
 * older generation is not recognised, and nothing more is said.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { randomToken } from '../crypto/random.ts';

/** How long a device stays recognised without signing in again. */
export const DEVICE_TTL_MS = 90 * 24 * 3_600_000;

const KDF_INFO = 'candor-recognised-device-v1';
const VERSION = 'd1';

export interface Device {
  staffId: number;
  /** random, one per browser; kept across the cookie's renewals */
  id: string;
  generation: number;
  expiresAt: Date;
}

/** What a cookie is checked against: the account being tried. */
export interface DeviceOwner {
  id: number;
  deviceGeneration: number;
}

const deviceKey = (secret: string) => Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), KDF_INFO, 32));

function tokenOf(secret: string, device: Device): string {
  const payload = [VERSION, device.staffId, device.generation, device.id, device.expiresAt.getTime()]
    .map((part) => (typeof part === 'number' ? part.toString(36) : part))
    .join('.');
  return `${payload}.${createHmac('sha256', deviceKey(secret)).update(payload).digest('base64url')}`;
}

/** The cookie's value for this member's current generation; `id` keeps a recognised device's id. */
export function issueDevice(secret: string, member: DeviceOwner, now: Date, id: string = randomToken()): string {
  return tokenOf(secret, {
    staffId: member.id,
    id,
    generation: member.deviceGeneration,
    expiresAt: new Date(now.getTime() + DEVICE_TTL_MS),
  });
}

const BASE36 = /^[0-9a-z]{1,11}$/;
const DEVICE_ID = /^[a-z2-7]{24}$/;

/**
 * The device a cookie names, when it is one we signed, spelled exactly as we spell it, for this
 * member and their current generation, and not expired; otherwise null.
 */
export function recognisedDevice(secret: string, token: string | undefined, member: DeviceOwner | undefined, now: Date): Device | null {
  if (!token || !member || token.length > 200) return null;
  const [version, staffPart, generationPart, id, expiresPart, mac, extra] = token.split('.');
  if (version !== VERSION || !staffPart || !generationPart || !id || !expiresPart || !mac || extra !== undefined) return null;
  if (!BASE36.test(staffPart) || !BASE36.test(generationPart) || !BASE36.test(expiresPart) || !DEVICE_ID.test(id)) return null;
  const device: Device = {
    staffId: Number.parseInt(staffPart, 36),
    id,
    generation: Number.parseInt(generationPart, 36),
    expiresAt: new Date(Number.parseInt(expiresPart, 36)),
  };
  // The whole token against the one we would issue: one spelling, and the MAC compared in constant time.
  const expected = Buffer.from(tokenOf(secret, device));
  const given = Buffer.from(token);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  if (device.staffId !== member.id || device.generation !== member.deviceGeneration || device.expiresAt <= now) return null;
  return device;
}

export interface DeviceCookie {
  name: string;
  secure: boolean;
}

/** As the session cookie: `__Host-` over https, which plain http (local use) cannot carry. */
export function deviceCookie(https: boolean): DeviceCookie {
  return { name: https ? '__Host-candor_device' : 'candor_device', secure: https };
}
