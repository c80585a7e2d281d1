/**
 * `candor restore <file>`: replaces the database with a backup, with the
 * server stopped. The database it replaces is kept beside it.
 *
 * With CANDOR_DATABASE_URL naming PostgreSQL: `restore [--replace] <file>`
 * restores into that database (src/core/backup/postgres.ts), which must have
 * no tables unless --replace says to drop what is there.
 */
import { mkdirSync } from 'node:fs';
import { auditKeyring } from '../core/audit/key.ts';
import { backupEvent } from '../core/backup/events.ts';
import { BackupError } from '../core/backup/format.ts';
import { recordOnPostgres, restorePostgres } from '../core/backup/postgres.ts';
import { restoreBackup } from '../core/backup/restore.ts';
import { type Config, readConfig } from '../core/config/env.ts';
import { findSecrets } from '../core/config/secrets.ts';
import { verificationReport } from './audit-verify.ts';
import { type CliCommand, CliError, parseOptions, postgresKeys, untilSignal } from './command.ts';

export const restore: CliCommand = {
  name: ['restore'],
  usage: 'restore [--replace] <file>',
  summary: 'replace the database with a backup (server stopped); verifies the audit log; --replace: a PostgreSQL database with tables',
  async run(args) {
    const { positionals, values } = parseOptions(args, { replace: { type: 'boolean' } });
    if (positionals.length !== 1) throw new CliError('restore needs exactly one argument: the backup file', 2);
    const [file = ''] = positionals;
    const config = readConfig(process.env, process.cwd());
    if (config.database.engine === 'postgres') return onPostgres(config, config.database.url, file, Boolean(values.replace));
    try {
      mkdirSync(config.dataDir, { recursive: true });
    } catch (err) {
      throw new CliError(`CANDOR_DATA_DIR cannot be created: ${config.dataDir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const secrets = findSecrets(config);
    if (!secrets) {
      throw new CliError(
        `no encryption key: set CANDOR_ENCRYPTION_KEY, or copy the secrets.json of the installation the backup came from into ${config.dataDir}`,
      );
    }
    const signal = untilSignal();
    try {
      const result = await restoreBackup({
        file,
        dataDir: config.dataDir,
        keys: [secrets.encryptionKey, ...secrets.previousKeys],
        secret: secrets.secret,
        previousSecrets: config.previousSecrets,
        now: () => new Date(),
        signal: signal.signal,
      });
      console.log(`restored ${file} (made ${result.header.createdAt}, key ${result.header.keyId}) into ${result.database}`);
      if (result.previous) console.log(`the database it replaced is kept as ${result.previous}`);
      if (result.migratedFrom !== result.migratedTo)
        console.log(`schema migrated from ${result.migratedFrom ?? '?'} to ${result.migratedTo ?? '?'}`);
      if (result.secretMatches === false) {
        console.log(
          secrets.secret === undefined
            ? 'warning: no CANDOR_SECRET is set and the data dir has no secrets.json: set the one in use when the backup was made, or a new one is generated at start and links already sent, and look-ups of stored addresses, stop working'
            : 'warning: CANDOR_SECRET is not the one in use when the backup was made: links already sent, and look-ups of stored addresses, fail until it is',
        );
      }
      if (!result.audit || secrets.secret === undefined) {
        console.log(
          'audit log NOT VERIFIABLE: there is no CANDOR_SECRET, so the restore is not recorded in it either; set the secret and run audit verify',
        );
        return 1;
      }
      if (!result.recorded) console.log('the restore is not recorded in the audit log: it would be sealed with a key the log has not seen');
      for (const line of verificationReport(result.audit, auditKeyring(secrets.secret, config.previousSecrets))) console.log(line);
      return result.audit.ok ? 0 : 1;
    } catch (err) {
      if (err instanceof BackupError) throw new CliError(err.message);
      throw err;
    } finally {
      signal.dispose();
    }
  },
};

async function onPostgres(config: Config, url: string, file: string, replace: boolean): Promise<number> {
  const keys = postgresKeys(config);
  const signal = untilSignal();
  try {
    const auditKeys = config.secret ? auditKeyring(config.secret, config.previousSecrets) : undefined;
    const result = await restorePostgres({ file, keys, url, replace, auditKeys, signal: signal.signal });
    console.log(
      `restored ${file} (made ${result.header.createdAt}, key ${result.header.keyId}) into ${result.database}` +
        `${result.replaced ? ', replacing what it held' : ''}: row counts and the audit log's newest entry match the snapshot (${result.auditEntries} audit entries)`,
    );
    if (result.migratedFrom !== result.migratedTo)
      console.log(`schema migrated from ${result.migratedFrom ?? '?'} to ${result.migratedTo ?? '?'}`);
    if (!result.audit || !auditKeys) {
      console.log(
        'audit log NOT VERIFIABLE: CANDOR_SECRET is not set (on PostgreSQL it comes from the environment); set it and run the restore check',
      );
      return 1;
    }
    for (const line of verificationReport(result.audit, auditKeys)) console.log(line);
    if (!result.audit.ok) {
      console.log('the restore is not recorded in the audit log: the restored chain does not verify');
      return 1;
    }
    const entry = await recordOnPostgres(
      url,
      auditKeys,
      backupEvent('backup.restored', file, {
        madeAt: result.header.createdAt,
        encryptedWith: result.header.keyId,
        replacedDatabase: result.replaced,
        migratedFrom: result.migratedFrom,
        migratedTo: result.migratedTo,
      }),
      new Date(),
    );
    console.log(`recorded in the audit log as entry #${entry.id}`);
    return 0;
  } catch (err) {
    if (err instanceof BackupError) throw new CliError(err.message);
    throw err;
  } finally {
    signal.dispose();
  }
}
