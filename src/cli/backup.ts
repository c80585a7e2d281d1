/**
 * `candor backup <file>`: an encrypted, consistent copy of the database,
 * taken while the server runs. The file needs the installation's encryption
 * key to be read or restored.
 *
 * `candor backup --check <file>`: the restore check the daily backup gets
 * (src/core/backup/check.ts) on any backup file, in a scratch folder of the
 * data dir; one line, exit 1 when it fails.
 *
 * With CANDOR_DATABASE_URL naming PostgreSQL both take the PostgreSQL path
 * (src/core/backup/postgres.ts; the check restores into a scratch database),
 * without the app context the server builds (which refuses PostgreSQL for
 * now): only the configuration and the encryption key from the environment.
 */
import { resolve } from 'node:path';
import { legacyConnection } from '../../db/engine/sqlite.ts';
import { boundAuditKeys } from '../core/audit/key.ts';
import { createBackup } from '../core/backup/backup.ts';
import { checkBackup } from '../core/backup/check.ts';
import { backupCreated } from '../core/backup/events.ts';
import { BackupError } from '../core/backup/format.ts';
import { backupPostgres, checkPostgresBackup, recordOnPostgres } from '../core/backup/postgres.ts';
import { runOfFile } from '../core/backup/runs.ts';
import { type Config, readConfig } from '../core/config/env.ts';
import { type CliCommand, CliError, openContext, parseOptions, postgresAuditKeys, postgresKeys, untilSignal } from './command.ts';

const size = (bytes: number) => (bytes < 1_048_576 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / 1_048_576).toFixed(1)} MiB`);

export const backup: CliCommand = {
  name: ['backup'],
  usage: 'backup <file> | backup --check <file>',
  summary: 'encrypted online backup of the database (AES-256-GCM, the installation key); --check proves a backup restores',
  async run(args) {
    const { positionals, values } = parseOptions(args, { check: { type: 'boolean' } });
    if (positionals.length !== 1)
      throw new CliError(
        `backup${values.check ? ' --check' : ''} needs exactly one argument: the ${values.check ? 'backup file to check' : 'file to write'}`,
        2,
      );
    const [file = ''] = positionals;
    const config = readConfig(process.env, process.cwd());
    if (config.database.engine === 'postgres') return onPostgres(config, config.database.url, file, Boolean(values.check));
    const context = await openContext();
    const signal = untilSignal();
    try {
      const { secrets, config } = context;
      const db = legacyConnection(context.database);
      if (values.check) {
        // Scheduled backups recorded the row counts of their snapshot: compared when this is one of them.
        const recorded = await runOfFile(context.database, resolve(file));
        const result = await checkBackup({
          file,
          dataDir: config.dataDir,
          keys: context.keys.keys,
          auditKeys: boundAuditKeys(context.database),
          expectedCounts: recorded?.counts ?? null,
          signal: signal.signal,
        }).catch((err: unknown) => {
          if (err instanceof BackupError) throw new CliError(`restore check FAILED: ${err.message}`);
          throw err;
        });
        console.log(
          `restore check passed: ${file} (made ${result.header.createdAt}) restored in ${result.ms} ms: integrity ok, schema ${result.migratedTo ?? 'unknown'}, ` +
            `audit chain verified (${result.auditEntries} entries)${result.countsCompared ? ', row counts match the snapshot' : ''}`,
        );
        return 0;
      }
      const result = await createBackup({
        db,
        dataDir: config.dataDir,
        key: secrets.encryptionKey,
        secret: secrets.secret,
        file,
        now: context.now,
        signal: signal.signal,
      });
      console.log(
        `backup written: ${result.file} (${size(result.bytes)}, encrypted with key ${result.header.keyId}, schema ${result.header.migration.latest ?? 'unknown'})`,
      );
      console.log(
        'Keep the encryption key (secrets.json or CANDOR_ENCRYPTION_KEY) apart from it: without the key the backup cannot be read.',
      );
      return 0;
    } catch (err) {
      if (err instanceof BackupError) throw new CliError(err.message);
      throw err;
    } finally {
      signal.dispose();
      await context.database.close();
    }
  },
};

async function onPostgres(config: Config, url: string, file: string, check: boolean): Promise<number> {
  const keys = postgresKeys(config);
  const signal = untilSignal();
  try {
    if (check) {
      const auditKeys = postgresAuditKeys(config, 'the restore check');
      const result = await checkPostgresBackup({ file, keys, url, auditKeys, signal: signal.signal }).catch((err: unknown) => {
        if (err instanceof BackupError) throw new CliError(`restore check FAILED: ${err.message}`);
        throw err;
      });
      console.log(
        `restore check passed: ${file} (made ${result.header.createdAt}) restored into a scratch PostgreSQL database in ${result.ms} ms: ` +
          `schema ${result.migratedTo ?? 'unknown'}, row counts match the snapshot, audit chain verified (${result.auditEntries} entries) ` +
          "and ending with the snapshot's newest entry",
      );
      return 0;
    }
    // Known before the dump: the backup is recorded in the audit log with it.
    const auditKeys = config.secret ? postgresAuditKeys(config, 'the backup') : undefined;
    const result = await backupPostgres({
      url,
      file,
      key: keys[0] ?? Buffer.alloc(0),
      secret: config.secret,
      now: () => new Date(),
      signal: signal.signal,
    });
    console.log(
      `backup written: ${result.file} (${size(result.bytes)}, PostgreSQL, encrypted with key ${result.header.keyId}, schema ${result.header.migration.latest ?? 'unknown'})`,
    );
    if (auditKeys) {
      const entry = await recordOnPostgres(url, auditKeys, backupCreated(result), new Date());
      console.log(`recorded in the audit log as entry #${entry.id}`);
    } else
      console.log('not audited: CANDOR_SECRET is not set (on PostgreSQL it comes from the environment), so backup.created is not recorded');
    console.log('Keep the encryption key (CANDOR_ENCRYPTION_KEY) apart from it: without the key the backup cannot be read.');
    return 0;
  } catch (err) {
    if (err instanceof BackupError) throw new CliError(err.message);
    throw err;
  } finally {
    signal.dispose();
  }
}
