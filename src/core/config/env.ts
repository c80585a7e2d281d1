/**
 * Reads the process environment into a typed configuration. Every problem
 * names the variable, so an operator can fix it from one line.
 */
import { isAbsolute, resolve } from 'node:path';
import { type DatabaseSetting, parseBackupDatabaseUrl, parseDatabaseUrl } from '../../../db/engine/url.ts';
import { ConfigError } from './errors.ts';
import { readSsoConfig, type SsoConfig } from './sso.ts';

export interface EmailProvider {
  apiKey: string;
  baseUrl: string | undefined;
  from: string;
  webhookSecret: string | undefined;
}

export interface SmsProvider {
  accountSid: string;
  authToken: string;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  apiBaseUrl: string | undefined;
}

export interface SlackProvider {
  botToken: string | undefined;
  clientId: string | undefined;
  clientSecret: string | undefined;
  apiUrl: string | undefined;
  staffChannel: string | undefined;
}

export interface Providers {
  email: EmailProvider | null;
  sms: SmsProvider | null;
  slack: SlackProvider | null;
  /** hosts webhooks may reach although private or plain http (tests, private deployments) */
  webhookAllowHosts: string[];
  /** operator overrides of the per-channel rate limits (CANDOR_LIMIT_EMAIL etc.) */
  limits: Partial<Record<'email' | 'sms' | 'slack' | 'webhook' | 'teams' | 'discord', ChannelLimits>>;
  /** how long a dispatcher holds a claimed delivery before another may take it over */
  leaseMs: number;
  /**
   * CANDOR_RECONCILE_SETTLE_SECONDS: how long after a send of unknown outcome began a provider's message
   * list (Twilio's, Slack's history) may still lack the message; only after it does a missing message
   * count as never sent. Unset: each channel's own (2 minutes).
   */
  reconcileSettleMs: number | undefined;
}

export interface ChannelLimits {
  ratePerSecond: number;
  burst: number;
  concurrency: number;
}

export interface Config {
  providers: Providers;
  host: string;
  port: number;
  publicUrl: URL;
  dataDir: string;
  /**
   * CANDOR_CONTENT_DIR: where the running server reads content/ (change detection, components,
   * templates); null for the checkout's own. The prerendered pages always come from the build.
   */
  contentDir: string | null;
  /** from the environment; when absent the data dir's generated ones are used */
  secret: string | undefined;
  encryptionKey: Buffer | undefined;
  /** CANDOR_PREVIOUS_ENCRYPTION_KEYS: older keys still able to open data sealed before a rotation */
  previousKeys: Buffer[];
  /** CANDOR_PREVIOUS_SECRETS: older values of CANDOR_SECRET, used only to verify audit entries sealed with them */
  previousSecrets: string[];
  /** CANDOR_DATABASE_URL: SQLite in the data dir (unset) or a PostgreSQL server */
  database: DatabaseSetting;
  /**
   * CANDOR_BACKUP_DATABASE_URL: on PostgreSQL, the role the server's daily backup and restore check connect
   * as (BYPASSRLS and CREATEDB, db/engine/url.ts); unset, the server takes no scheduled backup there.
   * Not used on SQLite.
   */
  backupDatabaseUrl: string | undefined;
  /** CANDOR_SSO_*: staff single sign-on through an OpenID provider (sso.ts), or null */
  sso: SsoConfig | null;
}

export { ConfigError };

type Env = Readonly<Record<string, string | undefined>>;

