import type { KnownBlock } from '@slack/web-api';
import { SaxesParser } from 'saxes';
import { describe, expect, it } from 'vitest';
import { LINK_REL, renderMarkdown, renderSlackMrkdwn } from '../../src/core/incidents/markdown.ts';
import {
  firstSentence,
  type IncidentMessageInput,
  incidentMessages,
  incidentPageHtml,
  slackChunks,
} from '../../src/core/incidents/messages.ts';
import type { IncidentView, UpdateView } from '../../src/core/incidents/types.ts';
import { countSegments, fitSms } from '../../src/core/notify/sms.ts';
import type { NotificationContent } from '../../src/core/notify/types.ts';
import { XSS } from '../helpers/xss-corpus.ts';

const URL_ = 'https://trust.lumenwork.example/incidents/7';

function incident(overrides: Partial<IncidentView> = {}): IncidentView {
  return {
    id: 7,
    kind: 'outage',
    severity: 'major',
    title: 'API errors',
    status: 'identified',
    components: [
      { id: 'api', name: 'API', status: 'major_outage' },
      { id: 'dashboard', name: 'Dashboard', status: 'degraded' },
    ],
    startedAt: new Date('2026-03-03T12:40:00Z'),
    resolvedAt: null,
    window: null,
    nextUpdateBy: new Date('2026-03-03T14:00:00Z'),
    ...overrides,
  };
}

function update(overrides: Partial<UpdateView> = {}): UpdateView {
  return {
    id: 31,
    status: 'identified',
    body: 'We found the cause: a faulty deploy of the gateway. We are rolling it back.',
    publishedAt: new Date('2026-03-03T13:05:00Z'),
    ...overrides,
  };
}

function messages(overrides: Partial<IncidentMessageInput> = {}): Required<NotificationContent> {
  const m = incidentMessages({ organisation: 'Lumenwork', incident: incident(), update: update(), incidentUrl: URL_, ...overrides });
  if (!m.email || !m.sms || !m.slack || !m.webhook) throw new Error('a channel is missing');
  return { email: m.email, sms: m.sms, slack: m.slack, webhook: m.webhook };
}

// ---- strict parsing of the HTML we produce ----

interface Element {
  name: string;
  attributes: Record<string, string>;
}
interface Parsed {
  elements: Element[];
  /** all character data, decoded, in document order */
  text: string;
}

/**
 * Parses with saxes, a strict XML parser: the renderer writes XHTML-style
 * void elements, so every email/page fragment must be well-formed, and what
 * the parser sees as elements and attributes is what a browser would.
 */
function parseHtml(html: string): Parsed {
  const parser = new SaxesParser();
  const errors: string[] = [];
  const elements: Element[] = [];
  let text = '';
  parser.on('error', (e) => errors.push(e.message));
  parser.on('opentag', (tag) => {
    elements.push({ name: tag.name, attributes: Object.fromEntries(Object.entries(tag.attributes).map(([k, v]) => [k, String(v)])) });
  });
  parser.on('text', (t) => {
    text += t;
  });
  parser.write(`<fragment>${html}</fragment>`).close();
  expect(errors).toEqual([]);
  return { elements: elements.slice(1), text };
}

const ALLOWED_ELEMENTS = new Set(
  'h1 h2 h3 h4 h5 h6 p div strong em s code pre ul ol li blockquote a br hr table thead tbody tr th td'.split(' '),
);
const ALLOWED_ATTRIBUTES: Record<string, string[]> = {
  a: ['href', 'title', 'rel'],
  ol: ['start'],
  code: ['class'],
  table: ['cellpadding', 'cellspacing', 'border'],
  th: ['align', 'scope', 'style'],
  td: ['style'],
};

