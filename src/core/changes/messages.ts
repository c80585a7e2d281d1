/**
 * What a change notice says on every channel. A subprocessor notice names
 * the change, the legal entity and contact, purpose, data categories,
 * location and transfer mechanism, the effective date, the objection
 * deadline and how to object, and links the current list. The objection
 * link differs per recipient: the content carries OBJECTION_PLACEHOLDER,
 * which the engine replaces with each recipient's signed link.
 */
import type { KnownBlock } from '@slack/web-api';
import { locationLabel } from '../content/locations.ts';
import { escapeSlack, renderMarkdown, renderSlackMrkdwn, slackUrl } from '../incidents/markdown.ts';
import type { NotificationContent } from '../notify/types.ts';
import { escapeHtml } from '../text/escape.ts';
import { type ContentDiff, fieldLabels, type StoredSubprocessor, upgradeDiff } from './diff.ts';

/** Replaced per recipient by the engine (notify/links.ts); never written by staff (stripped from their text). */
export const objectionPlaceholder = (noticeId: number) => `{{objection:${noticeId}}}`;
export const OBJECTION_PLACEHOLDER = /\{\{objection:(\d+)\}\}/g;

export interface NoticeMessageInput {
  organisation: string;
  noticeId: number;
  diff: ContentDiff;
  intro: string;
  /** YYYY-MM-DD */
  effectiveOn: string;
  objectionDeadline: string | null;
  /** the public page of the list or doc */
  listUrl: string;
  changesUrl: string;
}

const changeWords = {
  subprocessor: { added: 'New subprocessor', removed: 'Subprocessor removed', changed: 'Subprocessor change' },
  doc: { added: 'New document', removed: 'Document withdrawn', changed: 'Document updated' },
} as const;

export function noticeHeading(diff: Pick<ContentDiff, 'subject' | 'change' | 'name'>): string {
  return `${changeWords[diff.subject][diff.change]}: ${diff.name}`;
}

/** "Tue, 22 Dec 2026" */
export function longDate(day: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).format(
    new Date(`${day}T00:00:00Z`),
  );
}

const valueText = (value: unknown) => (Array.isArray(value) ? value.join(', ') : String(value ?? ''));

/** The facts of the notice as label/value pairs, plain text. */
export function noticeFacts(
  input: Pick<NoticeMessageInput, 'diff' | 'effectiveOn' | 'objectionDeadline'>,
): { label: string; value: string }[] {
  const diff = upgradeDiff(input.diff);
  const facts: { label: string; value: string }[] = [];
  if (diff.subject === 'subprocessor') {
    const s = (diff.after ?? diff.before) as StoredSubprocessor;
    facts.push({
      label: 'Change',
      value:
        diff.change === 'changed'
          ? `Changed: ${diff.fields.map((f) => fieldLabels[f] ?? f).join(', ')}`
          : diff.change === 'added'
            ? 'Added'
            : 'Removed',
    });
    facts.push({ label: 'Legal entity', value: s.entity });
    if (s.contact) facts.push({ label: 'Contact', value: s.contact });
    facts.push({ label: 'Purpose', value: s.purpose });
    facts.push({ label: 'Data categories', value: s.dataCategories.join(', ') });
    facts.push({ label: 'Location', value: locationLabel(s) });
    facts.push({ label: 'Transfer mechanism', value: s.transferMechanism });
    if (diff.change === 'changed' && diff.before) {
      for (const field of diff.fields.filter((f) => f !== 'since')) {
        facts.push({
          label: `${fieldLabels[field] ?? field} before`,
          value: field === 'location' ? locationLabel(diff.before) : valueText((diff.before as unknown as Record<string, unknown>)[field]),
        });
      }
    }
  } else {
    facts.push({ label: 'Change', value: diff.change === 'changed' ? 'Updated' : diff.change === 'added' ? 'Published' : 'Withdrawn' });
    if (diff.change === 'changed' && diff.sections.length) facts.push({ label: 'Sections changed', value: diff.sections.join('; ') });
  }
  facts.push({ label: 'Effective', value: longDate(input.effectiveOn) });
  if (input.objectionDeadline) facts.push({ label: 'Objections by', value: longDate(input.objectionDeadline) });
  return facts;
}

/** Staff text never carries an objection placeholder: only the engine writes one. */
export const stripPlaceholders = (text: string): string => text.replace(/\{\{\s*objection[^}]*\}\}/gi, '');

