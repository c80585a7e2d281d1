/**
 * What a free-form announcement says on every channel: its title, its
 * markdown body (rendered by the same safe renderer as incident updates),
 * its effective date when it has one, and a link to the changelog. It
 * carries no objection link: only subprocessor notices give customers a say,
 * and any objection placeholder typed into the text is removed.
 */
import type { KnownBlock } from '@slack/web-api';
import { escapeSlack, renderMarkdown, renderSlackMrkdwn, slackUrl } from '../incidents/markdown.ts';
import { firstSentence } from '../incidents/messages.ts';
import type { NotificationContent } from '../notify/types.ts';
import { escapeHtml } from '../text/escape.ts';
import { longDate, stripPlaceholders } from './messages.ts';

export interface AnnouncementMessageInput {
  organisation: string;
  /** null: not saved yet (a preview) */
  id: number | null;
  title: string;
  /** markdown */
  body: string;
  /** YYYY-MM-DD or null */
  effectiveOn: string | null;
  topics: readonly string[];
  /** the announcement on /changes */
  changesUrl: string;
}

const TAG = 'Announcement';
/** Slack's limits: header 150 characters, section text 3000. */
const HEADER_MAX = 150;
const SECTION_MAX = 3000;

/** The title as one line of plain text. */
const oneLine = (value: string) => value.replace(/\s+/g, ' ').trim();

export function announcementMessages(input: AnnouncementMessageInput): NotificationContent {
  const title = oneLine(input.title);
  const source = stripPlaceholders(input.body);
  const body = renderMarkdown(source);
  const effective = input.effectiveOn ? `Effective ${longDate(input.effectiveOn)}.` : null;
  const e = escapeHtml;

  const html = [
    `<h1>${e(title)}</h1>`,
    `<div>${body.html}</div>`,
    ...(effective ? [`<p><strong>${e(effective)}</strong></p>`] : []),
    `<p><a href="${e(input.changesUrl)}">All changes</a></p>`,
  ].join('\n');
  const text = [title, body.text, ...(effective ? [effective] : []), `All changes: ${input.changesUrl}`].join('\n\n');

  const sentence = firstSentence(body.text);
  const smsHead = `${oneLine(input.organisation)} - ${TAG}: ${title}${input.effectiveOn ? ` (effective ${input.effectiveOn})` : ''}.`;

  const mrkdwn = renderSlackMrkdwn(source);
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: title.slice(0, HEADER_MAX), emoji: false } },
    ...(mrkdwn
      ? [{ type: 'section', text: { type: 'mrkdwn', text: mrkdwn.slice(0, SECTION_MAX), verbatim: true } } satisfies KnownBlock]
      : []),
    {
      type: 'context',
      elements: [
        ...(effective ? [{ type: 'mrkdwn' as const, text: escapeSlack(effective), verbatim: true }] : []),
        { type: 'mrkdwn', text: `<${slackUrl(input.changesUrl)}|All changes>`, verbatim: true },
      ],
    },
  ];

  return {
    email: {
      subject: `[${TAG}] ${title}${input.effectiveOn ? ` (effective ${longDate(input.effectiveOn)})` : ''}`,
      html: `${html}\n`,
      text: `${text}\n`,
    },
    sms: { body: sentence ? `${smsHead} ${sentence}` : smsHead, link: input.changesUrl },
    slack: { text: escapeSlack(`[${TAG}] ${title}`), blocks },
    webhook: {
      type: 'announcement.published',
      data: {
        announcement: {
          id: input.id,
          title,
          topics: [...input.topics],
          effectiveOn: input.effectiveOn,
          text: body.text,
          url: input.changesUrl,
        },
      },
    },
  };
}
