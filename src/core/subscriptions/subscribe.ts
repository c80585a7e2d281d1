/**
 * Signing up, by channel. Email is double opt-in and answers the same
 * whatever the address's state, so the form tells nobody who subscribes.
 * SMS is confirmed by a code, webhooks by answering a signed verification
 * event, Slack by installing the app (slack-oauth.ts) or giving an
 * incoming-webhook URL.
 */
import { randomBytes } from 'node:crypto';
import { databaseOf } from '../../../db/engine/sqlite.ts';
import { hitLimitNow, type Limit } from '../auth/rate-limit.ts';
import { deliverWebhookNow } from '../notify/channels/webhook.ts';
import { addRecipient, enqueueNotification, findRecipient } from '../notify/legacy.ts';
import { recipientLinks } from '../notify/links.ts';
import { addressHash, openRecipient } from '../notify/recipients.ts';
import { checkEmail, checkPhone, checkSlackWebhookUrl, checkWebhookUrl } from './addresses.ts';
import { type ChallengeCheck, createEmailChallenge, createSmsChallenge, useEmailChallenge, useSmsChallenge } from './challenges.ts';
import type { Choices, Result, SubscriptionContext } from './context.ts';
import {
  alreadySubscribedEmail,
  confirmationEmail,
  slackWelcome,
  smsCode,
  webhookAlreadySubscribed,
  webhookConfirmed,
  webhookVerification,
} from './messages.ts';
import { codesLocked, linksLocked, refuseCode, refuseLink } from './refusals.ts';
import { createSubscriber, setTopics } from './subscribers.ts';

const HOUR = 3_600_000;
export const subscribeLimits = {
  perIp: { bucket: 'subscribe:ip', max: 30, windowMs: HOUR },
  perAddress: { bucket: 'subscribe:address', max: 3, windowMs: HOUR },
  smsPerIp: { bucket: 'subscribe-sms:ip', max: 10, windowMs: 4 * HOUR },
  codePerIp: { bucket: 'subscribe-code:ip', max: 20, windowMs: HOUR },
} as const satisfies Record<string, Limit>;

export const EMAIL_ANSWER =
  'Check your inbox: if this address can receive our emails, a confirmation link is on its way. It is valid for 48 hours.';
const TOO_MANY = 'Too many sign-up attempts from your network. Try again later.';

/** Counts an attempt against `limit` (on the async handle of the context's connection); whether it is over. */
async function limited(ctx: SubscriptionContext, limit: Limit, key: string): Promise<boolean> {
  return (await hitLimitNow(databaseOf(ctx.db), limit, key, ctx.now)).limited;
}

function checkChoices(ctx: SubscriptionContext, choices: Choices): string | null {
  if (choices.topics.length === 0) return 'Choose at least one thing to follow.';
  const unknown = choices.components.find((c) => !ctx.componentIds.includes(c));
  if (unknown) return `There is no service called "${unknown.slice(0, 60)}".`;
  if (choices.organisation && choices.organisation.length > 200) return 'The company name is too long (200 characters at most).';
  return null;
}

export async function subscribeEmail(ctx: SubscriptionContext, rawEmail: string, choices: Choices): Promise<Result<{ message: string }>> {
  const checked = checkEmail(rawEmail);
  if (!checked.ok) return checked;
  const problem = checkChoices(ctx, choices);
  if (problem) return { ok: false, message: problem };
  if (await limited(ctx, subscribeLimits.perIp, ctx.ip ?? 'unknown')) return { ok: false, message: TOO_MANY };
  // Per address, silently: a visible refusal would tell that the address was tried before.
  if (await limited(ctx, subscribeLimits.perAddress, addressHash(ctx.keys, 'email', checked.value)))
    return { ok: true, message: EMAIL_ANSWER };
  const existing = findRecipient(ctx.db, ctx.keys, 'email', checked.value);
  if (existing?.status === 'suppressed') return { ok: true, message: EMAIL_ANSWER };
  if (existing?.status === 'active') {
    enqueueNotification(
      ctx.db,
      {
        kind: 'subscription',
        title: 'Already subscribed',
        content: alreadySubscribedEmail(ctx.organisation, recipientLinks(ctx.keys.secret, ctx.publicUrl, existing.id).manage),
        audience: { kind: 'recipients', ids: [existing.id] },
      },
      ctx.now,
    );
    return { ok: true, message: EMAIL_ANSWER };
  }
  const recipient =
    existing ??
    addRecipient(
      ctx.db,
      ctx.keys,
      { channel: 'email', address: checked.value, subscriberId: createSubscriber(ctx.db, choices, ctx.now), status: 'pending' },
      ctx.now,
    );
  if (existing?.subscriberId) setTopics(ctx.db, existing.subscriberId, choices);
  const token = await createEmailChallenge(databaseOf(ctx.db), ctx.keys.secret, recipient.id, ctx.now);
  const confirmUrl = new URL(`subscribe/confirm/${token}`, ctx.publicUrl).href;
  enqueueNotification(
    ctx.db,
    {
      kind: 'subscription',
      title: 'Confirm subscription',
      content: confirmationEmail(ctx.organisation, confirmUrl, choices.topics),
      audience: { kind: 'recipients', ids: [recipient.id], includePending: true },
    },
    ctx.now,
  );
  return { ok: true, message: EMAIL_ANSWER };
}

