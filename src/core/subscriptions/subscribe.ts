/**
 * Signing up, by channel. Email is double opt-in and answers the same
 * whatever the address's state, so the form tells nobody who subscribes.
 * SMS is confirmed by a code, webhooks by answering a signed verification
 * event, Slack by installing the app (slack-oauth.ts) or giving an
 * incoming-webhook URL.
 *
 * Each sign-up writes its subscriber, address, topics, challenge and the message that follows
 * (notify/outbox.ts queues it) in one transaction (subscribers.ts `signUpIn`: two sign-ups of one
 * address at once make one subscriber), and each confirmation spends its challenge and activates the
 * address in one. The one network call, a webhook's verification, is made before its transaction.
 */
import { randomBytes } from 'node:crypto';
import type { Tx } from '../../../db/engine/types.ts';
import { activateRecipient } from '../../stores/subscribers.ts';
import { hitLimitNow, type Limit } from '../auth/rate-limit.ts';
import { deliverWebhookNow } from '../notify/channels/webhook.ts';
import { recipientLinks } from '../notify/links.ts';
import { enqueueNotification, type NewNotification } from '../notify/outbox.ts';
import { addressHash, findRecipient, openRecipient } from '../notify/recipients.ts';
import {
  checkDiscordWebhookUrl,
  checkEmail,
  checkPhone,
  checkSlackWebhookUrl,
  checkTeamsWebhookUrl,
  checkWebhookUrl,
} from './addresses.ts';
import { type ChallengeCheck, createEmailChallengeIn, createSmsChallengeIn, useEmailChallengeIn, useSmsChallengeIn } from './challenges.ts';
import { recordConfirmedConsent } from './consents.ts';
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
import { setTopicsIn, signUpIn } from './subscribers.ts';

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

/** Counts an attempt against `limit`; whether it is over. */
async function limited(ctx: SubscriptionContext, limit: Limit, key: string): Promise<boolean> {
  return (await hitLimitNow(ctx.database, limit, key, ctx.now)).limited;
}

/** Queues a subscription message to one address, in the transaction that made or found it. */
async function enqueue(
  tx: Tx,
  ctx: SubscriptionContext,
  recipientId: number,
  title: string,
  content: NewNotification['content'],
  pending = false,
): Promise<void> {
  await enqueueNotification(
    tx,
    {
      kind: 'subscription',
      title,
      content,
      audience: { kind: 'recipients', ids: [recipientId], ...(pending ? { includePending: true } : {}) },
    },
    ctx.now,
  );
}

const manageUrlOf = (ctx: SubscriptionContext, recipientId: number) => recipientLinks(ctx.keys.secret, ctx.publicUrl, recipientId).manage;

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
  await ctx.database.transaction(async (tx) => {
    const { recipient, created } = await signUpIn(
      tx,
      ctx.keys,
      { channel: 'email', address: checked.value, status: 'pending' },
      choices,
      ctx.now,
    );
    if (recipient.status === 'suppressed') return;
    if (recipient.status === 'active') {
      await enqueue(tx, ctx, recipient.id, 'Already subscribed', alreadySubscribedEmail(ctx.organisation, manageUrlOf(ctx, recipient.id)));
      return;
    }
    // Unconfirmed (or signed up a moment ago by another request): their new choices, a new link.
    if (!created && recipient.subscriberId) await setTopicsIn(tx, recipient.subscriberId, choices);
    const token = await createEmailChallengeIn(tx, ctx.keys.secret, recipient.id, ctx.now);
    const confirmUrl = new URL(`subscribe/confirm/${token}`, ctx.publicUrl).href;
    await enqueue(tx, ctx, recipient.id, 'Confirm subscription', confirmationEmail(ctx.organisation, confirmUrl, choices.topics), true);
  });
  return { ok: true, message: EMAIL_ANSWER };
}

const challengeMessages: Record<Exclude<ChallengeCheck, { ok: true }>['reason'], string> = {
  invalid: 'This confirmation link is not valid. Subscribe again to get a new one.',
  used: 'This confirmation link was already used. Your subscription is active if you confirmed it.',
  expired: 'This confirmation link has expired (links are valid for 48 hours). Subscribe again to get a new one.',
  tries: 'Too many wrong codes. Ask for a new code.',
};

/**
 * Spends a challenge and activates its address in one transaction; the conditional UPDATE leaves an
 * address that is no longer pending (suppressed meanwhile, or removed) as it is.
 */
function confirmIn(ctx: SubscriptionContext, use: (tx: Tx) => Promise<ChallengeCheck>): Promise<ChallengeCheck> {
  return ctx.database.transaction(async (tx) => {
    const check = await use(tx);
    if (check.ok && (await activateRecipient(tx, check.recipientId))) await recordConfirmedConsent(tx, check.recipientId, ctx.now);
    return check;
  });
}

