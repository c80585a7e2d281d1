/**
 * Discord through a channel webhook (`https://discord.com/api/webhooks/<id>/<token>`): the URL is the
 * credential. The message is one embed (title, description, link, small print) built from the
 * notification's Slack content (chat-from-slack.ts), with `allowed_mentions: { parse: [] }` so no
 * text in it can ping @everyone, a role or a user. Posted with `?wait=true`, Discord answers with the
 * message, whose id is kept. 429 carries Retry-After (and `retry_after` in seconds in the body); an
 * unknown webhook (404, code 10015) or a bad token (401) suppresses the address (chat-webhook.ts).
 */
import type { LimitSettings } from '../types.ts';
import type { ChatMessage } from './chat-from-slack.ts';
import { ChatWebhookChannel, checkChatWebhookUrl } from './chat-webhook.ts';

/** Discord allows a webhook 5 requests in 2 seconds (its X-RateLimit headers); stay under it. */
export const DISCORD_DEFAULT_LIMITS: LimitSettings = { ratePerSecond: 2, burst: 4, concurrency: 2 };

const HOSTS = new Set(['discord.com', 'discordapp.com', 'ptb.discord.com', 'canary.discord.com']);
const PATH = /^\/api(?:\/v\d+)?\/webhooks\/\d{1,25}\/[\w-]{20,100}\/?$/;

/**
 * A Discord webhook URL: https on Discord's hosts with /api/webhooks/<id>/<token>. A host in
 * CANDOR_WEBHOOK_ALLOW_HOSTS (tests, private networks) stands in for Discord's host and scheme only:
 * the path must still be a webhook's.
 */
export function isDiscordWebhookUrl(url: URL, allowHosts: readonly string[]): boolean {
  if (!PATH.test(url.pathname) || url.username || url.password) return false;
  if (allowHosts.includes(url.host) || allowHosts.includes(url.hostname)) return true;
  return url.protocol === 'https:' && HOSTS.has(url.hostname.toLowerCase());
}

export const checkDiscordWebhookUrl = (raw: string, policy: Parameters<typeof checkChatWebhookUrl>[1]) =>
  checkChatWebhookUrl(
    raw,
    policy,
    isDiscordWebhookUrl,
    'Enter a Discord webhook URL: it starts with https://discord.com/api/webhooks/ followed by two parts.',
  );

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** Discord's limits: title 256, description 4096, footer 2048, and 6000 characters in all. */
export function discordPayload(message: ChatMessage): Record<string, unknown> {
  const title = clip(message.title, 256);
  const footer = clip(message.footer.join(' · '), 1000);
  const description = clip(message.paragraphs.join('\n\n'), Math.min(4096, 5900 - title.length - footer.length));
  const link = message.links[0]?.url;
  return {
    embeds: [
      {
        title,
        description,
        ...(link ? { url: link } : {}),
        ...(footer ? { footer: { text: footer } } : {}),
      },
    ],
    allowed_mentions: { parse: [] },
  };
}

const messageId = (body: string): string | null => {
  try {
    const id = (JSON.parse(body) as { id?: unknown }).id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
};

const retryAfterBody = (body: string): number | null => {
  try {
    const seconds = (JSON.parse(body) as { retry_after?: unknown }).retry_after;
    return typeof seconds === 'number' && seconds >= 0 ? Math.ceil(seconds * 1000) : null;
  } catch {
    return null;
  }
};

export class DiscordChannel extends ChatWebhookChannel {
  readonly name = 'discord' as const;
  protected readonly provider = 'Discord';

  constructor(allowHosts: readonly string[], limits: Partial<LimitSettings> = {}) {
    super(allowHosts, DISCORD_DEFAULT_LIMITS, limits);
  }

  protected accepts(url: URL): boolean {
    return isDiscordWebhookUrl(url, this.allowHosts);
  }

  protected payload(message: ChatMessage): Record<string, unknown> {
    return discordPayload(message);
  }

  protected override target(url: URL): URL {
    const withWait = new URL(url);
    withWait.searchParams.set('wait', 'true');
    return withWait;
  }

  protected override readId(body: string): string | null {
    return messageId(body);
  }

  protected override retryAfterFromBody(body: string): number | null {
    return retryAfterBody(body);
  }
}
