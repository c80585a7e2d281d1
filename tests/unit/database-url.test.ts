/**
 * CANDOR_DATABASE_URL: unset means SQLite, postgres:// means PostgreSQL, and
 * anything wrong (or a server that does not answer) is one line naming the
 * setting, never showing the password.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, parseDatabaseUrl } from '../../db/engine/postgres-setup.ts';
import { parseBackupDatabaseUrl } from '../../db/engine/url.ts';
import { ConfigError } from '../../src/core/config/env.ts';

const PASSWORD = 'Sup3r-s3cret-pw';

function refusal(value: string): ConfigError {
  try {
    parseDatabaseUrl(value);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`accepted: ${value}`);
}

describe('parseDatabaseUrl', () => {
  it('means SQLite when unset, empty or blank', () => {
    expect(parseDatabaseUrl(undefined)).toEqual({ engine: 'sqlite' });
    expect(parseDatabaseUrl('')).toEqual({ engine: 'sqlite' });
    expect(parseDatabaseUrl('  ')).toEqual({ engine: 'sqlite' });
  });

  it('means PostgreSQL for postgres:// and postgresql:// URLs', () => {
    expect(parseDatabaseUrl('postgres://candor:pw@db.internal:5432/candor')).toEqual({
      engine: 'postgres',
      url: 'postgres://candor:pw@db.internal:5432/candor',
    });
    expect(parseDatabaseUrl(' postgresql://candor@127.0.0.1/candor?sslmode=require ')).toEqual({
      engine: 'postgres',
      url: 'postgresql://candor@127.0.0.1/candor?sslmode=require',
    });
    expect(parseDatabaseUrl('POSTGRES://candor@localhost/candor').engine).toBe('postgres');
    expect(parseDatabaseUrl('postgres:///candor?host=/var/run/postgresql').engine).toBe('postgres');
  });

  it.each([
    [
      'another database',
      `mysql://candor:${PASSWORD}@db/candor`,
      /must start with postgres:\/\/ or postgresql:\/\/ \(it starts with mysql:\)/,
    ],
    ['a file path', '/var/lib/candor/candor.db', /is not a URL: expected postgres:\/\/user:password@host:5432\/database/],
    ['a bare host', 'db.internal:5432', /is not a URL/],
    ['credentials without a scheme', `candor:${PASSWORD}@db/candor`, /is not a URL/],
    ['a port out of range', `postgres://candor:${PASSWORD}@db:99999/candor`, /is not a valid URL/],
    ['a bad %-escape', `postgres://candor:${PASSWORD}%zz@db/candor`, /badly %-encoded/],
    ['a path that is not a database name', `postgres://candor:${PASSWORD}@db/candor/extra`, /more than one path segment/],
  ])('refuses %s with one line naming the setting and not the password', (_what, value, message) => {
    const err = refusal(value);
    expect(err.message).toMatch(/^CANDOR_DATABASE_URL /);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain('\n');
    expect(err.variable).toBe('CANDOR_DATABASE_URL');
  });
});

describe('parseBackupDatabaseUrl (CANDOR_BACKUP_DATABASE_URL)', () => {
  it('is none when unset, empty or blank, and the URL when it is one', () => {
    expect(parseBackupDatabaseUrl(undefined)).toBeUndefined();
    expect(parseBackupDatabaseUrl('  ')).toBeUndefined();
    expect(parseBackupDatabaseUrl(' postgres://candor_owner:pw@db.internal:5432/candor ')).toBe(
      'postgres://candor_owner:pw@db.internal:5432/candor',
    );
  });

  it.each([
    [
      'another database',
      `mysql://root:${PASSWORD}@db/candor`,
      /^CANDOR_BACKUP_DATABASE_URL must start with postgres:\/\/ .*, or be unset$/,
    ],
    ['credentials without a scheme', `owner:${PASSWORD}@db/candor`, /^CANDOR_BACKUP_DATABASE_URL is not a URL: .*, or unset$/],
    ['a port out of range', `postgres://owner:${PASSWORD}@db:99999/candor`, /^CANDOR_BACKUP_DATABASE_URL is not a valid URL/],
  ])('refuses %s with one line naming it, not CANDOR_DATABASE_URL, and not the password', (_what, value, message) => {
    let refused: unknown;
    try {
      parseBackupDatabaseUrl(value);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    const err = refused as ConfigError;
    expect(err.variable).toBe('CANDOR_BACKUP_DATABASE_URL');
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain('SQLite');
  });
});

describe('connectPostgres', () => {
  // A port that accepts connections and says nothing: a server that hangs.
  let silent: Server;
  let silentPort = 0;
  const held = new Set<Socket>();
  beforeAll(async () => {
    silent = createServer((socket) => {
      held.add(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    silentPort = typeof address === 'object' && address ? address.port : 0;
  });
  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('names the setting in one line when nothing listens, without the password', async () => {
    const err = await connectPostgres(`postgres://candor:${PASSWORD}@127.0.0.1:1/candor`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/^CANDOR_DATABASE_URL cannot reach PostgreSQL at candor@127\.0\.0\.1:1\/candor: .*ECONNREFUSED/);
    expect(message).not.toContain(PASSWORD);
    expect(message).not.toContain('\n');
  });

  it('gives up after the timeout when the server does not answer', async () => {
    const started = Date.now();
    const err = await connectPostgres(`postgres://candor:${PASSWORD}@127.0.0.1:${silentPort.toString()}/candor`, { timeoutMs: 300 }).catch(
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^CANDOR_DATABASE_URL cannot reach PostgreSQL at .*timeout/i);
    expect((err as Error).message).not.toContain(PASSWORD);
  });
});
