/**
 * `candor backup <file>`: an encrypted, consistent copy of the database,
 * taken while the server runs. The file needs the installation's encryption
 * key to be read or restored.
 */
import { createBackup } from '../core/backup/backup.ts';
import { BackupError } from '../core/backup/format.ts';
import { type CliCommand, CliError, openContext, parseOptions, untilSignal } from './command.ts';

export const backup: CliCommand = {
  name: ['backup'],
  usage: 'backup <file>',
  summary: 'encrypted online backup of the database (AES-256-GCM, the installation key)',
  async run(args) {
    const { positionals } = parseOptions(args, {});
    if (positionals.length !== 1) throw new CliError('backup needs exactly one argument: the file to write', 2);
    const [file = ''] = positionals;
    const context = openContext();
    const signal = untilSignal();
    try {
      const { secrets, config, db } = context;
      const result = await createBackup({
        db,
        dataDir: config.dataDir,
        key: secrets.encryptionKey,
        secret: secrets.secret,
        file,
        now: context.now,
        signal: signal.signal,
      });
      const size = result.bytes < 1_048_576 ? `${Math.ceil(result.bytes / 1024)} KiB` : `${(result.bytes / 1_048_576).toFixed(1)} MiB`;
      console.log(
        `backup written: ${result.file} (${size}, encrypted with key ${result.header.keyId}, schema ${result.header.migration.latest ?? 'unknown'})`,
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
      context.db.$client.close();
    }
  },
};