const challengeMessages: Record<Exclude<ChallengeCheck, { ok: true }>['reason'], string> = {
  invalid: 'This confirmation link is not valid. Subscribe again to get a new one.',
  used: 'This confirmation link was already used. Your subscription is active if you confirmed it.',
  expired: 'This confirmation link has expired (links are valid for 48 hours). Subscribe again to get a new one.',
  tries: 'Too many wrong codes. Ask for a new code.',
};

function activate(ctx: SubscriptionContext, recipientId: number): void {
  ctx.db.$client.prepare(`UPDATE recipients SET status = 'active' WHERE id = ? AND status = 'pending'`).run(recipientId);
}

export async function confirmEmail(ctx: SubscriptionContext, token: string): Promise<Result<{ recipientId: number; manageUrl: string }>> {
  const locked = await linksLocked(ctx);
  if (locked) return { ok: false, message: locked };
  const check = await useEmailChallenge(databaseOf(ctx.db), ctx.keys.secret, token, ctx.now);
  // An expired or used link is one we issued; only one we never issued counts as a guess.
  if (!check.ok && check.reason === 'invalid') await refuseLink(ctx, 'confirm');
  if (!check.ok) return { ok: false, message: challengeMessages[check.reason] };
  activate(ctx, check.recipientId);
  return { ok: true, recipientId: check.recipientId, manageUrl: recipientLinks(ctx.keys.secret, ctx.publicUrl, check.recipientId).manage };
}

export async function subscribeSms(
  ctx: SubscriptionContext,
  rawNumber: string,
  choices: Choices,
): Promise<Result<{ challengeId: string; number: string }>> {
  const checked = checkPhone(rawNumber);
  if (!checked.ok) return checked;
  const problem = checkChoices(ctx, choices);
  if (problem) return { ok: false, message: problem };
  if (await limited(ctx, subscribeLimits.smsPerIp, ctx.ip ?? 'unknown')) return { ok: false, message: TOO_MANY };
  if (await limited(ctx, subscribeLimits.perAddress, addressHash(ctx.keys, 'sms', checked.value))) {
    return { ok: false, message: 'We sent several codes to this number already. Wait an hour before asking for another.' };
  }
  const existing = findRecipient(ctx.db, ctx.keys, 'sms', checked.value);
  if (existing?.status === 'suppressed') {
    return { ok: false, message: 'This number replied STOP to our messages. Text START to our number to receive them again.' };
  }
  const recipient =
    existing ??
    addRecipient(
      ctx.db,
      ctx.keys,
      { channel: 'sms', address: checked.value, subscriberId: createSubscriber(ctx.db, choices, ctx.now), status: 'pending' },
      ctx.now,
    );
  if (existing?.subscriberId) setTopics(ctx.db, existing.subscriberId, choices);
  const { id, code } = await createSmsChallenge(databaseOf(ctx.db), ctx.keys.secret, recipient.id, ctx.now);
  enqueueNotification(
    ctx.db,
    {
      kind: 'subscription',
      title: 'SMS code',
      content: smsCode(ctx.organisation, code, ctx.publicUrl.href),
      audience: { kind: 'recipients', ids: [recipient.id], includePending: true },
    },
    ctx.now,
  );
  return { ok: true, challengeId: id, number: checked.value };
}

export async function confirmSms(
  ctx: SubscriptionContext,
  challengeId: string,
  code: string,
): Promise<Result<{ recipientId: number; manageUrl: string }>> {
  const perIp = await hitLimitNow(databaseOf(ctx.db), subscribeLimits.codePerIp, ctx.ip ?? 'unknown', ctx.now);
  if (perIp.limited) {
    if (perIp.count === subscribeLimits.codePerIp.max + 1) codesLocked(ctx, subscribeLimits.codePerIp.max);
    return { ok: false, message: TOO_MANY };
  }
  if (!/^\s*\d{3}\s?\d{3}\s*$/.test(code)) return { ok: false, message: 'Enter the 6-digit code from the text message.' };
  const check = await useSmsChallenge(databaseOf(ctx.db), ctx.keys.secret, challengeId, code, ctx.now);
  if (!check.ok && (check.reason === 'invalid' || check.reason === 'tries'))
    refuseCode(ctx, check.reason === 'tries' ? 'no tries left' : 'wrong code');
  if (!check.ok) {
    return {
      ok: false,
      message:
        check.reason === 'invalid'
          ? 'That code is not right. Check the text message and try again.'
          : check.reason === 'expired'
            ? 'That code has expired (codes last 10 minutes). Ask for a new one.'
            : challengeMessages[check.reason],
    };
  }
  activate(ctx, check.recipientId);
  return { ok: true, recipientId: check.recipientId, manageUrl: recipientLinks(ctx.keys.secret, ctx.publicUrl, check.recipientId).manage };
}

