/**
 * The invitation email, through the notification engine. Sent only when
 * email is live: the log transport would show the one-time link to every
 * console reader, so without a provider the inviter passes the link on.
 */
import type { Db } from '../../../db/client.ts';
import { addRecipient, enqueueNotification, findRecipient } from '../notify/legacy.ts';
import type { Keys } from '../notify/recipients.ts';
import { escapeHtml } from '../text/escape.ts';

export function sendInvitationEmail(
  db: Db,
  keys: Keys,
  email: string,
  role: string,
  link: string,
  organisation: string,
  inviter: string,
  now: Date,
): number {
  // Staff recipients have no subscriber: no unsubscribe link, and no topic fan-out ever reaches them.
  const recipient = findRecipient(db, keys, 'email', email) ?? addRecipient(db, keys, { channel: 'email', address: email }, now);
  const subject = `You are invited to the ${organisation} trust center console`;
  const lines = [
    `${inviter} invited you to the ${organisation} trust center console as ${role}.`,
    'Set your password with this link. It works once, for 24 hours. If you did not expect this, ignore it.',
  ];
  const { notificationId } = enqueueNotification(
    db,
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
}
