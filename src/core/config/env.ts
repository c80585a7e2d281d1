/**
 * Reads the process environment into a typed configuration. Every problem
 * names the variable, so an operator can fix it from one line.
 */
import { isAbsolute, resolve } from 'node:path';

export interface Config {
  host: string;
  port: number;
  publicUrl: URL;
  dataDir: string;
  /** from the environment; when absent the data dir's generated ones are used */
  secret: string | undefined;
  encryptionKey: Buffer | undefined;
}

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable} ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export function readConfig(env: Env, cwd: string): Config {
  const host = (env.HOST ?? '127.0.0.1').trim();
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw new ConfigError('HOST', `is not a host name or address: "${host}"`);
  const port = parsePort(env.PORT);
  const publicUrl = parsePublicUrl(env.CANDOR_PUBLIC_URL, host, port);
  const dataDirRaw = env.CANDOR_DATA_DIR?.trim() || './data';
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(cwd, dataDirRaw);
  return {
    host,
    port,
    publicUrl,
    dataDir,
    secret: env.CANDOR_SECRET === undefined ? undefined : parseSecret(env.CANDOR_SECRET),
    encryptionKey: env.CANDOR_ENCRYPTION_KEY === undefined ? undefined : parseEncryptionKey(env.CANDOR_ENCRYPTION_KEY),
  };
}

function parsePort(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 4321;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError('PORT', `must be a whole number from 1 to 65535, got "${raw}"`);
  const port = Number(raw);
  if (port < 1 || port > 65535) throw new ConfigError('PORT', `must be a whole number from 1 to 65535, got "${raw}"`);
  return port;
}

function parsePublicUrl(raw: string | undefined, host: string, port: number): URL {
  if (raw === undefined || raw.trim() === '') {
    const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
    return new URL(`http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`);
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError('CANDOR_PUBLIC_URL', `is not a URL: "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('CANDOR_PUBLIC_URL', 'must start with https:// (or http:// for local use)');
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new ConfigError('CANDOR_PUBLIC_URL', 'must be a bare origin and path, without query, fragment or credentials');
  }
  return url;
}

export function parseSecret(raw: string, variable = 'CANDOR_SECRET'): string {
  if (raw.trim().length < 32) throw new ConfigError(variable, 'must be at least 32 characters of random text');
  return raw.trim();
}

export function parseEncryptionKey(raw: string, variable = 'CANDOR_ENCRYPTION_KEY'): Buffer {
  const text = raw.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
  if (key?.length !== 32) {
    throw new ConfigError(variable, 'must be a 32-byte key written as 64 hex characters or 44 base64 characters');
  }
  return key;
}
