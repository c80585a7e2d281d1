/**
 * The key that signs evidence of notification: Ed25519, its 32-byte seed derived (HKDF-SHA256 with a
 * purpose label of its own) from the deployment's secret, so it is the same on every node and after a
 * restart, needs nothing stored, and is independent of the audit chain's key and the blind indexes
 * derived from the same secret. Its id is the SHA-256 of the public key (SubjectPublicKeyInfo, DER), in
 * hex. The public key is published at /.well-known/candor-evidence-key (PEM, with the id), so anyone
 * can verify a document without the secret.
 */
import { createHash, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';

const KDF_INFO = 'candor-evidence-signing-v1';
// An Ed25519 private key in PKCS#8 (RFC 8410) is this fixed prefix followed by the 32-byte seed.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface EvidenceKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SHA-256 of the public key (SPKI DER), hex */
  keyId: string;
}

export interface EvidencePublicKey {
  publicKey: KeyObject;
  keyId: string;
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export function deriveEvidenceKey(secret: string): EvidenceKey {
  const seed = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), KDF_INFO, 32));
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** What /.well-known/candor-evidence-key serves: the key id as a comment line, then the PEM. */
export function publishedKeyText(key: EvidencePublicKey): string {
  const pem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return `# Candor evidence signing key (Ed25519)\n# key id: ${key.keyId}\n${pem}`;
}

/** The public key in a PEM text (the published file, or any PEM of an Ed25519 public key); null when there is none. */
export function parsePublicKey(text: string): EvidencePublicKey | null {
  const match = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/.exec(text);
  if (!match) return null;
  try {
    const publicKey = createPublicKey({ key: match[0], format: 'pem' });
    if (publicKey.asymmetricKeyType !== 'ed25519') return null;
    return { publicKey, keyId: keyIdOf(publicKey) };
  } catch {
    return null;
  }
}