export function noticeMessages(input: NoticeMessageInput): NotificationContent {
  const heading = noticeHeading(input.diff);
  const facts = noticeFacts(input);
  const intro = renderMarkdown(stripPlaceholders(input.intro));
  const objection = input.objectionDeadline ? objectionPlaceholder(input.noticeId) : null;
  const e = escapeHtml;
  const objectLine = input.objectionDeadline ? `To object, tell us why by ${longDate(input.objectionDeadline)}:` : null;
  const kindTag = input.diff.subject === 'subprocessor' ? 'Subprocessor notice' : 'Document notice';

  const html = [
    `<h1>${e(heading)}</h1>`,
    `<div>${intro.html}</div>`,
    '<table cellpadding="6" cellspacing="0" border="1"><tbody>',
    ...facts.map((f) => `<tr><th align="left" scope="row">${e(f.label)}</th><td>${e(f.value)}</td></tr>`),
    '</tbody></table>',
    ...(objection && objectLine ? [`<p>${e(objectLine)} <a href="${objection}">file an objection</a>.</p>`] : []),
    `<p><a href="${e(input.listUrl)}">${input.diff.subject === 'subprocessor' ? 'The current subprocessor list' : 'Read the document'}</a> · <a href="${e(input.changesUrl)}">All changes</a></p>`,
  ].join('\n');
  const text = [
    heading,
    intro.text,
    facts.map((f) => `${f.label}: ${f.value}`).join('\n'),
    ...(objection && objectLine ? [`${objectLine} ${objection}`] : []),
    `${input.diff.subject === 'subprocessor' ? 'The current subprocessor list' : 'The document'}: ${input.listUrl}`,
  ].join('\n\n');

  const effective = `effective ${input.effectiveOn}`;
  const sms = {
    body: `${input.organisation} - ${kindTag}: ${heading}, ${effective}.${input.objectionDeadline ? ` Object by ${input.objectionDeadline}:` : ''}`,
    link: objection ?? input.listUrl,
  };

  const plain = (t: string) => ({ type: 'plain_text' as const, text: t.slice(0, 150), emoji: false });
  const blocks: KnownBlock[] = [
    { type: 'header', text: plain(heading) },
    ...(intro.text
      ? [
          {
            type: 'section',
            text: { type: 'mrkdwn', text: renderSlackMrkdwn(stripPlaceholders(input.intro)).slice(0, 3000), verbatim: true },
          } satisfies KnownBlock,
        ]
      : []),
    {
      type: 'section',
      fields: facts.slice(0, 10).map((f) => ({
        type: 'mrkdwn' as const,
        text: `*${escapeSlack(f.label)}*\n${escapeSlack(f.value).slice(0, 1900)}`,
        verbatim: true,
      })),
    },
    {
      type: 'context',
      elements: [
        ...(objection
          ? [
              {
                type: 'mrkdwn' as const,
                text: `<${objection}|File an objection> by ${escapeSlack(input.objectionDeadline ?? '')}`,
                verbatim: true,
              },
            ]
          : []),
        {
          type: 'mrkdwn',
          text: `<${slackUrl(input.listUrl)}|Current list> · <${slackUrl(input.changesUrl)}|All changes>`,
          verbatim: true,
        },
      ],
    },
  ];

  return {
    email: { subject: `[${kindTag}] ${heading} (effective ${longDate(input.effectiveOn)})`, html: `${html}\n`, text: `${text}\n` },
    sms,
    slack: { text: escapeSlack(`[${kindTag}] ${heading}, ${effective}`), blocks },
    webhook: {
      type: input.diff.subject === 'subprocessor' ? 'subprocessor.notice' : 'document.notice',
      data: {
        notice: {
          id: input.noticeId,
          subject: input.diff.subject,
          change: input.diff.change,
          name: input.diff.name,
          effectiveOn: input.effectiveOn,
          objectionDeadline: input.objectionDeadline,
          objectionUrl: objection,
          introText: intro.text,
          // a document's text is on its page; a subprocessor's entry is small enough to carry whole
          ...(input.diff.subject === 'subprocessor'
            ? { subprocessorId: input.diff.id, before: input.diff.before, after: input.diff.after, fields: input.diff.fields }
            : { slug: input.diff.id, sections: input.diff.sections }),
          url: input.changesUrl,
        },
      },
    },
  };
}