export async function confirmEmail(ctx: SubscriptionContext, token: string): Promise<Result<{ recipientId: number; manageUrl: string }>> {
  const locked = await linksLocked(ctx);
  if (locked) return { ok: false, message: locked };
  const check = await confirmIn(ctx, (tx) => useEmailChallengeIn(tx, ctx.keys.secret, token, ctx.now));
  // An expired or used link is one we issued; only one we never issued counts as a guess.
  if (!check.ok && check.reason === 'invalid') await refuseLink(ctx, 'confirm');
  if (!check.ok) return { ok: false, message: challengeMessages[check.reason] };
  return { ok: true, recipientId: check.recipientId, manageUrl: manageUrlOf(ctx, check.recipientId) };
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
  const outcome = await ctx.database.transaction(async (tx) => {
    const { recipient, created } = await signUpIn(
      tx,
      ctx.keys,
      { channel: 'sms', address: checked.value, status: 'pending' },
      choices,
      ctx.now,
    );
    if (recipient.status === 'suppressed') return null;
    if (!created && recipient.subscriberId) await setTopicsIn(tx, recipient.subscriberId, choices);
    const { id, code } = await createSmsChallengeIn(tx, ctx.keys.secret, recipient.id, ctx.now);
    await enqueue(tx, ctx, recipient.id, 'SMS code', smsCode(ctx.organisation, code, ctx.publicUrl.href), true);
    return { id };
  });
  if (!outcome) {
    return { ok: false, message: 'This number replied STOP to our messages. Text START to our number to receive them again.' };
  }
  return { ok: true, challengeId: outcome.id, number: checked.value };
}

export async function confirmSms(
  ctx: SubscriptionContext,
  challengeId: string,
  code: string,
): Promise<Result<{ recipientId: number; manageUrl: string }>> {
  const perIp = await hitLimitNow(ctx.database, subscribeLimits.codePerIp, ctx.ip ?? 'unknown', ctx.now);
  if (perIp.limited) {
    if (perIp.count === subscribeLimits.codePerIp.max + 1) await codesLocked(ctx, subscribeLimits.codePerIp.max);
    return { ok: false, message: TOO_MANY };
  }
  if (!/^\s*\d{3}\s?\d{3}\s*$/.test(code)) return { ok: false, message: 'Enter the 6-digit code from the text message.' };
  const check = await confirmIn(ctx, (tx) => useSmsChallengeIn(tx, ctx.keys.secret, challengeId, code, ctx.now));
  if (!check.ok && (check.reason === 'invalid' || check.reason === 'tries'))
    await refuseCode(ctx, check.reason === 'tries' ? 'no tries left' : 'wrong code');
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
  return { ok: true, recipientId: check.recipientId, manageUrl: manageUrlOf(ctx, check.recipientId) };
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
  const existing = await ctx.database.read((r) => findRecipient(r, ctx.keys, 'webhook', checked.value));
  const existingSecret = existing ? openRecipient(ctx.keys, existing).secret : null;
  const secret = existingSecret ?? `whsec_${randomBytes(24).toString('base64')}`;
  const content = existing
    ? webhookAlreadySubscribed(ctx.organisation, manageUrlOf(ctx, existing.id))
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
  if (existing) return { ok: true, message: WEBHOOK_ANSWER };
  // Added only now, after the call (no network I/O inside a transaction): two sign-ups of one new
  // endpoint at once meet on the address's unique key and add it once (subscribers.ts `signUpIn`).
  await ctx.database.transaction(async (tx) => {
    const { recipient, created } = await signUpIn(
      tx,
      ctx.keys,
      { channel: 'webhook', address: checked.value, secret, status: 'active' },
      choices,
      ctx.now,
    );
    if (!created) return;
    await recordConfirmedConsent(tx, recipient.id, ctx.now);
    const content = webhookConfirmed(ctx.organisation, choices.topics, manageUrlOf(ctx, recipient.id));
    await enqueue(tx, ctx, recipient.id, 'Webhook subscribed', content);
  });
  return { ok: true, message: WEBHOOK_ANSWER };
}

/** Which chat webhooks a subscriber may paste, how each URL is checked, and what its welcome is called. */
const CHAT_WEBHOOKS = {
  slack: { check: checkSlackWebhookUrl, title: 'Slack welcome' },
  teams: { check: checkTeamsWebhookUrl, title: 'Teams welcome' },
  discord: { check: checkDiscordWebhookUrl, title: 'Discord welcome' },
} as const;

/**
 * A chat channel by its incoming-webhook URL (Slack, Microsoft Teams Workflows, Discord): the URL is a
 * secret only the channel's members can copy, so it is subscribed at once and welcomed with the link to
 * manage it. Subscribed again, its topics are replaced by the new choice.
 */
export async function subscribeChatWebhook(
  ctx: SubscriptionContext,
  channel: keyof typeof CHAT_WEBHOOKS,
  rawUrl: string,
  choices: Choices,
): Promise<Result<{ manageUrl: string }>> {
  const checked = CHAT_WEBHOOKS[channel].check(rawUrl, ctx.webhookPolicy);
  if (!checked.ok) return checked;
  const problem = checkChoices(ctx, choices);
  if (problem) return { ok: false, message: problem };
  if (await limited(ctx, subscribeLimits.perIp, ctx.ip ?? 'unknown')) return { ok: false, message: TOO_MANY };
  const manageUrl = await ctx.database.transaction(async (tx) => {
    const { recipient, created } = await signUpIn(tx, ctx.keys, { channel, address: checked.value, status: 'active' }, choices, ctx.now);
    if (!created && recipient.subscriberId) await setTopicsIn(tx, recipient.subscriberId, choices);
    if (created) await recordConfirmedConsent(tx, recipient.id, ctx.now);
    const url = manageUrlOf(ctx, recipient.id);
    await enqueue(tx, ctx, recipient.id, CHAT_WEBHOOKS[channel].title, slackWelcome(ctx.organisation, choices.topics, url));
    return url;
  });
  return { ok: true, manageUrl };
}

export function subscribeSlackWebhook(ctx: SubscriptionContext, rawUrl: string, choices: Choices): Promise<Result<{ manageUrl: string }>> {
  return subscribeChatWebhook(ctx, 'slack', rawUrl, choices);
}
