/**
 * CANDOR_DATABASE_URL, read without loading a database driver: which engine
 * this deployment uses (unset: SQLite in the data dir; postgres://…:
 * PostgreSQL). A bad value is one line naming the setting, never showing
 * the URL's password.
 */
import { ConfigError } from '../../src/core/config/errors.ts';

export const DATABASE_URL = 'CANDOR_DATABASE_URL';
/**
 * CANDOR_BACKUP_DATABASE_URL: on PostgreSQL, the role the server's daily backup and its restore check
 * connect as (one that bypasses row-level security and may create the scratch database: the owner
 * given BYPASSRLS and CREATEDB). The application role (CANDOR_DATABASE_URL) never has those rights.
 */
export const BACKUP_DATABASE_URL = 'CANDOR_BACKUP_DATABASE_URL';

export type DatabaseSetting = { engine: 'sqlite' } | { engine: 'postgres'; url: string };

const EXAMPLE = 'postgres://user:password@host:5432/database';

/** CANDOR_DATABASE_URL: unset or empty is SQLite in the data dir; postgres:// or postgresql:// is PostgreSQL. */
export function parseDatabaseUrl(value: string | undefined): DatabaseSetting {
  const raw = value?.trim() ?? '';
  if (raw === '') return { engine: 'sqlite' };
  return { engine: 'postgres', url: postgresUrl(raw, DATABASE_URL, ', or unset for SQLite in the data dir', ', or be unset for SQLite') };
}

/** CANDOR_BACKUP_DATABASE_URL: unset or empty is none (the server takes no scheduled backup on PostgreSQL); else a postgres:// URL. */
export function parseBackupDatabaseUrl(value: string | undefined): string | undefined {
  const raw = value?.trim() ?? '';
  if (raw === '') return undefined;
  return postgresUrl(raw, BACKUP_DATABASE_URL, ', or unset', ', or be unset');
}

/** A postgres:// URL that `setting` holds, checked; a bad one is a ConfigError naming `setting`, never showing the password. */
function postgresUrl(raw: string, setting: string, orUnset: string, orBeUnset: string): string {
  // Only a scheme followed by // is named in a message: text before a colon may be a user name and password.
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(raw)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new ConfigError(setting, `is not a URL: expected ${EXAMPLE}${orUnset}`);
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    // Only the scheme is shown: the rest may hold a password.
    throw new ConfigError(setting, `must start with postgres:// or postgresql:// (it starts with ${scheme}:)${orBeUnset}`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      setting,
      `is not a valid URL (check the host, the port and that special characters are %-encoded): expected ${EXAMPLE}`,
    );
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    decodeURIComponent(url.pathname);
  } catch {
    throw new ConfigError(setting, 'has a badly %-encoded user name, password or database name (write % as %25)');
  }
  if (url.pathname.length > 1 && url.pathname.slice(1).includes('/')) {
    throw new ConfigError(setting, `names more than one path segment; the path is the database name: ${EXAMPLE}`);
  }
  return raw;
}

/** Where a URL points, for messages: user, host, port and database, never the password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${user}${host}:${u.port || '5432'}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return 'the configured server';
  }
}
