/** The messages of signing up: confirm, already subscribed, SMS code, Slack welcome, webhook verification. */

import type { KnownBlock } from '@slack/web-api';
import type { EmailContent, NotificationContent, WebhookContent } from '../notify/types.ts';
import { escapeHtml } from '../text/escape.ts';
import { type Topic, topicLabels } from './topics.ts';

function email(subject: string, paragraphs: string[], action?: { label: string; url: string }): EmailContent {
  const html = [
    ...paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`),
    ...(action ? [`<p><a href="${escapeHtml(action.url)}">${escapeHtml(action.label)}</a></p>`] : []),
  ].join('\n');
  const text = [...paragraphs, ...(action ? [`${action.label}: ${action.url}`] : [])].join('\n\n');
  return { subject, html, text };
}

export function confirmationEmail(organisation: string, confirmUrl: string, topics: readonly Topic[]): NotificationContent {
  return {
    email: email(
      `Confirm your subscription to ${organisation} updates`,
      [
        `Someone, hopefully you, asked to receive ${organisation} trust center updates at this address: ${topics.map((t) => topicLabels[t].toLowerCase()).join(', ')}.`,
        'Confirm within 48 hours to start receiving them. If it was not you, ignore this email: nothing will be sent.',
      ],
      { label: 'Confirm my subscription', url: confirmUrl },
    ),
  };
}

export function alreadySubscribedEmail(organisation: string, manageUrl: string): NotificationContent {
  return {
    email: email(
      `You are already subscribed to ${organisation} updates`,
      [
        'Someone asked to subscribe this address again. It already receives our updates, so nothing has changed.',
        'You can change what you receive, or unsubscribe, here:',
      ],
      { label: 'Manage my subscription', url: manageUrl },
    ),
  };
}

export function smsCode(organisation: string, code: string, link: string): NotificationContent {
  return { sms: { body: `${code} is your ${organisation} status alerts code. It expires in 10 minutes.`, link } };
}

export function slackWelcome(organisation: string, topics: readonly Topic[], manageUrl: string | null): NotificationContent {
  const text = `This channel now receives ${organisation} updates: ${topics.map((t) => topicLabels[t].toLowerCase()).join(', ')}.`;
  const blocks: KnownBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text } }];
  if (manageUrl) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${manageUrl}|Manage this subscription>` }] });
  return { slack: { text, blocks } };
}

/**
 * The events of a webhook sign-up. The verification carries the endpoint's signing secret (and is
 * signed with it), so the secret reaches only the endpoint; the page that asked shows nothing of it.
 */
export function webhookVerification(organisation: string, secret: string): WebhookContent {
  return {
    type: 'subscription.verification',
    data: {
      message: `Verification of a subscription to ${organisation} updates. Answer with any 2xx status to confirm. Keep data.secret: every event we send is signed with it (Standard Webhooks), this one included.`,
      secret,
    },
  };
}

export function webhookConfirmed(organisation: string, topics: readonly Topic[], manageUrl: string): NotificationContent {
  return {
    webhook: {
      type: 'subscription.confirmed',
      data: {
        message: `This endpoint now receives ${organisation} updates: ${topics.map((t) => topicLabels[t].toLowerCase()).join(', ')}.`,
        topics: [...topics],
        manageUrl,
      },
    },
  };
}

/** To an endpoint that is subscribed already, when someone signs it up again: nothing changed. */
export function webhookAlreadySubscribed(organisation: string, manageUrl: string): WebhookContent {
  return {
    type: 'subscription.already_subscribed',
    data: {
      message: `Someone asked to subscribe this endpoint to ${organisation} updates. It is subscribed already, so nothing changed. Answer with any 2xx status.`,
      manageUrl,
    },
  };
}
