/**
 * A logged message as its channel would show it: the email's subject, HTML
 * (reduced to safe structure) and text; the SMS exactly as it would be sent,
 * with its segment count; Slack's blocks with their mrkdwn read into marks
 * and links; a webhook's JSON. Text is returned as runs (plain, marked or
 * linked) for the page to escape, never as markup, except the email's HTML,
 * which passes an allow-list sanitiser first.
 */
import sanitizeHtml from 'sanitize-html';
import { countSegments, fitSms, type SegmentCount } from './sms.ts';
import type { ChannelName } from './types.ts';

export type Run = { text: string } | { text: string; href: string } | { text: string; mark: 'strong' | 'em' | 'code' | 'del' };

export interface SlackBlockView {
  kind: 'header' | 'section' | 'context' | 'divider' | 'other';
  runs: Run[];
}

export type LoggedView =
  | { channel: 'email'; subject: string; headers: [string, string][]; html: string; text: Run[] }
  | { channel: 'sms'; text: string; runs: Run[]; segments: SegmentCount; characters: number }
  | { channel: 'slack'; fallback: string; blocks: SlackBlockView[]; root: SlackBlockView[] | null }
  | { channel: 'webhook' | 'other'; json: string };

const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"]+/g;

/** Punctuation that ends a sentence after a link belongs to the sentence; a closing bracket only when the link opened none. */
function trimUrl(url: string): string {
  let trimmed = url.replace(/[.,;:!?]+$/, '');
  for (const [open, close] of [
    ['(', ')'],
    ['[', ']'],
  ] as const) {
    while (trimmed.endsWith(close) && trimmed.split(open).length < trimmed.split(close).length) trimmed = trimmed.slice(0, -1);
  }
  return trimmed === url ? url : trimUrl(trimmed);
}

/** Plain text with its http(s) links made into link runs. */
export function linkify(text: string): Run[] {
  const runs: Run[] = [];
  let at = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const url = trimUrl(match[0]);
    const start = match.index;
    if (start > at) runs.push({ text: text.slice(at, start) });
    runs.push({ text: url, href: url });
    at = start + url.length;
  }
  if (at < text.length) runs.push({ text: text.slice(at) });
  return runs;
}

const decodeSlack = (text: string) => text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
const MARKS: Record<string, 'strong' | 'em' | 'code' | 'del'> = { '*': 'strong', _: 'em', '`': 'code', '~': 'del' };
const MARKED = /(\*[^*\n]+\*|_[^_\n]+_|`[^`\n]+`|~[^~\n]+~)/;
const SLACK_LINK = /<([^<>|]+)(?:\|([^<>]*))?>/g;

/** Slack mrkdwn (what src/core/incidents/markdown.ts writes) as runs: `<url|label>` links, *bold*, _italic_, `code`, ~strike~. */
export function slackRuns(mrkdwn: string): Run[] {
  const runs: Run[] = [];
  const marks = (segment: string) => {
    for (const part of segment.split(MARKED)) {
      if (!part) continue;
      const mark = part.length > 2 ? MARKS[part[0] ?? ''] : undefined;
      if (mark && part.endsWith(part[0] ?? '')) runs.push({ text: decodeSlack(part.slice(1, -1)), mark });
      else runs.push({ text: decodeSlack(part) });
    }
  };
  let at = 0;
  for (const match of mrkdwn.matchAll(SLACK_LINK)) {
    marks(mrkdwn.slice(at, match.index));
    const target = decodeSlack(match[1] ?? '');
    const label = decodeSlack(match[2] ?? target);
    if (/^https?:\/\//i.test(target)) runs.push({ text: label, href: target });
    else runs.push({ text: label });
    at = match.index + match[0].length;
  }
  marks(mrkdwn.slice(at));
  return runs;
}

const record = (value: unknown): Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
const str = (value: unknown): string => (typeof value === 'string' ? value : '');

function textOf(value: unknown): string {
  const object = record(value);
  return str(object.text);
}

function slackBlocks(value: unknown): SlackBlockView[] {
  if (!Array.isArray(value)) return [];
  return value.map((raw): SlackBlockView => {
    const block = record(raw);
    const type = str(block.type);
    if (type === 'header') return { kind: 'header', runs: [{ text: textOf(block.text) }] };
    if (type === 'divider') return { kind: 'divider', runs: [] };
    if (type === 'section') {
      const fields = Array.isArray(block.fields) ? block.fields.map(textOf) : [];
      return { kind: 'section', runs: slackRuns([textOf(block.text), ...fields].filter(Boolean).join('\n')) };
    }
    if (type === 'context') {
      const elements = Array.isArray(block.elements) ? block.elements.map(textOf) : [];
      return { kind: 'context', runs: slackRuns(elements.join('  ')) };
    }
    return { kind: 'other', runs: [{ text: JSON.stringify(block) }] };
  });
}

/** Only structure and links survive: no styles, scripts, images or event handlers from a stored message. */
const EMAIL_HTML: sanitizeHtml.IOptions = {
  allowedTags: [
    'h1',
    'h2',
    'h3',
    'h4',
    'p',
    'div',
    'span',
    'br',
    'hr',
    'strong',
    'b',
    'em',
    'i',
    'code',
    'pre',
    'blockquote',
    'ul',
    'ol',
    'li',
    'a',
    'table',
    'thead',
    'tbody',
    'tr',
    'th',
    'td',
    'del',
  ],
  allowedAttributes: { a: ['href'] },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowProtocolRelative: false,
  // headings inside the preview are demoted so the page's own outline stays whole
  transformTags: { h1: 'h3', h2: 'h4', h3: 'h4', a: sanitizeHtml.simpleTransform('a', { rel: 'noreferrer noopener' }) },
  disallowedTagsMode: 'discard',
};

/** The view of one logged message's payload on its channel. */
export function loggedView(channel: ChannelName, payload: unknown): LoggedView {
  const p = record(payload);
  if (channel === 'email' && typeof p.subject === 'string') {
    const headers = Object.entries(record(p.headers)).map(([k, v]): [string, string] => [k, str(v)]);
    return {
      channel,
      subject: p.subject,
      headers,
      html: sanitizeHtml(str(p.html), { ...EMAIL_HTML, allowedAttributes: { a: ['href', 'rel'] } }),
      text: linkify(str(p.text)),
    };
  }
  if (channel === 'sms' && typeof p.body === 'string') {
    // as the Twilio channel sends it: shortened to two segments, ending with the link
    const text = typeof p.link === 'string' && p.link ? fitSms(p.body, p.link) : p.body;
    return { channel, text, runs: linkify(text), segments: countSegments(text), characters: [...text].length };
  }
  if (channel === 'slack' && typeof p.text === 'string') {
    const root = record(p.root);
    return { channel, fallback: p.text, blocks: slackBlocks(p.blocks), root: Array.isArray(root.blocks) ? slackBlocks(root.blocks) : null };
  }
  return { channel: channel === 'webhook' ? 'webhook' : 'other', json: JSON.stringify(payload, null, 2) };
}
