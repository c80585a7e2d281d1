/**
 * What every subscriber email carries besides its message: how to manage
 * or leave the subscription, in the body and as RFC 8058 one-click headers.
 */
import { escapeHtml } from '../../text/escape.ts';
import type { EmailContent, SendJob } from '../types.ts';

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
  headers: Record<string, string>;
}

/**
 * The subject is a header: a line break in it (an incident title typed with one reaches the staff
 * reminders' subjects) must not start another header line, whoever built the message.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this removes
const oneLine = (value: string) => value.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();

export function renderEmail(content: EmailContent, links: SendJob['links']): RenderedEmail {
  const subject = oneLine(content.subject);
  if (!links.unsubscribe || !links.manage) return { ...content, subject, headers: {} };
  const footerText = `\n\n--\nManage your subscription: ${links.manage}\nUnsubscribe: ${links.unsubscribe}\n`;
  const footerHtml = `<hr><p style="font-size:12px;color:#555">You receive this because you subscribed. <a href="${escapeHtml(links.manage)}">Manage your subscription</a> · <a href="${escapeHtml(links.unsubscribe)}">Unsubscribe</a></p>`;
  return {
    subject,
    html: `${content.html}${footerHtml}`,
    text: `${content.text}${footerText}`,
    headers: {
      'List-Unsubscribe': `<${links.unsubscribe}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
  };
}
