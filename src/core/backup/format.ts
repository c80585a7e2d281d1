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
 *
 * The header's `engine` says what the chunks hold: absent, a SQLite database
 * file (every backup before PostgreSQL, and SQLite backups still, so an older
 * Candor rolled back to can restore them); `postgres`, a PostgreSQL backup
 * (src/core/backup/postgres.ts). Each restore refuses the other's.
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
  /** absent: SQLite */
  engine: z.literal('postgres').optional(),
  migration: z.strictObject({
    applied: z.number().int().min(0),
    latest: z.string().nullable(),
    latestAt: z.number().nullable(),
  }),
});

export type BackupHeader = z.infer<typeof headerSchema>;

export type BackupEngine = 'sqlite' | 'postgres';

/** The engine a backup was taken from (a header without `engine` is SQLite's). */
export function backupEngine(header: BackupHeader): BackupEngine {
  return header.engine ?? 'sqlite';
}

/** Refuses, in one line, a backup taken from the other engine. */
export function assertEngine(header: BackupHeader, engine: BackupEngine, name: string): void {
  const made = backupEngine(header);
  if (made === engine) return;
  throw new BackupError(
    made === 'postgres'
      ? `${name} is a PostgreSQL backup, but this installation runs on SQLite (CANDOR_DATABASE_URL is unset): ` +
          'restore it with CANDOR_DATABASE_URL naming the PostgreSQL database'
      : `${name} is a SQLite backup, but CANDOR_DATABASE_URL names a PostgreSQL server: ` +
          'restore it with CANDOR_DATABASE_URL unset (SQLite in the data dir), then move it with `candor db copy`',
  );
}

/** Names the secret a backup's blind indexes and signed links were made with, without revealing it. */
export function secretId(secret: string): string {
  return createHash('sha256').update('candor-secret-id\0').update(secret).digest('hex').slice(0, 8);
}

export function newHeader(
  key: Buffer,
  secret: string | undefined,
  createdAt: Date,
  migration: BackupHeader['migration'],
  engine: BackupEngine = 'sqlite',
): BackupHeader {
  return {
    createdAt: createdAt.toISOString(),
    keyId: keyId(key),
    secretId: secret === undefined ? null : secretId(secret),
    salt: randomBytes(32).toString('base64url'),
    chunkBytes: CHUNK_BYTES,
    // Only PostgreSQL's is named: a SQLite header stays as older versions wrote (and read) it.
    ...(engine === 'postgres' ? { engine } : {}),
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

function seal(derived: Buffer, aad: Buffer, index: number, last: boolean, plain: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', derived, nonce(index, last), { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
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
    const sealed = seal(derived, aad, index, last, buffer.subarray(0, wanted));
    written += (await output.write(sealed, 0, sealed.length, written)).bytesWritten;
  }
  return written;
}

/**
 * Writes the header and the sealed chunks of a stream (a dump program's
 * output) to `output`; the same file as writeEncrypted's. The stream's
 * length is unknown until it ends, so a full chunk is held back until more
 * arrives: the last chunk is whatever remains at the end, empty when the
 * stream ends on a chunk boundary. Returns the bytes written.
 */
export async function writeEncryptedStream(
  input: AsyncIterable<Buffer>,
  output: FileHandle,
  key: Buffer,
  header: BackupHeader,
  signal?: AbortSignal,
): Promise<number> {
  const aad = headerBytes(header);
  const derived = fileKey(key, header);
  const size = header.chunkBytes;
  let written = (await output.write(aad, 0, aad.length, 0)).bytesWritten;
  let index = 0;
  let pending: Buffer = Buffer.alloc(0);
  for await (const piece of input) {
    signal?.throwIfAborted();
    pending = pending.length ? Buffer.concat([pending, piece]) : piece;
    // Strictly more than a chunk: a chunk is only known not to be the last once a byte follows it.
    while (pending.length > size) {
      const sealed = seal(derived, aad, index++, false, pending.subarray(0, size));
      written += (await output.write(sealed, 0, sealed.length, written)).bytesWritten;
      pending = pending.subarray(size);
    }
  }
  signal?.throwIfAborted();
  if (pending.length === size) {
    const sealed = seal(derived, aad, index++, false, pending);
    written += (await output.write(sealed, 0, sealed.length, written)).bytesWritten;
    pending = Buffer.alloc(0);
  }
  const sealed = seal(derived, aad, index, true, pending);
  written += (await output.write(sealed, 0, sealed.length, written)).bytesWritten;
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
  read: { header: BackupHeader; raw: Buffer },
  name: string,
  signal?: AbortSignal,
): Promise<number> {
  let written = 0;
  for await (const plain of decryptChunks(input, key, read, name, signal)) {
    written += (await output.write(plain, 0, plain.length, written)).bytesWritten;
  }
  return written;
}

/**
 * The plaintext of each chunk in order, each yielded only once it has
 * authenticated; throws at the first that does not. Only when the
 * generator has finished is the whole file known to be intact (a file cut
 * at a chunk boundary fails at its end), so a consumer must not act on
 * what it received until then.
 */
export async function* decryptChunks(
  input: FileHandle,
  key: Buffer,
  { header, raw: aad }: { header: BackupHeader; raw: Buffer },
  name: string,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const derived = fileKey(key, header);
  const buffer = Buffer.alloc(header.chunkBytes + TAG_BYTES);
  let position = aad.length;
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
    yield plain;
    position += got;
    if (last) break;
  }
}
