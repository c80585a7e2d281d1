/**
 * `candor db copy --to postgres://owner@host/database`: moves this data
 * dir's SQLite database to a new PostgreSQL database, with the server
 * stopped. The audit chain is verified before (a broken one is not copied)
 * and after, on PostgreSQL; the copy is recorded in both logs as their last
 * entry. Any failure leaves both as they were. CANDOR_DATABASE_URL plays no
 * part: the target is --to, the source the data dir's SQLite database.
 *
 * The password belongs in PGPASSWORD or ~/.pgpass, not in --to: a command
 * line is visible to every user of the machine (ps) and kept in shell
 * history. node-postgres reads PGPASSWORD for every connection the copy
 * makes (the migration's and the pool's) when the URL has no password.
 */
import { join } from 'node:path';
import { auditKeyring } from '../core/audit/key.ts';
import { readConfig } from '../core/config/env.ts';
import { findSecrets } from '../core/config/secrets.ts';
import { CopyError, copyToPostgres } from '../core/database/copy.ts';
import { type CliCommand, CliError, parseOptions } from './command.ts';
import { parsePostgresOption, warnOfPassword } from './postgres-option.ts';

export const dbCopy: CliCommand = {
  name: ['db', 'copy'],
  usage: 'db copy --to postgres://owner@host/database',
  summary:
    'copy the SQLite database into a new PostgreSQL database (server stopped; the password in PGPASSWORD or ~/.pgpass, not in the URL); verifies the audit log on both',
  async run(args) {
    const { values, positionals } = parseOptions(args, { to: { type: 'string' } });
    if (positionals.length > 0) throw new CliError(`db copy takes no arguments, got: ${positionals.join(' ')}`, 2);
    if (values.to === undefined || values.to.trim() === '') {
      throw new CliError(
        'db copy needs --to postgres://user@host:5432/database (a new, empty database; the user owns it; the password in PGPASSWORD or ~/.pgpass)',
        2,
      );
    }
    const targetUrl = parsePostgresOption(values.to, '--to');
    warnOfPassword(targetUrl, '--to');
    // The copy reads SQLite whatever CANDOR_DATABASE_URL says (it may already name the target).
    const config = readConfig({ ...process.env, CANDOR_DATABASE_URL: undefined }, process.cwd());
    const secret = config.secret ?? findSecrets(config)?.secret;
    if (secret === undefined) {
      throw new CliError(
        `no CANDOR_SECRET and no secrets.json in ${config.dataDir}: the audit log cannot be verified, so it is not copied; set the secret the server uses`,
      );
    }
    const sqliteFile = join(config.dataDir, 'candor.db');
    try {
      const result = await copyToPostgres({
        sqliteFile,
        targetUrl,
        keyring: auditKeyring(secret, config.previousSecrets),
        now: () => new Date(),
      });
      const width = Math.max(...result.tables.map((t) => t.name.length));
      for (const { name, rows } of result.tables) console.log(`  ${name.padEnd(width)} ${rows.toString().padStart(9)} rows`);
      const { audit, entry } = result;
      const anchor = `${entry.id.toString()}:${entry.hash.slice(0, 16)}`;
      console.log(
        `copied ${result.tables.length.toString()} tables, ${result.rows.toString()} rows, from ${sqliteFile}; ` +
          `audit log verified on PostgreSQL: ${audit.checked.toString()} entries, ending with the copy's own entry #${entry.id.toString()} (database.copied), anchor ${anchor}`,
      );
      if (!result.analyzed)
        console.error('the planner statistics were not gathered: run ANALYZE on the new database as its owner before the first fan-out');
      return 0;
    } catch (err) {
      if (err instanceof CopyError) throw new CliError(err.message);
      throw err;
    }
  },
};
