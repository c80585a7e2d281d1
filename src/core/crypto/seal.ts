/**
 * Authenticated encryption of small values at rest (TOTP secrets now;
 * subscriber contact details later): AES-256-GCM with a fresh 96-bit IV.
 * The sealed form names the key it was sealed with, so keys can rotate.
 * Format: `v1.<key id>.<iv>.<ciphertext+tag>` (base64url parts).
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';

const TAG_LENGTH = 16;

const ids = new WeakMap<Buffer, string>();
const keyObjects = new WeakMap<Buffer, KeyObject>();

export function keyId(key: Buffer): string {
  let id = ids.get(key);
  if (!id) {
    id = createHash('sha256').update(key).digest('hex').slice(0, 8);
    ids.set(key, id);
  }
  return id;
}

/** Node would rebuild the AES key schedule from raw bytes on every call; a KeyObject is built once per key. */
function keyObject(key: Buffer): KeyObject {
  let object = keyObjects.get(key);
  if (!object) {
    object = createSecretKey(key);
    keyObjects.set(key, object);
  }
  return object;
}

/** `context` binds the value to its use (e.g. `staff:4:totp`): a sealed value copied elsewhere will not open. */
export function seal(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyObject(key), iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return ['v1', keyId(key), iv.toString('base64url'), body.toString('base64url')].join('.');
}

export function unseal(keys: readonly Buffer[], sealed: string, context: string): string {
  const [version, kid, ivPart, bodyPart] = sealed.split('.');
  if (version !== 'v1' || !kid || !ivPart || !bodyPart) throw new Error('sealed value is malformed');
  const key = keys.find((k) => keyId(k) === kid);
  if (!key) throw new Error(`sealed with key ${kid}, which is not configured`);
  const body = Buffer.from(bodyPart, 'base64url');
  if (body.length < TAG_LENGTH) throw new Error('sealed value is malformed');
  // A fixed tag length: GCM would otherwise accept a truncated tag (down to 4 bytes), which is far easier to forge.
  const decipher = createDecipheriv('aes-256-gcm', keyObject(key), Buffer.from(ivPart, 'base64url'), { authTagLength: TAG_LENGTH });
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(body.subarray(body.length - TAG_LENGTH));
  return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_LENGTH)), decipher.final()]).toString('utf8');
}
