/**
 * Who hears what staff must act on (a promised update coming due, a
 * customer's objection): every active owner, admin and responder by email,
 * and SLACK_STAFF_CHANNEL when the bot token is set. Staff become
 * recipients without subscriber records, so their messages carry no
 * unsubscribe links.
 */
import type { Tx } from '../../../db/engine/types.ts';
import { ownersToTell, staffToTell } from '../../stores/notifications.ts';
import { escapeHtml, escapeSlack } from '../text/escape.ts';
import { type Enqueued, enqueueNotification, type NewNotification } from './outbox.ts';
import { ensureRecipient, type Keys } from './recipients.ts';

/** Where staff messages go besides the staff's email addresses. */
export interface StaffChannels {
  keys: Keys;
  /** SLACK_STAFF_CHANNEL with the bot token, when both are set */
  staffSlack: { channel: string; token: string } | null;
}

/** The staff Slack channel, when SLACK_STAFF_CHANNEL and the bot token are both configured. */
export function staffSlackOf(
  slack: { staffChannel: string | undefined; botToken: string | undefined } | null,
): StaffChannels['staffSlack'] {
  return slack?.staffChannel && slack.botToken ? { channel: slack.staffChannel, token: slack.botToken } : null;
}

/**
 * The staff's recipient ids (added as recipients on first use): their email addresses (`who`: the
 * owners, admins and responders, or the owners alone), and the staff Slack channel when set.
 */
export async function staffRecipients(tx: Tx, deps: StaffChannels, now: Date, who: 'staff' | 'owners' = 'staff'): Promise<number[]> {
  const ids: number[] = [];
  for (const email of who === 'owners' ? await ownersToTell(tx) : await staffToTell(tx))
    ids.push((await ensureRecipient(tx, deps.keys, { channel: 'email', address: email }, now)).id);
  if (deps.staffSlack) {
    const { channel, token } = deps.staffSlack;
    ids.push((await ensureRecipient(tx, deps.keys, { channel: 'slack', address: channel, secret: token }, now)).id);
  }
  return ids;
}

export interface StaffMessage {
  /** the notification's kind, e.g. `staff-reminder` */
  kind: string;
  subject: string;
  /** the message as plain text: escaped for each channel here */
  text: string;
  /** the email body, when it is more than the text in a paragraph */
  html?: string;
}

/** The notification of a staff message to these recipients. */
export function staffNotification(message: StaffMessage, recipientIds: number[]): NewNotification {
  const { kind, subject, text } = message;
  return {
    kind,
    title: subject,
    content: {
      email: { subject, html: message.html ?? `<p>${escapeHtml(text)}</p>`, text },
      // Slack's limit for a section's text.
      slack: { text: escapeSlack(text), blocks: [{ type: 'section', text: { type: 'plain_text', text: text.slice(0, 3000) } }] },
    },
    audience: { kind: 'recipients', ids: recipientIds },
  };
}

/** Tells staff something they must act on: one message by email and on the staff Slack channel, in the caller's transaction. */
export async function notifyStaff(tx: Tx, deps: StaffChannels, message: StaffMessage, now: Date): Promise<Enqueued> {
  return enqueueNotification(tx, staffNotification(message, await staffRecipients(tx, deps, now)), now);
}

/** Tells every active owner something (by email, and on the staff Slack channel), in the caller's transaction. */
export async function notifyOwners(tx: Tx, deps: StaffChannels, message: StaffMessage, now: Date): Promise<Enqueued> {
  return enqueueNotification(tx, staffNotification(message, await staffRecipients(tx, deps, now, 'owners')), now);
}
