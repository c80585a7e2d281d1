/**
 * The backup file: a two-line header in clear text, then the database in
 * chunks sealed with AES-256-GCM.
 *
 *   CANDOR-BACKUP 1
 *   {"createdAt":"…","keyId":"…","secretId":"…","salt":"…","chunkBytes":65536,"migration":{…}}
 *   chunk 0, chunk 1, …, last chunk
 *
 * Each file has its own key, HKDF-SHA256(installation key, salt from the
 * header, "candor-backup"), so chunk nonces can simply count. A chunk is
 * ciphertext and a 16-byte tag; its nonce is its index plus a flag set only
 * on the last chunk, and the header bytes are every chunk's additional data
 * (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár). So an
 * edited header, or a chunk altered, moved, dropped or cut off, fails
 * authentication. The last chunk always holds fewer than `chunkBytes`
 * (possibly none), which is how a reader knows it is the last.
 *
 * The key id is the one sealed values carry (src/core/crypto/seal.ts), so an
 * operator can tell which key a backup needs.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { z } from 'zod';
import { keyId } from '../crypto/seal.ts';

export const BACKUP_MAGIC = 'CANDOR-BACKUP';
export const BACKUP_FORMAT = 1;
const CHUNK_BYTES = 64 * 1024;
const TAG_BYTES = 16;
const HEADER_MAX = 4096;
const KDF_INFO = 'candor-backup';

/** A problem with a backup file or its restoration, worded for the operator. */
export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

const headerSchema = z.strictObject({
  createdAt: z.iso.datetime(),
  keyId: z.string().regex(/^[0-9a-f]{8}$/),
  secretId: z
    .string()
    .regex(/^[0-9a-f]{8}$/)
    .nullable(),
  salt: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  // bounded: the reader allocates a chunk before anything has authenticated
  chunkBytes: z
    .number()
    .int()
    .min(4096)
    .max(16 * 1024 * 1024),
  migration: z.strictObject({
    applied: z.number().int().min(0),
    latest: z.string().nullable(),
    latestAt: z.number().nullable(),
  }),
});

export type BackupHeader = z.infer<typeof headerSchema>;

/** Names the secret a backup's blind indexes and signed links were made with, without revealing it. */
export function secretId(secret: string): string {
  return createHash('sha256').update('candor-secret-id\0').update(secret).digest('hex').slice(0, 8);
}

export function newHeader(key: Buffer, secret: string | undefined, createdAt: Date, migration: BackupHeader['migration']): BackupHeader {
  return {
    createdAt: createdAt.toISOString(),
    keyId: keyId(key),
    secretId: secret === undefined ? null : secretId(secret),
    salt: randomBytes(32).toString('base64url'),
    chunkBytes: CHUNK_BYTES,
    migration,
  };
}

function headerBytes(header: BackupHeader): Buffer {
  return Buffer.from(`${BACKUP_MAGIC} ${BACKUP_FORMAT}\n${JSON.stringify(header)}\n`, 'utf8');
}

function fileKey(key: Buffer, header: BackupHeader): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.from(header.salt, 'base64url'), KDF_INFO, 32));
}

function nonce(index: number, last: boolean): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64BE(BigInt(index), 0);
  iv[11] = last ? 1 : 0;
  return iv;
}