/** The HTML is inert: known elements only, known attributes only, links http(s)/mailto with our rel. */
function expectInertHtml(html: string): Parsed {
  expect(html).not.toMatch(/<script/i);
  expect(html).not.toMatch(/<(img|svg|iframe|object|embed|style|link|meta|form|input|math)\b/i);
  // an event handler inside a real tag (escaped text has no `<` to start one)
  expect(html).not.toMatch(/<[^>]*\son\w+\s*=/i);
  expect(html).not.toMatch(/href\s*=\s*["']?\s*(javascript|data|vbscript):/i);
  const parsed = parseHtml(html);
  for (const el of parsed.elements) {
    expect(ALLOWED_ELEMENTS, `element <${el.name}>`).toContain(el.name);
    for (const name of Object.keys(el.attributes)) {
      expect(ALLOWED_ATTRIBUTES[el.name] ?? [], `attribute ${name} on <${el.name}>`).toContain(name);
    }
    if (el.name === 'a') expect(el.attributes.href).toMatch(/^(https?:\/\/|mailto:)/);
  }
  return parsed;
}

// ---- Slack inspection ----

interface TextObject {
  type: string;
  text: string;
  verbatim?: boolean;
}
function textObjects(blocks: KnownBlock[]): TextObject[] {
  const found: TextObject[] = [];
  const walk = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') {
      const v = value as Record<string, unknown>;
      if ((v.type === 'mrkdwn' || v.type === 'plain_text') && typeof v.text === 'string') {
        found.push({ type: v.type, text: v.text, ...(typeof v.verbatim === 'boolean' ? { verbatim: v.verbatim } : {}) });
      } else Object.values(v).forEach(walk);
    }
  };
  walk(blocks);
  return found;
}

/**
 * Slack mrkdwn (and a message's `text`) in which user text cannot act: the
 * only `<…>` constructs are links to http(s)/mailto, no bare `<`/`>` remain,
 * and every `&` starts one of the three escapes.
 */
