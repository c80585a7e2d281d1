/**
 * `candor keys rotate`: a new encryption key for personal data at rest.
 * With keys kept in the data dir it generates the key, re-seals every
 * value with it and forgets the old one. With CANDOR_ENCRYPTION_KEY in the
 * environment it re-seals with that key, opening old values with
 * CANDOR_PREVIOUS_ENCRYPTION_KEYS. Run it with the server stopped.
 */
import { randomBytes } from 'node:crypto';
import { forgetPreviousKeys, storeRotatedKey } from '../core/config/secrets.ts';
import { resealAll } from '../core/crypto/reseal.ts';
import { keyId } from '../core/crypto/seal.ts';
import { indexEmailDomains } from '../core/notify/recipients.ts';
import { type CliCommand, CliError, openContext } from './command.ts';

export const keysRotate: CliCommand = {
  name: ['keys', 'rotate'],
  usage: 'keys rotate',
  summary: 'new encryption key for personal data; re-seals everything (server stopped)',
  async run(args) {
    if (args.length) throw new CliError(`keys rotate takes no arguments, got: ${args.join(' ')}`, 2);
    const context = openContext();
    try {
      const { secrets, config } = context;
      if (config.encryptionKey) {
        const result = await resealAll(context.database, [secrets.encryptionKey, ...secrets.previousKeys], secrets.encryptionKey);
        // The domain index is keyed by CANDOR_SECRET, not the encryption key; rebuilt anyway from what was just re-sealed.
        await indexEmailDomains(context.database, { keys: [secrets.encryptionKey], secret: secrets.secret }, { all: true });
        console.log(
          `re-sealed with the key from CANDOR_ENCRYPTION_KEY (${keyId(secrets.encryptionKey)}): ${result.recipients} addresses, ${result.staff} authenticator secrets (${result.alreadyCurrent} values were already current).`,
        );
        console.log('CANDOR_PREVIOUS_ENCRYPTION_KEYS can now be removed.');
        return 0;
      }
      const next = randomBytes(32);
      storeRotatedKey(config.dataDir, secrets, next);
      const result = await resealAll(context.database, [next, secrets.encryptionKey, ...secrets.previousKeys], next);
      await indexEmailDomains(context.database, { keys: [next], secret: secrets.secret }, { all: true });
      forgetPreviousKeys(config.dataDir, { ...secrets, encryptionKey: next });
      console.log(
        `new key ${keyId(next)} replaces ${keyId(secrets.encryptionKey)}: re-sealed ${result.recipients} addresses and ${result.staff} authenticator secrets.`,
      );
      console.log('Back up secrets.json now: backups made before this rotation need the old key, which is gone from the data dir.');
      return 0;
    } finally {
      context.db.$client.close();
    }
  },
};
