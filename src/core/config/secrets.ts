/**
 * The two secrets Candor needs. An operator may set them in the environment;
 * otherwise they are generated on first start and kept in the data dir
 * (mode 0600), so a restart keeps sessions and encrypted data readable.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, ConfigError, parseEncryptionKey, parseSecret } from './env.ts';

export interface Secrets {
  secret: string;
  encryptionKey: Buffer;
  /** keys data may still be sealed with, until `candor keys rotate` has re-sealed it */
  previousKeys: Buffer[];
}

export const SECRETS_FILE = 'secrets.json';

export function resolveSecrets(config: Config): Secrets {
  if (config.database.engine === 'postgres') return secretsForCluster(config);
  if (config.secret && config.encryptionKey)
    return { secret: config.secret, encryptionKey: config.encryptionKey, previousKeys: config.previousKeys };
  const file = join(config.dataDir, SECRETS_FILE);
  const stored = existsSync(file) ? readStored(file) : generate(file);
  return {
    secret: config.secret ?? stored.secret,
    encryptionKey: config.encryptionKey ?? stored.encryptionKey,
    previousKeys: [...config.previousKeys, ...(config.encryptionKey ? [] : stored.previousKeys)],
  };
}

/**
 * On PostgreSQL every node must seal, sign and verify with the same secrets, so they come from the
 * environment only: a secrets.json generated on one node's disk would differ on the next node (its
 * sessions, tokens and audit MACs refused there) and would be lost with that node. A secrets.json
 * found in the data dir is refused rather than ignored: it means data may have been sealed with it.
 */
function secretsForCluster(config: Config): Secrets {
  const file = join(config.dataDir, SECRETS_FILE);
  if (existsSync(file)) {
    throw new ConfigError(
      'CANDOR_DATABASE_URL',
      `names PostgreSQL, where secrets come from the environment only, but ${file} holds generated ones: set CANDOR_SECRET and CANDOR_ENCRYPTION_KEY to its values on every node and remove the file`,
    );
  }
  const missing = [config.secret ? null : 'CANDOR_SECRET', config.encryptionKey ? null : 'CANDOR_ENCRYPTION_KEY'].filter(Boolean);
  if (!config.secret || !config.encryptionKey) {
    throw new ConfigError(
      missing[0] ?? 'CANDOR_SECRET',
      `must be set when CANDOR_DATABASE_URL names PostgreSQL (${missing.join(' and ')} missing): every node shares these secrets, none is generated`,
    );
  }
  return { secret: config.secret, encryptionKey: config.encryptionKey, previousKeys: config.previousKeys };
}

/**
 * The keys resolveSecrets would use, without generating any: restoring a
 * backup with a freshly generated key could only fail. Null when neither
 * the environment nor the data dir holds an encryption key.
 */
export function findSecrets(config: Config): (Omit<Secrets, 'secret'> & { secret: string | undefined }) | null {
  if (config.secret && config.encryptionKey)
    return { secret: config.secret, encryptionKey: config.encryptionKey, previousKeys: config.previousKeys };
  const file = join(config.dataDir, SECRETS_FILE);
  const stored = existsSync(file) ? readStored(file) : null;
  const encryptionKey = config.encryptionKey ?? stored?.encryptionKey;
  if (!encryptionKey) return null;
  return {
    secret: config.secret ?? stored?.secret,
    encryptionKey,
    previousKeys: [...config.previousKeys, ...(config.encryptionKey ? [] : (stored?.previousKeys ?? []))],
  };
}

/** Makes `next` the key new data is sealed with, keeping the old one readable until data is re-sealed. */
export function storeRotatedKey(dataDir: string, current: Secrets, next: Buffer): void {
  writeStored(join(dataDir, SECRETS_FILE), {
    ...current,
    encryptionKey: next,
    previousKeys: [current.encryptionKey, ...current.previousKeys],
  });
}

/** After re-sealing: the old keys are no longer needed. */
export function forgetPreviousKeys(dataDir: string, current: Secrets): void {
  writeStored(join(dataDir, SECRETS_FILE), { ...current, previousKeys: [] });
}

function writeStored(file: string, secrets: Secrets): void {
  const json = JSON.stringify(
    {
      secret: secrets.secret,
      encryptionKey: secrets.encryptionKey.toString('hex'),
      previousKeys: secrets.previousKeys.map((k) => k.toString('hex')),
    },
    null,
    2,
  );
  // Written beside and renamed over, so a crash never leaves half a key file.
  const temp = `${file}.tmp`;
  writeFileSync(temp, `${json}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

function readStored(file: string): Secrets {
  let parsed: { secret?: unknown; encryptionKey?: unknown; previousKeys?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch {
    throw new ConfigError(
      'CANDOR_DATA_DIR',
      `holds an unreadable ${SECRETS_FILE}; restore it from backup or set CANDOR_SECRET and CANDOR_ENCRYPTION_KEY`,
    );
  }
  const where = `${SECRETS_FILE} in CANDOR_DATA_DIR:`;
  const previous = Array.isArray(parsed.previousKeys) ? parsed.previousKeys : [];
  return {
    secret: parseSecret(String(parsed.secret ?? ''), `${where} secret`),
    encryptionKey: parseEncryptionKey(String(parsed.encryptionKey ?? ''), `${where} encryptionKey`),
    previousKeys: previous.map((k, i) => parseEncryptionKey(String(k), `${where} previousKeys[${i}]`)),
  };
}

function generate(file: string): Secrets {
  const secrets = { secret: randomBytes(32).toString('base64url'), encryptionKey: randomBytes(32), previousKeys: [] };
  const json = JSON.stringify({ secret: secrets.secret, encryptionKey: secrets.encryptionKey.toString('hex') }, null, 2);
  writeFileSync(file, `${json}\n`, { mode: 0o600, flag: 'wx' });
  return secrets;
}
