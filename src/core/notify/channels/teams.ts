/**
 * Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request is received",
 * the successor of Office 365 connectors): the address is the workflow's URL, which is its own
 * credential (it carries a `sig`). The message is an Adaptive Card (1.4) in a `message` envelope, as
 * Microsoft's Workflows documentation shows, built from the notification's Slack content
 * (chat-from-slack.ts). The workflow answers 202 Accepted and gives no message id; a deleted
 * workflow answers 404 and the address is suppressed (chat-webhook.ts).
 */
import type { LimitSettings } from '../types.ts';
import type { ChatMessage } from './chat-from-slack.ts';
import { ChatWebhookChannel, checkChatWebhookUrl } from './chat-webhook.ts';

/** Workflows' HTTP trigger throttles per flow; one message a second with a small burst stays well inside it. */
export const TEAMS_DEFAULT_LIMITS: LimitSettings = { ratePerSecond: 1, burst: 4, concurrency: 4 };

/**
 * A workflow URL: https on Azure Logic Apps or Power Platform hosts, with a /workflows/ path. A host in
 * CANDOR_WEBHOOK_ALLOW_HOSTS (tests, private networks) stands in for Microsoft's host and scheme only:
 * the path must still be a workflow's.
 */
export function isTeamsWorkflowUrl(url: URL, allowHosts: readonly string[]): boolean {
  if (!url.pathname.includes('/workflows/') || url.username || url.password) return false;
  if (allowHosts.includes(url.host) || allowHosts.includes(url.hostname)) return true;
  const host = url.hostname.toLowerCase();
  return url.protocol === 'https:' && (host.endsWith('.logic.azure.com') || host.endsWith('.api.powerplatform.com'));
}

export const checkTeamsWebhookUrl = (raw: string, policy: Parameters<typeof checkChatWebhookUrl>[1]) =>
  checkChatWebhookUrl(
    raw,
    policy,
    isTeamsWorkflowUrl,
    'Enter a Microsoft Teams Workflows webhook URL: in Teams, add the workflow "Post to a channel when a webhook request is received" and copy its URL (https://….logic.azure.com/workflows/… or …powerplatform.com/…/workflows/…).',
  );

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** The Adaptive Card of a message: title, paragraphs, small print, and the links as buttons. */
export function teamsPayload(message: ChatMessage): Record<string, unknown> {
  const body: Record<string, unknown>[] = [
    { type: 'TextBlock', text: clip(message.title, 300), weight: 'Bolder', size: 'Medium', wrap: true },
    ...message.paragraphs.map((text) => ({ type: 'TextBlock', text: clip(text, 4000), wrap: true })),
    ...message.footer.map((text) => ({ type: 'TextBlock', text: clip(text, 1000), wrap: true, isSubtle: true, size: 'Small' })),
  ];
  const actions = message.links.slice(0, 5).map((l) => ({ type: 'Action.OpenUrl', title: clip(l.text, 100), url: l.url }));
  return {
    type: 'message',
    summary: clip(message.fallback, 200),
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body,
          ...(actions.length > 0 ? { actions } : {}),
        },
      },
    ],
  };
}

export class TeamsChannel extends ChatWebhookChannel {
  readonly name = 'teams' as const;
  protected readonly provider = 'Teams';

  constructor(allowHosts: readonly string[], limits: Partial<LimitSettings> = {}) {
    super(allowHosts, TEAMS_DEFAULT_LIMITS, limits);
  }

  protected accepts(url: URL): boolean {
    return isTeamsWorkflowUrl(url, this.allowHosts);
  }

  protected payload(message: ChatMessage): Record<string, unknown> {
    return teamsPayload(message);
  }
}
