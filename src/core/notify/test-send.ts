/**
 * A test message from the console's Settings page, to check that a channel
 * really reaches someone. The address is validated like a subscriber's;
 * the message goes through the outbox like any other.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Database } from '../../../db/engine/types.ts';
import { checkDiscordWebhookUrl } from './channels/discord.ts';
import { checkTeamsWebhookUrl } from './channels/teams.ts';
import { enqueueNotification } from './outbox.ts';
import { ensureRecipient, type Keys, openRecipient, unsuppressRecipient } from './recipients.ts';
import { checkUrlShape, type UrlPolicy } from './safe-url.ts';
import type { ChannelName, NotificationContent } from './types.ts';

export type TestSendResult =
  | { ok: true; notificationId: number; recipientId: number; channel: ChannelName; webhookSecret: string | null }
  | { ok: false; message: string };

const email = z.email();

function validate(channel: ChannelName, raw: string, policy: UrlPolicy): string | { error: string } {
  const address = raw.trim();
  if (address.length === 0 || address.length > 2048) return { error: 'Enter an address.' };
  switch (channel) {
    case 'email':
      return email.safeParse(address).success ? address.toLowerCase() : { error: 'Enter a valid email address.' };
    case 'sms':
      return /^\+[1-9]\d{6,14}$/.test(address) ? address : { error: 'Enter the number in international form, e.g. +14155550100.' };
    case 'slack': {
      const url = checkUrlShape(address, policy);
      return url.ok && url.url.hostname === 'hooks.slack.com'
        ? address
        : { error: 'Enter a Slack incoming-webhook URL (https://hooks.slack.com/…).' };
    }
    case 'webhook': {
      const url = checkUrlShape(address, policy);
      return url.ok ? url.url.href : { error: `This URL cannot be used: it ${url.reason}.` };
    }
    case 'teams':
    case 'discord': {
      const checked = (channel === 'teams' ? checkTeamsWebhookUrl : checkDiscordWebhookUrl)(address, policy);
      return checked.ok ? checked.value : { error: checked.message };
    }
  }
}

/**
 * Adds the address when it is new (a webhook then gets a signing secret, shown once) and enqueues the
 * message to it, in one transaction: concurrent tests to one new address make one row (the unique key,
 * `ensureRecipient`), and only the test whose secret was stored shows it.
 */
export async function sendTestMessage(
  database: Database,
  keys: Keys,
  policy: UrlPolicy,
  channel: ChannelName,
  rawAddress: string,
  organisation: string,
  publicUrl: URL,
  now: Date,
): Promise<TestSendResult> {
  const address = validate(channel, rawAddress, policy);
  if (typeof address !== 'string') return { ok: false, message: address.error };
  const candidateSecret = channel === 'webhook' ? `whsec_${randomBytes(24).toString('base64')}` : null;
  const text = `Test message from the ${organisation} trust center, sent ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC. If you can read this, ${channel} notifications reach you.`;
  const content: NotificationContent = {
    [channel]:
      channel === 'email'
        ? { subject: `${organisation}: test notification`, html: `<p>${text}</p>`, text }
        : channel === 'sms'
          ? { body: text, link: publicUrl.href }
          : channel === 'slack'
            ? { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }
            : { type: 'test', data: { message: text } },
  };
  return database.transaction(async (tx): Promise<TestSendResult> => {
    const recipient = await ensureRecipient(tx, keys, { channel, address, secret: candidateSecret }, now);
    // The secret is shown only when this call added the address: an existing webhook keeps its own.
    const webhookSecret = candidateSecret !== null && openRecipient(keys, recipient).secret === candidateSecret ? candidateSecret : null;
    // A test to an address that was suppressed is someone checking it works again.
    if (recipient.status === 'suppressed') await unsuppressRecipient(tx, recipient.id);
    const { notificationId } = await enqueueNotification(
      tx,
      { kind: 'test', title: `Test ${channel} message`, content, audience: { kind: 'recipients', ids: [recipient.id] } },
      now,
    );
    return { ok: true, notificationId, recipientId: recipient.id, channel, webhookSecret };
  });
}
