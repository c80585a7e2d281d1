/**
 * Who hears what staff must act on (a promised update coming due, a
 * customer's objection): every active owner, admin and responder by email,
 * and SLACK_STAFF_CHANNEL when the bot token is set. Staff become
 * recipients without subscriber records, so their messages carry no
 * unsubscribe links.
 */
import type { Db } from '../../../db/client.ts';
import { escapeHtml, escapeSlack } from '../text/escape.ts';
import { type Enqueued, enqueueNotification } from './outbox.ts';
import { addRecipient, findRecipient, type Keys } from './recipients.ts';

export interface StaffAudience {
  db: Db;
  keys: Keys;
  /** SLACK_STAFF_CHANNEL with the bot token, when both are set */
  staffSlack: { channel: string; token: string } | null;
}

/** The staff Slack channel, when SLACK_STAFF_CHANNEL and the bot token are both configured. */
export function staffSlackOf(
  slack: { staffChannel: string | undefined; botToken: string | undefined } | null,
): StaffAudience['staffSlack'] {
  return slack?.staffChannel && slack.botToken ? { channel: slack.staffChannel, token: slack.botToken } : null;
}

export function staffRecipients(deps: StaffAudience, now: Date): number[] {
  const staff = deps.db.$client
    .prepare(`SELECT email FROM staff WHERE status = 'active' AND role IN ('owner', 'admin', 'responder')`)
    .all() as { email: string }[];
  const ids = staff.map(
    ({ email }) =>
      (findRecipient(deps.db, deps.keys, 'email', email) ?? addRecipient(deps.db, deps.keys, { channel: 'email', address: email }, now)).id,
  );
  if (deps.staffSlack) {
    const slack =
      findRecipient(deps.db, deps.keys, 'slack', deps.staffSlack.channel) ??
      addRecipient(deps.db, deps.keys, { channel: 'slack', address: deps.staffSlack.channel, secret: deps.staffSlack.token }, now);
    ids.push(slack.id);
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

/** Tells staff something they must act on: one message by email and on the staff Slack channel. */
export function notifyStaff(deps: StaffAudience, message: StaffMessage, now: Date): Enqueued {
  const { kind, subject, text } = message;
  return enqueueNotification(
    deps.db,
    {
      kind,
      title: subject,
      content: {
        email: { subject, html: message.html ?? `<p>${escapeHtml(text)}</p>`, text },
        // Slack's limit for a section's text.
        slack: { text: escapeSlack(text), blocks: [{ type: 'section', text: { type: 'plain_text', text: text.slice(0, 3000) } }] },
      },
      audience: { kind: 'recipients', ids: staffRecipients(deps, now) },
    },
    now,
  );
}
