/**
 * Discord through a channel webhook (`https://discord.com/api/webhooks/<id>/<token>`): the URL is the
 * credential. The message is one embed (title, description, link, small print) built from the
 * notification's Slack content (chat-from-slack.ts), with `allowed_mentions: { parse: [] }` so no
 * text in it can ping @everyone, a role or a user. Posted with `?wait=true`, Discord answers with the
 * message, whose id is kept. 429 carries Retry-After (and `retry_after` in seconds in the body); an
 * unknown webhook (404, code 10015) or a bad token (401) suppresses the address (chat-webhook.ts).
 */
import type { Channel, LimitSettings, SendJob, SendResult, SlackContent } from '../types.ts';
import { type ChatMessage, chatMessageFromSlack, withManageLink } from './chat-from-slack.ts';
import { postChatWebhook, webhookLimitKey } from './chat-webhook.ts';

/** Discord allows a webhook 5 requests in 2 seconds (its X-RateLimit headers); stay under it. */
export const DISCORD_DEFAULT_LIMITS: LimitSettings = { ratePerSecond: 2, burst: 4, concurrency: 2 };

const HOSTS = new Set(['discord.com', 'discordapp.com', 'ptb.discord.com', 'canary.discord.com']);
const PATH = /^\/api(?:\/v\d+)?\/webhooks\/\d{1,25}\/[\w-]{20,100}\/?$/;

/** A Discord webhook URL: https on Discord's hosts with /api/webhooks/<id>/<token> (or a host allowed for tests). */
export function isDiscordWebhookUrl(url: URL, allowHosts: readonly string[]): boolean {
  if (allowHosts.includes(url.host) || allowHosts.includes(url.hostname)) return /\/webhooks\/\d+\/[\w-]+\/?$/.test(url.pathname);
  return url.protocol === 'https:' && !url.username && !url.password && HOSTS.has(url.hostname.toLowerCase()) && PATH.test(url.pathname);
}

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

export class DiscordChannel implements Channel {
  readonly name = 'discord' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits: LimitSettings;
  private readonly allowHosts: readonly string[];

  constructor(allowHosts: readonly string[], limits: Partial<LimitSettings> = {}) {
    this.allowHosts = allowHosts;
    this.limits = { ...DISCORD_DEFAULT_LIMITS, ...limits };
  }

  limitKey(job: SendJob): string {
    return webhookLimitKey(job.address);
  }

  send(jobs: SendJob[]): Promise<SendResult[]> {
    return Promise.all(jobs.map((job) => this.sendOne(job)));
  }

  private async sendOne(job: SendJob): Promise<SendResult> {
    const started = performance.now();
    const done = (r: Omit<SendResult, 'deliveryId' | 'durationMs'>): SendResult => ({
      deliveryId: job.deliveryId,
      durationMs: performance.now() - started,
      ...r,
    });
    const content: SlackContent | undefined = job.content.slack;
    if (!content) return done({ outcome: 'failed', error: 'no chat content' });
    let url: URL;
    try {
      url = new URL(job.address);
    } catch {
      return done({ outcome: 'suppressed', providerCode: 'bad_url', error: 'the address is not a URL' });
    }
    if (!isDiscordWebhookUrl(url, this.allowHosts))
      return done({ outcome: 'suppressed', providerCode: 'bad_url', error: 'not a Discord webhook URL' });
    url.searchParams.set('wait', 'true');
    return done(
      await postChatWebhook(
        url.href,
        discordPayload(withManageLink(chatMessageFromSlack(content), job.links.manage)),
        'Discord',
        messageId,
        retryAfterBody,
      ),
    );
  }
}