async function readFull(handle: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** Writes the header and the sealed chunks of `input` (read from its start to its end) to `output`. Returns the bytes written. */
export async function writeEncrypted(
  input: FileHandle,
  output: FileHandle,
  key: Buffer,
  header: BackupHeader,
  signal?: AbortSignal,
): Promise<number> {
  const aad = headerBytes(header);
  const derived = fileKey(key, header);
  const size = (await input.stat()).size;
  const full = Math.floor(size / header.chunkBytes);
  const buffer = Buffer.alloc(header.chunkBytes);
  let written = (await output.write(aad, 0, aad.length, 0)).bytesWritten;
  for (let index = 0; index <= full; index++) {
    signal?.throwIfAborted();
    const last = index === full;
    const wanted = last ? size - full * header.chunkBytes : header.chunkBytes;
    const got = await readFull(input, buffer.subarray(0, wanted), index * header.chunkBytes);
    if (got !== wanted) throw new BackupError('the database snapshot changed size while it was being encrypted');
    const cipher = createCipheriv('aes-256-gcm', derived, nonce(index, last), { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const sealed = Buffer.concat([cipher.update(buffer.subarray(0, wanted)), cipher.final(), cipher.getAuthTag()]);
    written += (await output.write(sealed, 0, sealed.length, written)).bytesWritten;
  }
  return written;
}

/**
 * Reads and checks the clear-text header. `name` is how the file is named
 * in messages.
 */
export async function readHeader(input: FileHandle, name: string): Promise<{ header: BackupHeader; raw: Buffer }> {
  const start = Buffer.alloc(HEADER_MAX);
  const got = await readFull(input, start, 0);
  const firstEnd = start.subarray(0, got).indexOf(0x0a);
  const first = start.subarray(0, firstEnd < 0 ? Math.min(got, 64) : firstEnd).toString('latin1');
  const magic = `${BACKUP_MAGIC} `;
  if (got === 0) throw new BackupError(`${name} is empty`);
  if (!first.startsWith(magic)) {
    if (got < magic.length && magic.startsWith(first)) throw new BackupError(`${name} is truncated: its header is incomplete`);
    throw new BackupError(`${name} is not a Candor backup (it does not start with "${BACKUP_MAGIC}")`);
  }
  if (firstEnd < 0) throw new BackupError(`${name} is truncated: its header is incomplete`);
  const version = first.slice(BACKUP_MAGIC.length + 1);
  if (version !== String(BACKUP_FORMAT)) {
    throw new BackupError(
      `${name} is a Candor backup in format ${version.slice(0, 20)}, which this version cannot read (it reads format ${BACKUP_FORMAT})`,
    );
  }
  const secondEnd = start.subarray(0, got).indexOf(0x0a, firstEnd + 1);
  if (secondEnd < 0) {
    throw new BackupError(got < HEADER_MAX ? `${name} is truncated: its header is incomplete` : `${name} has a damaged header`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(start.subarray(firstEnd + 1, secondEnd).toString('utf8'));
  } catch {
    throw new BackupError(`${name} has a damaged header (not valid JSON)`);
  }
  const header = headerSchema.safeParse(parsed);
  if (!header.success) throw new BackupError(`${name} has a damaged header (${header.error.issues[0]?.path.join('.') || 'its fields'})`);
  // The bytes as read, not a re-encoding, are what the chunks authenticate.
  return { header: header.data, raw: Buffer.from(start.subarray(0, secondEnd + 1)) };
}

/** The key among `keys` that made the backup, or a message naming what is needed. */
export function backupKey(keys: readonly Buffer[], header: BackupHeader, name: string): Buffer {
  const key = keys.find((k) => keyId(k) === header.keyId);
  if (key) return key;
  const configured = keys.map((k, i) => (i === 0 ? `${keyId(k)} (current)` : keyId(k))).join(', ');
  throw new BackupError(
    `${name} was made with encryption key ${header.keyId}, but the configured keys are ${configured || 'none'}: ` +
      'set CANDOR_ENCRYPTION_KEY (or CANDOR_PREVIOUS_ENCRYPTION_KEYS) to the key in use when it was made',
  );
}

/**
 * Authenticates and decrypts every chunk into `output`, refusing the file
 * at the first chunk that does not hold up. `output` is only trustworthy
 * once this returns.
 */
export async function readEncrypted(
  input: FileHandle,
  output: FileHandle,
  key: Buffer,
  { header, raw: aad }: { header: BackupHeader; raw: Buffer },
  name: string,
  signal?: AbortSignal,
): Promise<number> {
  const derived = fileKey(key, header);
  const buffer = Buffer.alloc(header.chunkBytes + TAG_BYTES);
  let position = aad.length;
  let written = 0;
  for (let index = 0; ; index++) {
    signal?.throwIfAborted();
    const got = await readFull(input, buffer, position);
    if (got < TAG_BYTES) throw new BackupError(`${name} is truncated: it ends before its last chunk`);
    const last = got < buffer.length;
    const decipher = createDecipheriv('aes-256-gcm', derived, nonce(index, last), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(buffer.subarray(got - TAG_BYTES, got));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(buffer.subarray(0, got - TAG_BYTES)), decipher.final()]);
    } catch {
      const what = last ? 'is truncated or was altered' : 'is damaged or was altered';
      throw new BackupError(`${name} ${what}: its content does not authenticate (chunk ${index}, byte ${position}); it cannot be restored`);
    }
    written += (await output.write(plain, 0, plain.length, written)).bytesWritten;
    position += got;
    if (last) break;
  }
  return written;
}
