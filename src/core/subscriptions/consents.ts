/**
 * Consent records (issue 17): when and where each address opted in. A sign-up writes one when the
 * address is confirmed (the email link, the SMS code) or, for channels that are confirmed by being
 * added (a webhook that answered its signed event, a Slack channel installed), when it is added; an
 * import writes one per address it adds (src/core/subscriptions/import.ts). The rows are
 * src/stores/subscriber-imports.ts's and go with the address (foreign key, on erasure).
 */
import type { Tx } from '../../../db/engine/types.ts';
import { forgetRemoved } from '../../stores/removed-addresses.ts';
import { consentsOfRecipients, insertConsents } from '../../stores/subscriber-imports.ts';
import { recipientById } from '../../stores/subscribers.ts';
import type { ChannelName } from '../notify/types.ts';

/** Where a sign-up on each channel happened, as the consent record says it. */
export const signupVia: Record<ChannelName, string> = {
  email: 'web form',
  sms: 'sms',
  slack: 'slack',
  webhook: 'webhook',
  teams: 'teams webhook',
  discord: 'discord webhook',
};

/**
 * Records that the address was confirmed, in the transaction that confirmed it. An address an import
 * sent a confirmation request to keeps its import as the source (and the file's place); any other is
 * a sign-up here. Either way the opt-in time is now: confirming is the opting in, and an earlier
 * removal of the address (src/stores/removed-addresses.ts) is forgotten.
 */
export async function recordConfirmedConsent(tx: Tx, recipientId: number, now: Date): Promise<void> {
  const recipient = await recipientById(tx, recipientId);
  if (!recipient) return;
  // the person opted in here again: an earlier withdrawal no longer stands in an import's way
  await forgetRemoved(tx, recipient.channel, recipient.addressHash);
  const [previous] = await consentsOfRecipients(tx, [recipientId]);
  const imported = previous?.source === 'import' ? previous : undefined;
  await insertConsents(tx, [
    {
      subscriberId: recipient.subscriberId,
      recipientId,
      source: imported ? 'import' : 'signup',
      method: 'confirmed',
      // confirming is the opt-in, whatever the import file said
      optedInAt: now,
      optedInVia: imported ? imported.optedInVia : signupVia[recipient.channel],
      importId: imported?.importId ?? null,
      importRow: imported?.importRow ?? null,
      recordedAt: now,
    },
  ]);
}

export interface ConsentView {
  recipientId: number;
  source: string;
  method: string;
  optedInAt: Date | null;
  optedInVia: string;
  importId: number | null;
  recordedAt: Date;
}

/** The consent records of a subscriber's addresses, newest first. */
export async function consentsOf(tx: Tx, recipientIds: readonly number[]): Promise<ConsentView[]> {
  const rows = await consentsOfRecipients(tx, recipientIds);
  return rows.map((row) => ({
    recipientId: row.recipientId,
    source: row.source,
    method: row.method,
    optedInAt: row.optedInAt,
    optedInVia: row.optedInVia,
    importId: row.importId,
    recordedAt: row.recordedAt,
  }));
}

/** How a consent record reads in the console and the export: "confirmed sign-up (web form)", "imported, consent carried over (statuspage export)". */
export function describeConsent(c: Pick<ConsentView, 'source' | 'method' | 'optedInVia'>): string {
  const how =
    c.method === 'carried_over'
      ? 'imported, consent carried over'
      : c.method === 'confirmation_requested'
        ? 'imported, confirmation requested'
        : c.source === 'import'
          ? 'imported, then confirmed'
          : 'confirmed sign-up';
  return `${how} (${c.optedInVia})`;
}