/** The same for a new endpoint and one subscribed already: the page must tell nobody which it was. */
export const WEBHOOK_ANSWER =
  'Your endpoint answered our signed event. If it is new to us, that event (subscription.verification) carries its signing secret, and a second one (subscription.confirmed) the link to manage the subscription. If it was subscribed already, the event (subscription.already_subscribed) says so and carries the link to manage it; nothing changed.';

/**
 * The endpoint must answer a signed event with 2xx before anything else is sent to it. Whether or not
 * it is subscribed already, one signed event goes to it and the answer depends only on how it
 * answered: a new endpoint gets the verification (with its secret), a subscribed one a notice signed
 * with its own secret. Nothing is shown on the page that only the endpoint's owner should know.
 */
export async function subscribeWebhook(ctx: SubscriptionContext, rawUrl: string, choices: Choices): Promise<Result<{ message: string }>> {
  const checked = checkWebhookUrl(rawUrl, ctx.webhookPolicy);
  if (!checked.ok) return checked;
  const problem = checkChoices(ctx, choices);
  if (problem) return { ok: false, message: problem };
  if (await limited(ctx, subscribeLimits.perIp, ctx.ip ?? 'unknown')) return { ok: false, message: TOO_MANY };
  // New or subscribed, each attempt sends the endpoint an event: not more than a few an hour.
  if (await limited(ctx, subscribeLimits.perAddress, addressHash(ctx.keys, 'webhook', checked.value)))
    return { ok: false, message: 'We sent several events to this endpoint in the last hour. Wait an hour before trying again.' };
  const eventId = `verify_${randomBytes(8).toString('hex')}`;
  const existing = findRecipient(ctx.db, ctx.keys, 'webhook', checked.value);
  const existingSecret = existing ? openRecipient(ctx.keys, existing).secret : null;
  const secret = existingSecret ?? `whsec_${randomBytes(24).toString('base64')}`;
  const content = existing
    ? webhookAlreadySubscribed(ctx.organisation, recipientLinks(ctx.keys.secret, ctx.publicUrl, existing.id).manage)
    : webhookVerification(ctx.organisation, secret);
  const answer = await deliverWebhookNow(ctx.webhookPolicy, checked.value, secret, eventId, content);
  if (!answer.ok) {
    // The host only: the rest of a URL may carry the receiver's own token.
    ctx.log(`webhook verification to ${new URL(checked.value).host} failed: ${answer.detail}`);
    return {
      ok: false,
      message: `Your endpoint did not confirm: ${answer.message}. It must answer our signed verification event with a 2xx status.`,
    };
  }
  // Checked again after the call: two sign-ups of one new endpoint at once add it once.
  if (existing || findRecipient(ctx.db, ctx.keys, 'webhook', checked.value)) return { ok: true, message: WEBHOOK_ANSWER };
  const subscriberId = createSubscriber(ctx.db, choices, ctx.now);
  const recipient = addRecipient(
    ctx.db,
    ctx.keys,
    { channel: 'webhook', address: checked.value, secret, subscriberId, status: 'active' },
    ctx.now,
  );
  enqueueNotification(
    ctx.db,
    {
      kind: 'subscription',
      title: 'Webhook subscribed',
      content: webhookConfirmed(ctx.organisation, choices.topics, recipientLinks(ctx.keys.secret, ctx.publicUrl, recipient.id).manage),
      audience: { kind: 'recipients', ids: [recipient.id] },
    },
    ctx.now,
  );
  return { ok: true, message: WEBHOOK_ANSWER };
}

export async function subscribeSlackWebhook(
  ctx: SubscriptionContext,
  rawUrl: string,
  choices: Choices,
): Promise<Result<{ manageUrl: string }>> {
  const checked = checkSlackWebhookUrl(rawUrl, ctx.webhookPolicy);
  if (!checked.ok) return checked;
  const problem = checkChoices(ctx, choices);
  if (problem) return { ok: false, message: problem };
  if (await limited(ctx, subscribeLimits.perIp, ctx.ip ?? 'unknown')) return { ok: false, message: TOO_MANY };
  const existing = findRecipient(ctx.db, ctx.keys, 'slack', checked.value);
  const recipient =
    existing ??
    addRecipient(
      ctx.db,
      ctx.keys,
      { channel: 'slack', address: checked.value, subscriberId: createSubscriber(ctx.db, choices, ctx.now), status: 'active' },
      ctx.now,
    );
  if (existing?.subscriberId) setTopics(ctx.db, existing.subscriberId, choices);
  const manageUrl = recipientLinks(ctx.keys.secret, ctx.publicUrl, recipient.id).manage;
  enqueueNotification(
    ctx.db,
    {
      kind: 'subscription',
      title: 'Slack welcome',
      content: slackWelcome(ctx.organisation, choices.topics, manageUrl),
      audience: { kind: 'recipients', ids: [recipient.id] },
    },
    ctx.now,
  );
  return { ok: true, manageUrl };
}
