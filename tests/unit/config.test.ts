import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/core/config/env.ts';
import { resolveSecrets } from '../../src/core/config/secrets.ts';
import { configErrorOf } from '../helpers/config.ts';
import { tempDir } from '../helpers/server.ts';

describe('configuration from the environment', () => {
  it('has working defaults', () => {
    const config = readConfig({}, '/srv/candor');
    expect(config).toMatchObject({ host: '127.0.0.1', port: 4321, dataDir: '/srv/candor/data' });
    expect(config.publicUrl.href).toBe('http://127.0.0.1:4321/');
    expect(config.providers.reconcileSettleMs).toBeUndefined();
    expect(readConfig({ CANDOR_RECONCILE_SETTLE_SECONDS: '5' }, '/srv/candor').providers.reconcileSettleMs).toBe(5000);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT', /whole number/],
    [{ PORT: '70000' }, 'PORT', /1 to 65535/],
    [{ CANDOR_PUBLIC_URL: 'trust.example.com' }, 'CANDOR_PUBLIC_URL', /not a URL/],
    [{ CANDOR_PUBLIC_URL: 'ftp://trust.example.com' }, 'CANDOR_PUBLIC_URL', /https/],
    [{ CANDOR_SECRET: 'short' }, 'CANDOR_SECRET', /at least 32/],
    [{ CANDOR_PREVIOUS_SECRETS: `${'p'.repeat(32)},short` }, 'CANDOR_PREVIOUS_SECRETS[1]', /at least 32/],
    [{ CANDOR_ENCRYPTION_KEY: 'abc123' }, 'CANDOR_ENCRYPTION_KEY', /32-byte key/],
    [{ HOST: 'bad host!' }, 'HOST', /not a host/],
    [{ CANDOR_RECONCILE_SETTLE_SECONDS: 'two minutes' }, 'CANDOR_RECONCILE_SETTLE_SECONDS', /whole number of seconds/],
    [{ CANDOR_RECONCILE_SETTLE_SECONDS: '7200' }, 'CANDOR_RECONCILE_SETTLE_SECONDS', /0 to 3600/],
  ])('names the variable in %o', (env, variable, message) => {
    const err = configErrorOf(env);
    expect(err.variable).toBe(variable);
    expect(err.message.startsWith(variable)).toBe(true);
    expect(err.message).toMatch(message);
  });

  it('reads older secrets for verifying the audit chain, comma-separated', () => {
    const [a, b] = ['a'.repeat(32), 'b'.repeat(40)];
    expect(readConfig({ CANDOR_PREVIOUS_SECRETS: ` ${a} ,${b},` }, '/').previousSecrets).toEqual([a, b]);
    expect(readConfig({}, '/').previousSecrets).toEqual([]);
  });

  it('accepts an encryption key in hex or base64', () => {
    const hex = 'a'.repeat(64);
    expect(readConfig({ CANDOR_ENCRYPTION_KEY: hex }, '/').encryptionKey?.toString('hex')).toBe(hex);
    const b64 = Buffer.alloc(32, 7).toString('base64');
    expect(readConfig({ CANDOR_ENCRYPTION_KEY: b64 }, '/').encryptionKey).toEqual(Buffer.alloc(32, 7));
  });
});

describe('generated secrets', () => {
  it('are created once, private to the owner, and reused', () => {
    const dataDir = tempDir();
    const config = readConfig({ CANDOR_DATA_DIR: dataDir }, '/');
    const first = resolveSecrets(config);
    expect(first.secret.length).toBeGreaterThanOrEqual(32);
    expect(first.encryptionKey.length).toBe(32);
    expect(statSync(join(dataDir, 'secrets.json')).mode & 0o777).toBe(0o600);
    expect(resolveSecrets(config)).toEqual(first);
  });

  it('prefer the environment', () => {
    const dataDir = tempDir();
    const secret = 's'.repeat(40);
    const config = readConfig({ CANDOR_DATA_DIR: dataDir, CANDOR_SECRET: secret }, '/');
    expect(resolveSecrets(config).secret).toBe(secret);
  });
});

describe('secrets on PostgreSQL', () => {
  const PG = 'postgres://candor@db.internal:5432/candor';
  const secret = 's'.repeat(40);
  const key = 'a'.repeat(64);

  it('come from the environment and nothing is generated', () => {
    const dataDir = tempDir();
    const config = readConfig(
      { CANDOR_DATA_DIR: dataDir, CANDOR_DATABASE_URL: PG, CANDOR_SECRET: secret, CANDOR_ENCRYPTION_KEY: key },
      '/',
    );
    expect(resolveSecrets(config)).toMatchObject({ secret, encryptionKey: Buffer.from(key, 'hex') });
    expect(existsSync(join(dataDir, 'secrets.json'))).toBe(false);
  });

  it('are required, naming what is missing, instead of being generated', () => {
    const dataDir = tempDir();
    const none = readConfig({ CANDOR_DATA_DIR: dataDir, CANDOR_DATABASE_URL: PG }, '/');
    expect(() => resolveSecrets(none)).toThrow(/^CANDOR_SECRET must be set .*CANDOR_SECRET and CANDOR_ENCRYPTION_KEY missing/);
    const noKey = readConfig({ CANDOR_DATA_DIR: dataDir, CANDOR_DATABASE_URL: PG, CANDOR_SECRET: secret }, '/');
    expect(() => resolveSecrets(noKey)).toThrow(/^CANDOR_ENCRYPTION_KEY must be set .*\(CANDOR_ENCRYPTION_KEY missing\)/);
    expect(existsSync(join(dataDir, 'secrets.json'))).toBe(false);
  });

  it('refuse a generated secrets.json left in the data dir, even with the environment set', () => {
    const dataDir = tempDir();
    resolveSecrets(readConfig({ CANDOR_DATA_DIR: dataDir }, '/'));
    const config = readConfig(
      { CANDOR_DATA_DIR: dataDir, CANDOR_DATABASE_URL: PG, CANDOR_SECRET: secret, CANDOR_ENCRYPTION_KEY: key },
      '/',
    );
    expect(() => resolveSecrets(config)).toThrow(/secrets\.json holds generated ones/);
  });
});
