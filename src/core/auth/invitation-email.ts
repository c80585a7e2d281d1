/**
 * The invitation email, through the notification engine. Sent only when
 * email is live: the log transport would show the one-time link to every
 * console reader, so without a provider the inviter passes the link on.
 * The recipient and the queued notification are one transaction of their own,
 * after the invitation's has committed; the outbox sends it later (no network
 * I/O here).
 */
import type { Database } from '../../../db/engine/types.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { ensureRecipient, type Keys } from '../notify/recipients.ts';
import { escapeHtml } from '../text/escape.ts';

export function sendInvitationEmail(
  database: Database,
  keys: Keys,
  email: string,
  role: string,
  link: string,
  organisation: string,
  inviter: string,
  now: Date,
): Promise<number> {
  const subject = `You are invited to the ${organisation} trust center console`;
  const lines = [
    `${inviter} invited you to the ${organisation} trust center console as ${role}.`,
    'Set your password with this link. It works once, for 24 hours. If you did not expect this, ignore it.',
  ];
  return database.transaction(async (tx) => {
    // Staff recipients have no subscriber: no unsubscribe link, and no topic fan-out ever reaches them.
    // Found or added once, however many invitations of the address are sent at once (recipients.ts).
    const recipient = await ensureRecipient(tx, keys, { channel: 'email', address: email }, now);
    const { notificationId } = await enqueueNotification(
      tx,
      {
        kind: 'staff-invitation',
        title: `Invitation for ${role}`,
        content: {
          email: {
            subject,
            html: `${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n')}\n<p><a href="${escapeHtml(link)}">Set my password</a></p>`,
            text: `${lines.join('\n\n')}\n\n${link}\n`,
          },
        },
        audience: { kind: 'recipients', ids: [recipient.id] },
      },
      now,
    );
    return notificationId;
  });
}
