/**
 * Key rotation's second half: every sealed value is opened with whichever
 * key it was sealed with and sealed again with the current key, in one
 * transaction. Afterwards the previous keys can be forgotten.
 */
import type { Database } from '../../../db/engine/types.ts';
import { sealedRecipients, sealedTotpSecrets, setRecipientSealed, setTotpSealed } from '../../stores/sealed-values.ts';
import { keyId, seal, unseal } from './seal.ts';

export interface ResealResult {
  recipients: number;
  staff: number;
  alreadyCurrent: number;
}

export function resealAll(database: Database, keyring: readonly Buffer[], current: Buffer): Promise<ResealResult> {
  const currentId = keyId(current);
  // Serializable on PostgreSQL: every value is read, then written back re-sealed; a value another
  // transaction changes meanwhile (a subscriber's new address, sealed with the old key) would otherwise
  // be overwritten, or be missed and stay under a key about to be forgotten. A conflict re-runs the
  // whole callback, which is why the counts are made inside it, from nothing, each run.
  return database.transaction(
    async (tx) => {
      const result: ResealResult = { recipients: 0, staff: 0, alreadyCurrent: 0 };
      const reseal = (value: string, context: string): string | null => {
        if (value.split('.')[1] === currentId) {
          result.alreadyCurrent++;
          return null;
        }
        return seal(current, unseal(keyring, value, context), context);
      };
      for (const r of await sealedRecipients(tx)) {
        const address = reseal(r.address, `recipient:${r.channel}:address`);
        const secret = r.secret === null ? null : reseal(r.secret, `recipient:${r.channel}:secret`);
        if (address !== null || secret !== null) {
          await setRecipientSealed(tx, r.id, { address: address ?? r.address, secret: secret ?? r.secret });
          result.recipients++;
        }
      }
      for (const s of await sealedTotpSecrets(tx)) {
        const sealed = reseal(s.totpSecret, `staff:${s.id}:totp`);
        if (sealed !== null) {
          await setTotpSealed(tx, s.id, sealed);
          result.staff++;
        }
      }
      return result;
    },
    { serializable: true },
  );
}