export function readConfig(env: Env, cwd: string): Config {
  const host = (env.HOST ?? '127.0.0.1').trim();
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw new ConfigError('HOST', `is not a host name or address: "${host}"`);
  const port = parsePort(env.PORT);
  const publicUrl = parsePublicUrl(env.CANDOR_PUBLIC_URL, host, port);
  const dataDirRaw = env.CANDOR_DATA_DIR?.trim() || './data';
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(cwd, dataDirRaw);
  const contentDirRaw = env.CANDOR_CONTENT_DIR?.trim();
  return {
    providers: readProviders(env),
    host,
    port,
    publicUrl,
    dataDir,
    contentDir: contentDirRaw ? resolve(cwd, contentDirRaw) : null,
    secret: env.CANDOR_SECRET === undefined ? undefined : parseSecret(env.CANDOR_SECRET),
    encryptionKey: env.CANDOR_ENCRYPTION_KEY === undefined ? undefined : parseEncryptionKey(env.CANDOR_ENCRYPTION_KEY),
    previousKeys: (env.CANDOR_PREVIOUS_ENCRYPTION_KEYS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean)
      .map((k, i) => parseEncryptionKey(k, `CANDOR_PREVIOUS_ENCRYPTION_KEYS[${i}]`)),
    previousSecrets: (env.CANDOR_PREVIOUS_SECRETS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean)
      .map((k, i) => parseSecret(k, `CANDOR_PREVIOUS_SECRETS[${i}]`)),
    database: parseDatabaseUrl(env.CANDOR_DATABASE_URL),
    backupDatabaseUrl: parseBackupDatabaseUrl(env.CANDOR_BACKUP_DATABASE_URL),
    sso: readSsoConfig(env, publicUrl),
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
  // A trailing slash makes `new URL('docs/x', publicUrl)` stay under a path prefix.
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`;
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

const set = (env: Env, name: string): string | undefined => {
  const value = env[name]?.trim();
  return value ? value : undefined;
};

function matching(env: Env, name: string, pattern: RegExp, what: string): string | undefined {
  const value = set(env, name);
  if (value !== undefined && !pattern.test(value)) throw new ConfigError(name, `must be ${what}`);
  return value;
}

function url(env: Env, name: string): string | undefined {
  const value = set(env, name);
  if (value === undefined) return undefined;
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('protocol');
  } catch {
    throw new ConfigError(name, `is not an http(s) URL: "${value}"`);
  }
  return value;
}

const EMAIL_FROM = /^(?:[^<>@\r\n]+<[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+)$/;

/** Each provider is live when its keys are set, else its channel records messages in the database. */
function readProviders(env: Env): Providers {
  const apiKey = matching(env, 'RESEND_API_KEY', /^\S+$/, 'a Resend API key without spaces');
  const from = matching(env, 'CANDOR_EMAIL_FROM', EMAIL_FROM, 'an address such as "Lumenwork Status <status@example.com>"');
  const email = apiKey
    ? {
        apiKey,
        from: from ?? missing('CANDOR_EMAIL_FROM', 'RESEND_API_KEY'),
        baseUrl: url(env, 'RESEND_BASE_URL'),
        webhookSecret: matching(env, 'RESEND_WEBHOOK_SECRET', /^whsec_[A-Za-z0-9+/=]+$/, 'the signing secret Resend shows (whsec_…)'),
      }
    : null;
  const accountSid = matching(env, 'TWILIO_ACCOUNT_SID', /^AC[0-9a-fA-F]{32}$/, 'a Twilio account SID (AC followed by 32 hex digits)');
  const authToken = set(env, 'TWILIO_AUTH_TOKEN');
  const smsFrom = matching(env, 'TWILIO_FROM', /^\+[1-9]\d{6,14}$/, 'a phone number in E.164 form, e.g. +14155550100');
  const messagingServiceSid = matching(env, 'TWILIO_MESSAGING_SERVICE_SID', /^MG[0-9a-fA-F]{32}$/, 'a Twilio messaging service SID (MG…)');
  const sms =
    accountSid || authToken
      ? {
          accountSid: accountSid ?? missing('TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'),
          authToken: authToken ?? missing('TWILIO_AUTH_TOKEN', 'TWILIO_ACCOUNT_SID'),
          from: smsFrom,
          messagingServiceSid,
          apiBaseUrl: url(env, 'TWILIO_API_BASE_URL'),
        }
      : null;
  if (sms && !sms.from && !sms.messagingServiceSid)
    throw new ConfigError('TWILIO_FROM', 'or TWILIO_MESSAGING_SERVICE_SID is required when Twilio keys are set');
  const botToken = matching(env, 'SLACK_BOT_TOKEN', /^xox[bp]-\S+$/, 'a Slack bot token (xoxb-…)');
  const clientId = set(env, 'SLACK_CLIENT_ID');
  const clientSecret = set(env, 'SLACK_CLIENT_SECRET');
  if (Boolean(clientId) !== Boolean(clientSecret)) {
    throw new ConfigError(clientId ? 'SLACK_CLIENT_SECRET' : 'SLACK_CLIENT_ID', 'is required with the other Slack OAuth setting');
  }
  const slackApiUrl = url(env, 'SLACK_API_URL');
  const staffChannel = matching(env, 'SLACK_STAFF_CHANNEL', /^[#A-Za-z0-9_-]{1,80}$/, 'a Slack channel id or name');
  const slack = botToken || clientId || slackApiUrl ? { botToken, clientId, clientSecret, apiUrl: slackApiUrl, staffChannel } : null;
  const allow = set(env, 'CANDOR_WEBHOOK_ALLOW_HOSTS');
  const webhookAllowHosts = allow
    ? allow
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean)
    : [];
  for (const host of webhookAllowHosts) {
    if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(host)) {
      throw new ConfigError('CANDOR_WEBHOOK_ALLOW_HOSTS', `must be a comma-separated list of host or host:port, got "${host}"`);
    }
  }
  const limits: Providers['limits'] = {};
  for (const channel of ['email', 'sms', 'slack', 'webhook', 'teams', 'discord'] as const) {
    const parsed = parseLimits(env, `CANDOR_LIMIT_${channel.toUpperCase()}`);
    if (parsed) limits[channel] = parsed;
  }
  const lease = matching(env, 'CANDOR_LEASE_SECONDS', /^\d+$/, 'a whole number of seconds');
  const leaseMs = lease === undefined ? 300_000 : Number(lease) * 1000;
  if (leaseMs < 1000 || leaseMs > 3_600_000) throw new ConfigError('CANDOR_LEASE_SECONDS', 'must be from 1 to 3600');
  const settle = matching(env, 'CANDOR_RECONCILE_SETTLE_SECONDS', /^\d+$/, 'a whole number of seconds');
  const reconcileSettleMs = settle === undefined ? undefined : Number(settle) * 1000;
  if (reconcileSettleMs !== undefined && reconcileSettleMs > 3_600_000)
    throw new ConfigError('CANDOR_RECONCILE_SETTLE_SECONDS', 'must be from 0 to 3600');
  return { email, sms, slack, webhookAllowHosts, limits, leaseMs, reconcileSettleMs };
}

/** "2/s", "2/s,burst=5,concurrency=2" or "unlimited". */
function parseLimits(env: Env, name: string): ChannelLimits | undefined {
  const value = set(env, name);
  if (value === undefined) return undefined;
  if (value === 'unlimited') return { ratePerSecond: 1e9, burst: 1e9, concurrency: 4 };
  const match = /^(\d+(?:\.\d+)?)\/s(?:,burst=(\d+))?(?:,concurrency=(\d+))?$/.exec(value);
  if (!match) throw new ConfigError(name, `must look like "2/s", "2/s,burst=4,concurrency=2" or "unlimited", got "${value}"`);
  const ratePerSecond = Number(match[1]);
  // Burst 1 unless asked: a full bucket of N refilled at N/s lets N+1 requests into one second.
  const burst = match[2] ? Number(match[2]) : 1;
  const concurrency = match[3] ? Number(match[3]) : Math.max(1, Math.min(16, Math.ceil(ratePerSecond)));
  if (ratePerSecond <= 0 || burst < 1 || concurrency < 1)
    throw new ConfigError(name, 'needs a rate above 0 and burst and concurrency of at least 1');
  return { ratePerSecond, burst, concurrency };
}

function missing(name: string, because: string): never {
  throw new ConfigError(name, `is required when ${because} is set`);
}
