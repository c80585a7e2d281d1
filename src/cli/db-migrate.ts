/**
 * `candor db migrate --owner postgres://owner@host/database --grant <app role>`: brings a PostgreSQL
 * database's schema up to date as the role that owns it, and grants the application role what it
 * needs (rows and sequences, no DDL). Servers and workers connect as the application role
 * (CANDOR_DATABASE_URL), which cannot change the schema or the row-level security policies; so a
 * deployment runs this once per release, before starting the new version's nodes. Nodes running it
 * at the same moment migrate once (an advisory lock, db/engine/postgres-setup.ts). The password
 * belongs in PGPASSWORD or ~/.pgpass, as for `db copy`.
 */
import { grantApplicationRole, migratePostgres, ROLE_NAME } from '../../db/engine/postgres-setup.ts';
import { ConfigError } from '../core/config/env.ts';
import { type CliCommand, CliError, parseOptions } from './command.ts';
import { parsePostgresOption, warnOfPassword } from './postgres-option.ts';

export const dbMigrate: CliCommand = {
  name: ['db', 'migrate'],
  usage: 'db migrate --owner postgres://owner@host/db --grant role',
  summary:
    'PostgreSQL: apply the schema migrations as the owner role and grant the application role its rows (run before starting a new version)',
  async run(args) {
    const { values, positionals } = parseOptions(args, { owner: { type: 'string' }, grant: { type: 'string' } });
    if (positionals.length > 0) throw new CliError(`db migrate takes no arguments, got: ${positionals.join(' ')}`, 2);
    if (values.owner === undefined || values.owner.trim() === '') {
      throw new CliError(
        'db migrate needs --owner postgres://owner@host:5432/database (the role that owns the database; the password in PGPASSWORD or ~/.pgpass)',
        2,
      );
    }
    if (values.grant === undefined || values.grant.trim() === '') {
      throw new CliError('db migrate needs --grant <role>: the role CANDOR_DATABASE_URL connects as (neither superuser nor the owner)', 2);
    }
    const role = values.grant.trim();
    if (!ROLE_NAME.test(role))
      throw new CliError(`--grant ${JSON.stringify(role)} is not a plain role name (lower-case letters, digits and _)`, 2);
    const ownerUrl = parsePostgresOption(values.owner, '--owner');
    warnOfPassword(ownerUrl, '--owner');
    try {
      const { applied } = await migratePostgres(ownerUrl);
      await grantApplicationRole(ownerUrl, role);
      console.log(`schema up to date (${applied.toString()} migrations applied in all); ${role} may read and write the rows`);
      return 0;
    } catch (err) {
      // The setup names CANDOR_DATABASE_URL; here the URL came from --owner.
      if (err instanceof ConfigError) throw new CliError(`--owner ${err.message.slice(err.variable.length + 1)}`);
      throw err;
    }
  },
};
