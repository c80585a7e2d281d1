/**
 * The two secrets Candor needs. An operator may set them in the environment;
 * otherwise they are generated on first start and kept in the data dir
 * (mode 0600), so a restart keeps sessions and encrypted data readable.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, ConfigError, parseEncryptionKey, parseSecret } from './env.ts';

export interface Secrets {
  secret: string;
  encryptionKey: Buffer;
}

export const SECRETS_FILE = 'secrets.json';

export function resolveSecrets(config: Config): Secrets {
  if (config.secret && config.encryptionKey) return { secret: config.secret, encryptionKey: config.encryptionKey };
  const file = join(config.dataDir, SECRETS_FILE);
  const stored = existsSync(file) ? readStored(file) : generate(file);
  return {
    secret: config.secret ?? stored.secret,
    encryptionKey: config.encryptionKey ?? stored.encryptionKey,
  };
}

function readStored(file: string): Secrets {
  let parsed: { secret?: unknown; encryptionKey?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch {
    throw new ConfigError(
      'CANDOR_DATA_DIR',
      `holds an unreadable ${SECRETS_FILE}; restore it from backup or set CANDOR_SECRET and CANDOR_ENCRYPTION_KEY`,
    );
  }
  const where = `${SECRETS_FILE} in CANDOR_DATA_DIR:`;
  return {
    secret: parseSecret(String(parsed.secret ?? ''), `${where} secret`),
    encryptionKey: parseEncryptionKey(String(parsed.encryptionKey ?? ''), `${where} encryptionKey`),
  };
}

function generate(file: string): Secrets {
  const secrets = { secret: randomBytes(32).toString('base64url'), encryptionKey: randomBytes(32) };
  const json = JSON.stringify({ secret: secrets.secret, encryptionKey: secrets.encryptionKey.toString('hex') }, null, 2);
  writeFileSync(file, `${json}\n`, { mode: 0o600, flag: 'wx' });
  return secrets;
}
