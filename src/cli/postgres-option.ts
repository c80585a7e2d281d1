/**
 * A PostgreSQL URL given on the command line (`db copy --to`, `db migrate --owner`): read as
 * CANDOR_DATABASE_URL is, named by its option in messages, never showing the password.
 */
import { parseDatabaseUrl } from '../../db/engine/url.ts';
import { ConfigError } from '../core/config/env.ts';
import { CliError } from './command.ts';

export function parsePostgresOption(raw: string, option: string): string {
  try {
    const setting = parseDatabaseUrl(raw);
    if (setting.engine !== 'postgres') throw new CliError(`${option} must name a PostgreSQL database: postgres://…`, 2);
    return setting.url;
  } catch (err) {
    if (err instanceof ConfigError) {
      // The setting's own wording offers leaving it unset for SQLite, which an option naming PostgreSQL cannot be.
      const detail = err.message.slice(err.variable.length + 1).replace(/,? or (?:be )?unset for SQLite(?: in the data dir)?/, '');
      throw new CliError(`${option} ${detail}`, 2);
    }
    throw err;
  }
}

/** A password on the command line is visible to every user of the machine (ps) and kept in shell history. */
export function warnOfPassword(url: string, option: string): void {
  let password = '';
  try {
    password = new URL(url).password;
  } catch {
    return;
  }
  if (password === '') return;
  console.error(
    `candor: warning: ${option} contains a password, which other users of this machine could see in the process list (and your shell history keeps it); ` +
      'next time leave it out of the URL and set PGPASSWORD or use ~/.pgpass',
  );
}