function expectInertMrkdwn(text: string): void {
  const constructs = text.match(/<[^<>]*>/g) ?? [];
  for (const c of constructs) expect(c).toMatch(/^<(https?:\/\/|mailto:)[^|<>\s]*(\|[^<>]*)?>$/);
  expect(text.replace(/<[^<>]*>/g, '')).not.toMatch(/[<>]/);
  expect(text).not.toMatch(/&(?!amp;|lt;|gt;)/);
  expect(text).not.toMatch(/<[!@#]/);
}

function expectInertSlack(slack: Required<NotificationContent>['slack']): void {
  expectInertMrkdwn(slack.text);
  expect(slack.root).toBeDefined();
  expectInertMrkdwn(slack.root?.text ?? '');
  for (const blocks of [slack.blocks, slack.root?.blocks ?? []]) {
    for (const t of textObjects(blocks)) {
      if (t.type === 'mrkdwn') {
        expectInertMrkdwn(t.text);
        // no auto-linking of bare names, channels or @-mentions in our mrkdwn
        expect(t.verbatim).toBe(true);
      }
    }
  }
}

// ---- the corpus: tests/helpers/xss-corpus.ts ----

describe('renderMarkdown', () => {
  it('escapes raw HTML instead of passing it through', () => {
    const { html, text } = renderMarkdown('Hello <b onclick="x()">there</b>');
    expect(html).toBe('<p>Hello &lt;b onclick=&quot;x()&quot;&gt;there&lt;/b&gt;</p>\n');
    expect(text).toBe('Hello <b onclick="x()">there</b>');
  });

  it('links only http, https and mailto, with rel on every link', () => {
    const { html, text } = renderMarkdown(
      '[a](https://a.example/x?y=1&z=2) [b](http://b.example) [c](mailto:ops@example.com) [d](/relative) [e](//proto.example) [f](ftp://f.example) [g](vbscript:x) https://bare.example/path',
    );
    const parsed = expectInertHtml(html);
    const hrefs = parsed.elements.filter((e) => e.name === 'a').map((e) => e.attributes.href);
    expect(hrefs).toEqual(['https://a.example/x?y=1&z=2', 'http://b.example', 'mailto:ops@example.com', 'https://bare.example/path']);
    for (const a of parsed.elements.filter((e) => e.name === 'a')) expect(a.attributes.rel).toBe(LINK_REL);
    expect(LINK_REL).toBe('nofollow noopener noreferrer');
    expect(text).toBe(
      'a (https://a.example/x?y=1&z=2) b (http://b.example) c (mailto:ops@example.com) [d](/relative) [e](//proto.example) [f](ftp://f.example) [g](vbscript:x) https://bare.example/path',
    );
  });

  it('renders images as links, never <img>', () => {
    const { html, text } = renderMarkdown('![dashboard graph](https://img.example/g.png "p99") and ![](https://img.example/bare.png)');
    expect(html).not.toContain('<img');
    const links = expectInertHtml(html).elements.filter((e) => e.name === 'a');
    expect(links.map((a) => a.attributes.href)).toEqual(['https://img.example/g.png', 'https://img.example/bare.png']);
    expect(html).toContain('>dashboard graph</a>');
    expect(text).toBe('dashboard graph (https://img.example/g.png) and https://img.example/bare.png');
    // an image inside a link keeps its words, not a nested <a>
    const nested = renderMarkdown('[![logo](https://img.example/l.png)](https://site.example)');
    expect(nested.html).toBe(`<p><a href="https://site.example" rel="${LINK_REL}">logo</a></p>\n`);
  });

  it('demotes headings below the page’s own h1 and h2', () => {
    const { html, text } = renderMarkdown('# One\n\n## Two\n\n### Three\n\n#### Four\n\n###### Six');
    expect(html).toBe('<h3>One</h3>\n<h4>Two</h4>\n<h5>Three</h5>\n<h6>Four</h6>\n<h6>Six</h6>\n');
    expect(text).toBe('One\n\nTwo\n\nThree\n\nFour\n\nSix');
  });

  it('gives readable plain text for lists, quotes, code and tables', () => {
    const md =
      '- one\n- two **bold**\n\n3. three\n4. four\n   - nested\n\n> quoted\n\n```\ncode <x>\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |';
    expect(renderMarkdown(md).text).toBe('- one\n- two bold\n\n3. three\n4. four\n   - nested\n\n> quoted\n\ncode <x>\n\na | b\n1 | 2');
    expectInertHtml(renderMarkdown(md).html);
  });

  it('writes Slack mrkdwn with user text escaped', () => {
    expect(renderSlackMrkdwn('**Bold** *em* ~~gone~~ `a<b` [docs](https://d.example/?a=1&b=2) <!channel> & co')).toBe(
      '*Bold* _em_ ~gone~ `a&lt;b` <https://d.example/?a=1&amp;b=2|docs> &lt;!channel&gt; &amp; co',
    );
    expect(renderSlackMrkdwn('# Title\n\n- a\n- b\n\n```\nx > y\n```')).toBe('*Title*\n\n• a\n• b\n\n```\nx &gt; y\n```');
  });
});

describe('XSS corpus, every channel', () => {
  for (const payload of XSS) {
    it(`renders "${payload.name}" inert`, () => {
      // in the body and in the title, where staff could put it too
      const m = messages({
        incident: incident({ title: `Outage ${payload.body}` }),
        update: update({ body: `${payload.body}\n\nMore to follow.` }),
      });

      // email HTML: strict parse, allowlisted elements and attributes, the payload visible as text
      const parsed = expectInertHtml(m.email.html);
      expect(parsed.text).toContain(payload.visible);
      expect(parsed.text).toContain(`Outage ${payload.body}`);
      // the public page shows the same HTML as the email
      const page = incidentPageHtml(update({ body: `${payload.body}\n\nMore to follow.` }));
      expect(m.email.html).toContain(page);
      expectInertHtml(page);

      // email text part: plain text, none of the markup we generate
      expect(m.email.text).not.toMatch(/<\/?(p|em|strong|ul|li|h\d|div|table)>|rel="nofollow/);
      expect(m.email.text).toContain(`Outage ${payload.body}`);
      expect(m.email.subject).not.toMatch(/[\r\n]/);

      // Slack: only our own links are `<…>`; mentions and link syntax from users are escaped
      expectInertSlack(m.slack);

      // SMS: the plain-text rendering (never the HTML one, nor HTML-escaped), within two segments once the link is added
      expect(m.sms.body).toBe(
        `Lumenwork - Major outage: Outage ${payload.body} (Identified). ${firstSentence(renderMarkdown(`${payload.body}\n\nMore to follow.`).text)}`,
      );
      expect(m.sms.body).not.toMatch(/rel="nofollow|<\/p>/);
      expect(countSegments(fitSms(m.sms.body, m.sms.link)).segments).toBeLessThanOrEqual(2);

      // webhook: JSON carries the markdown verbatim; bodyText is the plain-text rendering, not HTML
      const roundTrip = JSON.parse(JSON.stringify(m.webhook)) as typeof m.webhook;
      expect(roundTrip).toEqual(m.webhook);
      const data = roundTrip.data as { update: { body: string; bodyText: string }; incident: { title: string } };
      expect(data.update.body).toBe(`${payload.body}\n\nMore to follow.`);
      expect(data.incident.title).toBe(`Outage ${payload.body}`);
      expect(data.update.bodyText).toBe(renderMarkdown(data.update.body).text);
      expect(data.update.bodyText).not.toMatch(/<\/?(p|em|strong|ul|li|h\d|div)>|rel="nofollow|<a href="(?!https:\/\/evil\.example">win)/);
    });
  }

  it('never links javascript:, data: or relative URLs anywhere', () => {
    const m = messages({
      update: update({ body: XSS.map((x) => x.body).join('\n\n') }),
    });
    const hrefs = parseHtml(m.email.html)
      .elements.filter((e) => e.name === 'a')
      .map((e) => e.attributes.href);
    expect(hrefs.every((h) => h && /^(https?:\/\/|mailto:)/.test(h))).toBe(true);
    // the raw anchor stays text; linkify may link the URL inside it, but only ever labelled with the URL itself
    expect(m.email.html).not.toMatch(/>win<\/a>/);
    expect(m.email.html).toContain(`<a href="https://evil.example" rel="${LINK_REL}">https://evil.example</a>`);
    // a link would read "label (url)" in text; these stay the literal markdown the author wrote
    expect(m.email.text).not.toMatch(/\w \((javascript|data|vbscript):/i);
    expect(m.email.text).toContain('[click](javascript:alert(1))');
    expectInertSlack(m.slack);
  });

  it('keeps Slack mentions and formatting from user text out of mrkdwn', () => {
    const m = messages({
      incident: incident({ title: '*URGENT* <!channel> <@U123>', components: [{ id: 'api', name: '<!here> _API_', status: 'degraded' }] }),
      update: update({ body: 'Ping <!channel> and <@U123>. *emphasis* **strong**' }),
    });
    expectInertSlack(m.slack);
    const objects = [...textObjects(m.slack.blocks), ...textObjects(m.slack.root?.blocks ?? [])];
    // titles and component names only ever appear in plain_text, which Slack does not parse
    for (const t of objects.filter((o) => o.type === 'mrkdwn')) {
      expect(t.text).not.toContain('URGENT');
      expect(t.text).not.toContain('_API_');
    }
    expect(objects.some((o) => o.type === 'plain_text' && o.text.includes('*URGENT* <!channel> <@U123>'))).toBe(true);
    const body = objects.find((o) => o.type === 'mrkdwn' && o.text.includes('Ping'));
    expect(body?.text).toBe('Ping &lt;!channel&gt; and &lt;@U123&gt;. _emphasis_ *strong*');
    expect(m.slack.text).toBe(
      '[Degraded performance] *URGENT* &lt;!channel&gt; &lt;@U123&gt; — Identified: Ping &lt;!channel&gt; and &lt;@U123&gt;.',
    );
  });
});

describe('incidentMessages', () => {
  it('words the subject by kind, the worst state declared and status', () => {
    const subject = (i: Partial<IncidentView>, u: Partial<UpdateView> = {}) =>
      messages({ incident: incident(i), update: update(u) }).email.subject;
    expect(subject({})).toBe('[Major outage] API errors — Identified');
    expect(subject({ severity: 'critical' }, { status: 'investigating' })).toBe('[Major outage] API errors — Investigating');
    expect(subject({ severity: 'minor' }, { status: 'monitoring' })).toBe('[Major outage] API errors — Monitoring');
    expect(subject({ kind: 'maintenance', title: 'Database upgrade' })).toBe('[Scheduled maintenance] Database upgrade — Identified');
    // sober: no severity adjective on security incidents or breaches
    expect(subject({ kind: 'security', severity: 'critical', title: 'Suspicious access to support tooling' })).toBe(
      '[Security incident] Suspicious access to support tooling — Identified',
    );
    expect(subject({ kind: 'breach', severity: 'critical', title: 'Exposure of support tickets' }, { status: 'investigating' })).toBe(
      '[Data breach notice] Exposure of support tickets — Investigating',
    );
    expect(subject({ status: 'resolved', resolvedAt: new Date('2026-03-03T15:20:00Z') }, { status: 'resolved' })).toBe(
      '[Major outage] API errors — Resolved',
    );
    // a line break in a title cannot start a new header line
    expect(subject({ title: 'API\r\nBcc: victim@example.com' })).toBe('[Major outage] API Bcc: victim@example.com — Identified');
  });

  it('names the worst state the services are in, never the severity (issue 14)', () => {
    const slow = [
      { id: 'api', name: 'API', status: 'degraded' as const },
      { id: 'dashboard', name: 'Dashboard', status: 'operational' as const },
    ];
    // a "major" incident that only slowed the API down
    const degraded = messages({ incident: incident({ severity: 'major', components: slow }) });
    expect(degraded.email.subject).toBe('[Degraded performance] API errors — Identified');
    expect(degraded.sms.body.startsWith('Lumenwork - Degraded performance: API errors (Identified).')).toBe(true);
    expect(degraded.slack.text.startsWith('[Degraded performance] API errors — Identified')).toBe(true);
    expect(degraded.slack.root?.text).toBe('[Degraded performance] API errors — Identified');
    expect(textObjects(degraded.slack.root?.blocks ?? []).map((t) => t.text)).toContain('Degraded performance: API errors');
    const partial = messages({
      incident: incident({ severity: 'critical', components: [{ id: 'api', name: 'API', status: 'partial_outage' }] }),
    });
    expect(partial.email.subject).toBe('[Partial outage] API errors — Identified');
    // a minor incident that took a service down says so
    expect(messages({ incident: incident({ severity: 'minor' }) }).email.subject).toBe('[Major outage] API errors — Identified');

    // every service restored (or the incident resolved): the worst state the incident declared
    const restored = [{ id: 'api', name: 'API', status: 'operational' as const }];
    const resolved = incident({ status: 'resolved', resolvedAt: new Date('2026-03-03T15:20:00Z'), components: restored });
    expect(messages({ incident: resolved, update: update({ status: 'resolved' }), worstDeclared: 'degraded' }).email.subject).toBe(
      '[Degraded performance] API errors — Resolved',
    );
    expect(
      messages({ incident: incident({ status: 'monitoring', components: restored }), worstDeclared: 'major_outage' }).sms.body,
    ).toMatch(/^Lumenwork - Major outage: API errors/);
    // nothing declared at all: the kind of incident
    expect(messages({ incident: resolved, update: update({ status: 'resolved' }) }).email.subject).toBe(
      '[Service disruption] API errors — Resolved',
    );
  });

  it('states a breach plainly, without a severity word', () => {
    const m = messages({ incident: incident({ kind: 'breach', severity: 'critical', title: 'Exposure of support tickets' }) });
    expect(m.email.text).toContain('This notice concerns a personal data breach at Lumenwork.');
    expect(m.email.text).toContain('Lumenwork · Data breach');
    expect(m.email.text).not.toMatch(/critical/i);
    expect(m.sms.body.startsWith('Lumenwork - Data breach notice: Exposure of support tickets (Identified).')).toBe(true);
  });

  it('shows status, components with their status, the update, next update time and the link', () => {
    const m = messages();
    const parsed = expectInertHtml(m.email.html);
    expect(parsed.text).toContain('Status: Identified');
    const cells = m.email.html.match(/<td>[^<]*<\/td>/g);
    expect(cells).toEqual(['<td>API</td>', '<td>Major outage</td>', '<td>Dashboard</td>', '<td>Degraded performance</td>']);
    expect(m.email.html).toContain('<p>We found the cause: a faulty deploy of the gateway. We are rolling it back.</p>');
    expect(m.email.html).toContain('Next update by 14:00 UTC');
    expect(m.email.html).toContain(`<a href="${URL_}">`);
    expect(m.email.html).not.toMatch(/<style|<img|<link/i);
    expect(m.email.html).toContain(incidentPageHtml(update()));

    expect(m.email.text).toContain('Affected components:\n- API: Major outage\n- Dashboard: Degraded performance');
    expect(m.email.text).toContain('Identified · Tue, 3 Mar 2026, 13:05 UTC');
    expect(m.email.text).toContain('Next update by 14:00 UTC.');
    expect(m.email.text).toContain(`Follow this incident: ${URL_}`);
  });

  it('formats times in UTC unless a time zone is given, with the date when it is another day', () => {
    expect(messages({ timeZone: 'Europe/Berlin' }).email.text).toContain('Next update by 15:00 CET.');
    expect(messages({ timeZone: 'America/New_York' }).email.text).toContain('Identified · Tue, 3 Mar 2026, 08:05 GMT-5');
    const tomorrow = messages({ incident: incident({ nextUpdateBy: new Date('2026-03-04T09:00:00Z') }) });
    expect(tomorrow.email.text).toContain('Next update by 09:00 UTC on Wed, 4 Mar 2026.');
    const none = messages({ incident: incident({ nextUpdateBy: null }) });
    expect(none.email.text).not.toContain('Next update');
  });

  it('escapes the incident URL in HTML and in Slack', () => {
    const m = messages({ incidentUrl: 'https://trust.example/incidents/7?a=1&b="2"' });
    expect(m.email.html).toContain('<a href="https://trust.example/incidents/7?a=1&amp;b=&quot;2&quot;">');
    expectInertSlack(m.slack);
    expect(m.sms.link).toBe('https://trust.example/incidents/7?a=1&b="2"');
  });

  it('builds Slack blocks for the update and a root with the current state', () => {
    const m = messages({
      incident: incident({ status: 'monitoring' }),
      update: update({ status: 'monitoring', body: 'A fix is deployed; **error rates are back to normal**.' }),
    });
    const [header, section, context] = m.slack.blocks;
    expect(header).toEqual({ type: 'header', text: { type: 'plain_text', text: 'Monitoring: API errors', emoji: false } });
    expect(section).toEqual({
      type: 'section',
      text: { type: 'mrkdwn', text: 'A fix is deployed; *error rates are back to normal*.', verbatim: true },
    });
    const contextTexts = textObjects(context ? [context] : []).map((t) => t.text);
    expect(contextTexts).toEqual([
      'Affected: API (Major outage), Dashboard (Degraded performance)',
      'Next update by 14:00 UTC',
      `<${URL_}|Incident page>`,
    ]);
    expect(m.slack.text).toBe('[Major outage] API errors — Monitoring: A fix is deployed; error rates are back to normal.');

    const root = m.slack.root;
    expect(root?.text).toBe('[Major outage] API errors — Monitoring');
    const rootTexts = textObjects(root?.blocks ?? []).map((t) => t.text);
    expect(rootTexts).toContain('Major outage: API errors');
    expect(rootTexts).toContain('*Status*\nMonitoring');
    expect(rootTexts).toContain('*Severity*\nMajor');
    expect(rootTexts).toContain('*Next update by*\n14:00 UTC');
    expect(rootTexts).toContain('Affected: API (Major outage), Dashboard (Degraded performance)');
    expect(rootTexts.some((t) => t.startsWith(`<${URL_}|Incident page>`))).toBe(true);

    const resolved = messages({
      incident: incident({ status: 'resolved', resolvedAt: new Date('2026-03-03T15:20:00Z'), nextUpdateBy: null }),
      update: update({ status: 'resolved', body: 'All clear.' }),
    });
    const resolvedRoot = textObjects(resolved.slack.root?.blocks ?? []).map((t) => t.text);
    expect(resolvedRoot).toContain('*Status*\nResolved');
    expect(resolvedRoot).toContain('*Resolved at*\n15:20 UTC');
    expect(resolvedRoot.join('\n')).not.toContain('Next update');
  });

  it('keeps Slack within its block limits for long titles and bodies', () => {
    const paragraph = `${'word '.repeat(200).trim()}.`;
    const m = messages({
      incident: incident({ title: 'T'.repeat(400) }),
      update: update({ body: Array.from({ length: 200 }, () => paragraph).join('\n\n') }),
    });
    expect(m.slack.blocks.length).toBeLessThanOrEqual(50);
    for (const t of textObjects(m.slack.blocks)) expect(t.text.length).toBeLessThanOrEqual(3000);
    const header = m.slack.blocks[0];
    expect(header?.type === 'header' && header.text.text.length).toBe(150);
    expectInertSlack(m.slack);
    // one unbroken 7000-character line still splits, and never inside an escape
    const chunks = slackChunks(`${'&amp;'.repeat(1400)}`);
    expect(chunks.length).toBe(3);
    for (const c of chunks) {
      expect(c.length).toBeLessThanOrEqual(3000);
      expect(c).toMatch(/^(&amp;)+$/);
    }
  });

  it('writes a short SMS that fits two segments with the link', () => {
    const m = messages();
    expect(m.sms).toEqual({
      body: 'Lumenwork - Major outage: API errors (Identified). We found the cause: a faulty deploy of the gateway.',
      link: URL_,
    });
    const long = messages({
      update: update({ body: `The gateway ${'keeps failing over between regions and '.repeat(20)}we are on it. Second sentence.` }),
    });
    const sent = fitSms(long.sms.body, long.sms.link);
    expect(countSegments(sent).segments).toBeLessThanOrEqual(2);
    expect(sent.endsWith(` ${URL_}`)).toBe(true);
    expect(sent).toContain('...');
    expect(long.sms.body).not.toContain('Second sentence');
  });

  it('keeps the SMS in the GSM alphabet when the author typed typographic punctuation', () => {
    const m = messages({ update: update({ body: 'We’re “rolling back” – almost done…' }) });
    expect(m.sms.body).toBe('Lumenwork - Major outage: API errors (Identified). We\'re "rolling back" - almost done...');
    expect(countSegments(fitSms(m.sms.body, m.sms.link)).encoding).toBe('GSM-7');
  });

  it('finds the first sentence without cutting version numbers', () => {
    expect(firstSentence('Release v1.2.3 broke logins. We rolled back.')).toBe('Release v1.2.3 broke logins.');
    expect(firstSentence('No full stop here')).toBe('No full stop here');
    expect(firstSentence('Is it fixed? Yes.')).toBe('Is it fixed?');
  });

  it('emits webhook events with ISO dates', () => {
    const m = messages({ update: update({ body: 'See [the graph](https://status.example/g) *now*.' }) });
    expect(m.webhook).toEqual({
      type: 'incident.updated',
      data: {
        incident: {
          id: 7,
          kind: 'outage',
          severity: 'major',
          title: 'API errors',
          status: 'identified',
          components: [
            { id: 'api', name: 'API', status: 'major_outage' },
            { id: 'dashboard', name: 'Dashboard', status: 'degraded' },
          ],
          startedAt: '2026-03-03T12:40:00.000Z',
          resolvedAt: null,
          nextUpdateBy: '2026-03-03T14:00:00.000Z',
          window: null,
          url: URL_,
        },
        update: {
          id: 31,
          status: 'identified',
          body: 'See [the graph](https://status.example/g) *now*.',
          bodyText: 'See the graph (https://status.example/g) now.',
          publishedAt: '2026-03-03T13:05:00.000Z',
        },
      },
    });
    expect(messages({ first: true }).webhook.type).toBe('incident.created');
    const resolved = messages({
      incident: incident({ status: 'resolved', resolvedAt: new Date('2026-03-03T15:20:00Z'), nextUpdateBy: null }),
      update: update({ status: 'resolved', body: 'Resolved.' }),
    });
    expect(resolved.webhook.type).toBe('incident.resolved');
    expect((resolved.webhook.data as { incident: { resolvedAt: string } }).incident.resolvedAt).toBe('2026-03-03T15:20:00.000Z');
    expect(resolved.email.text).toContain('Resolved at 15:20 UTC.');
    expect(resolved.email.text).not.toContain('Next update');
  });
});

describe('breach notices in phases (GDPR Art. 33(4))', () => {
  const breach = (phase: number) => messages({ incident: incident({ kind: 'breach', severity: 'critical' }), phase });

  it('labels the first notice as initial and says more may follow', () => {
    const m = breach(1);
    expect(m.email.subject).toBe('[Data breach notice] API errors — Initial notice: Identified');
    expect(m.email.text).toContain('Initial notice. This is our initial notice.');
    expect(m.email.text).toContain('GDPR Art. 33(4)');
    expect(m.webhook.data.update).toMatchObject({ notice: 1, noticeLabel: 'Initial notice' });
  });

  it('numbers later notices on every channel', () => {
    const m = breach(3);
    expect(m.email.subject).toBe('[Data breach notice] API errors — Notice 3: Identified');
    expect(m.email.html).toContain('<strong>Notice 3.</strong> This is notice 3 about this breach');
    expect(m.sms.body).toContain('(Notice 3, Identified)');
    expect(JSON.stringify(m.slack.blocks)).toContain('"Notice 3"');
    expect(m.webhook.data.update).toMatchObject({ notice: 3, noticeLabel: 'Notice 3' });
  });

  it('leaves other kinds of incident unnumbered', () => {
    const m = messages({ phase: 2 });
    expect(m.email.subject).toBe('[Major outage] API errors — Identified');
    expect(m.email.text).not.toContain('Notice 2');
  });
});

describe('scheduled maintenance messages', () => {
  const window = { startsAt: new Date('2026-03-10T02:00:00Z'), endsAt: new Date('2026-03-10T04:00:00Z') };
  const maintenance = (overrides: Partial<IncidentMessageInput> = {}) =>
    messages({
      incident: incident({ kind: 'maintenance', severity: 'minor', status: 'scheduled', window, nextUpdateBy: null }),
      update: update({ status: 'scheduled', body: 'Database upgrade.' }),
      calendarUrl: `${URL_}.ics`,
      ...overrides,
    });

  it('states the window and links the calendar file', () => {
    const m = maintenance();
    expect(m.email.subject).toBe('[Scheduled maintenance] API errors — Scheduled');
    expect(m.email.text).toContain('Maintenance window: Tue, 10 Mar 2026, 02:00 UTC to 04:00 UTC');
    expect(m.email.html).toContain(`<a href="${URL_}.ics">Add the maintenance window to your calendar (.ics)</a>`);
    expect(JSON.stringify(m.slack.root?.blocks)).toContain('*Window*');
    expect(m.webhook.data.incident).toMatchObject({ window: { startsAt: '2026-03-10T02:00:00.000Z', endsAt: '2026-03-10T04:00:00.000Z' } });
  });

  it('says "completed" rather than "resolved" at the end', () => {
    const done = new Date('2026-03-10T04:00:00Z');
    const m = maintenance({
      incident: incident({ kind: 'maintenance', status: 'resolved', resolvedAt: done, window, nextUpdateBy: null }),
      update: update({ status: 'resolved', publishedAt: done }),
    });
    expect(m.email.subject).toBe('[Scheduled maintenance] API errors — Completed');
    expect(m.email.text).toContain('Completed at 04:00 UTC');
  });

  it('sends a reminder as its own webhook event', () => {
    const m = maintenance({ event: 'maintenance.reminder' });
    expect(m.webhook.type).toBe('maintenance.reminder');
    expect(m.email.subject).toBe('[Scheduled maintenance] API errors — Reminder');
  });
});
