/**
 * Key rotation's second half: every sealed value is opened with whichever
 * key it was sealed with and sealed again with the current key, in one
 * transaction. Afterwards the previous keys can be forgotten.
 */
import type { Db } from '../../../db/client.ts';
import { keyId, seal, unseal } from './seal.ts';

export interface ResealResult {
  recipients: number;
  staff: number;
  alreadyCurrent: number;
}

export function resealAll(db: Db, keyring: readonly Buffer[], current: Buffer): ResealResult {
  const sqlite = db.$client;
  const currentId = keyId(current);
  const result: ResealResult = { recipients: 0, staff: 0, alreadyCurrent: 0 };
  const reseal = (value: string, context: string): string | null => {
    if (value.split('.')[1] === currentId) {
      result.alreadyCurrent++;
      return null;
    }
    return seal(current, unseal(keyring, value, context), context);
  };
  sqlite
    .transaction(() => {
      const update = sqlite.prepare('UPDATE recipients SET address = ?, secret = ? WHERE id = ?');
      const rows = sqlite.prepare('SELECT id, channel, address, secret FROM recipients').all() as {
        id: number;
        channel: string;
        address: string;
        secret: string | null;
      }[];
      for (const r of rows) {
        const address = reseal(r.address, `recipient:${r.channel}:address`);
        const secret = r.secret === null ? null : reseal(r.secret, `recipient:${r.channel}:secret`);
        if (address !== null || secret !== null) {
          update.run(address ?? r.address, secret ?? r.secret, r.id);
          result.recipients++;
        }
      }
      const updateStaff = sqlite.prepare('UPDATE staff SET totp_secret = ? WHERE id = ?');
      const staff = sqlite.prepare('SELECT id, totp_secret FROM staff WHERE totp_secret IS NOT NULL').all() as {
        id: number;
        totp_secret: string;
      }[];
      for (const s of staff) {
        const sealed = reseal(s.totp_secret, `staff:${s.id}:totp`);
        if (sealed !== null) {
          updateStaff.run(sealed, s.id);
          result.staff++;
        }
      }
    })
    .immediate();
  return result;
}
