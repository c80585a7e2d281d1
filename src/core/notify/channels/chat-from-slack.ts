/**
 * Microsoft Teams and Discord take Markdown-ish chat messages with a title, paragraphs and links,
 * much like Slack's. Rather than a third and fourth renderer in every message module, their channels
 * build their payloads from the notification's Slack content (which every message to a chat has):
 * this module reads it into one neutral shape. Slack mrkdwn is escaped (&amp; &lt; &gt;) and links
 * are `<url|text>`; the result has CommonMark links `[text](url)`, `**bold**`, and plain text
 * unescaped. Which channels have content for a notification is decided here too (`contentFor`).
 */
import type { KnownBlock } from '@slack/web-api';
import type { ChannelName, NotificationContent, SlackContent } from '../types.ts';

export interface ChatMessage {
  /** the header's text (or the fallback text when there is no header) */
  title: string;
  /** Markdown paragraphs, in order */
  paragraphs: string[];
  /** small print: components, phase, window (plain text) */
  footer: string[];
  /** the message's links (incident page, manage subscription, …), first first */
  links: { text: string; url: string }[];
  /** one line for previews and notifications */
  fallback: string;
}

const unescapeSlack = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Slack mrkdwn → CommonMark-ish Markdown, collecting the links it names. */
export function markdownFromMrkdwn(mrkdwn: string, links: ChatMessage['links'] = []): string {
  const withLinks = mrkdwn.replace(/<((?:https?|mailto):[^|>\s]+)(?:\|([^>]*))?>/g, (_m, url: string, text: string | undefined) => {
    const label = unescapeSlack(text ?? url);
    const href = unescapeSlack(url);
    if (!links.some((l) => l.url === href)) links.push({ text: label, url: href });
    return `[${label.replace(/[[\]]/g, '')}](${href.replace(/[()\s]/g, encodeURIComponent)})`;
  });
  // *bold* → **bold** (Slack's single asterisks; a lone asterisk stays)
  return unescapeSlack(withLinks.replace(/(^|[\s(])\*([^*\n]+)\*(?=[\s).,:;!?]|$)/g, '$1**$2**'));
}

function textOf(element: unknown, links: ChatMessage['links']): string {
  if (!element || typeof element !== 'object') return '';
  const e = element as { type?: string; text?: string };
  if (typeof e.text !== 'string') return '';
  return e.type === 'mrkdwn' ? markdownFromMrkdwn(e.text, links) : e.text;
}

export function chatMessageFromSlack(content: SlackContent): ChatMessage {
  const links: ChatMessage['links'] = [];
  let title = '';
  const paragraphs: string[] = [];
  const footer: string[] = [];
  for (const block of content.blocks as (KnownBlock & Record<string, unknown>)[]) {
    if (block.type === 'header') title ||= textOf(block.text, links);
    else if (block.type === 'section') {
      const text = textOf(block.text, links);
      if (text) paragraphs.push(text);
      const fields = Array.isArray(block.fields) ? (block.fields as unknown[]) : [];
      if (fields.length > 0) paragraphs.push(fields.map((f) => textOf(f, links)).join('\n'));
    } else if (block.type === 'context') {
      const elements = Array.isArray(block.elements) ? (block.elements as unknown[]) : [];
      for (const element of elements) {
        const text = textOf(element, links);
        // a context line that is only a link is carried by `links`
        if (text && !/^\[[^\]]*\]\([^)]*\)( · .*)?$/.test(text)) footer.push(text);
      }
    }
  }
  const fallback = unescapeSlack(content.text);
  return { title: title || fallback, paragraphs, footer, links, fallback };
}

/** The recipient's own link to manage or leave the subscription, after the message's links. */
export function withManageLink(message: ChatMessage, manage: string | null): ChatMessage {
  if (!manage || message.links.some((l) => l.url === manage)) return message;
  return { ...message, links: [...message.links, { text: 'Manage subscription', url: manage }] };
}

/** Channels whose messages are built from another channel's content. */
const DERIVED: Partial<Record<ChannelName, keyof NotificationContent>> = { teams: 'slack', discord: 'slack' };

/** The content a channel sends for this notification, if it has any: Teams and Discord send the Slack content. */
export function contentFor(content: NotificationContent, channel: ChannelName): NotificationContent[keyof NotificationContent] {
  // a channel not derived from another has content of its own, under its name
  return content[DERIVED[channel] ?? (channel as keyof NotificationContent)];
}
