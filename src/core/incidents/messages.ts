/**
 * What one incident update says on every channel: email (HTML and text),
 * SMS, Slack (the reply and the thread root's current state) and webhook.
 * Rendered once when the update is published; the channels add only what
 * differs per recipient. Every piece of staff-written text passes through
 * renderMarkdown / escapeHtml / escapeSlack before it reaches a reader.
 */
import type { KnownBlock, PlainTextElement } from '@slack/web-api';
import type { NotificationContent } from '../notify/types.ts';
import { escapeHtml } from '../text/escape.ts';
import { escapeSlack, renderMarkdown, renderSlackMrkdwn, slackUrl } from './markdown.ts';
import {
  type ComponentStatus,
  componentStatusLabels,
  type IncidentKind,
  type IncidentSeverity,
  type IncidentView,
  incidentKindLabels,
  type UpdateView,
  updateLabel,
  wasCancelled,
  worstStatus,
} from './types.ts';

export interface IncidentMessageInput {
  organisation: string;
  incident: IncidentView;
  update: UpdateView;
  /** the public page of the incident; every channel links to it */
  incidentUrl: string;
  /** IANA zone for the times readers see; UTC when absent */
  timeZone?: string;
  /** the incident's first update: the webhook says `incident.created` (a resolved update says `incident.resolved` regardless) */
  first?: boolean;
  /** which notice of the incident this is, counting from 1: breach notices go out in phases (GDPR Art. 33(4)) */
  phase?: number;
  /** a message that is not an update: the reminder before a maintenance window */
  event?: 'maintenance.reminder';
  /** scheduled maintenance: the window as an .ics file */
  calendarUrl?: string;
  /** the worst state the incident has declared for any service so far (its history): names a restored or resolved disruption */
  worstDeclared?: ComponentStatus;
}

export type IncidentEventType = 'incident.created' | 'incident.updated' | 'incident.resolved' | 'maintenance.reminder';

const severityLabels: Record<IncidentSeverity, string> = { minor: 'Minor', major: 'Major', critical: 'Critical' };

/**
 * The bracketed tag of a subject (and of the SMS and the Slack thread). A
 * service disruption is named by the worst state its services are in after
 * this update, in the status page's words; once every service is restored,
 * or the incident resolved, by the worst state it declared. Never by the
 * severity staff chose: a "major" incident that only slowed a service down
 * says "Degraded performance". Security incidents and breaches carry no
 * state or severity word: the notice states facts, and "critical data
 * breach" in an inbox informs less than it alarms.
 */
export function incidentTag(incident: Pick<IncidentView, 'kind' | 'components'>, worstDeclared: ComponentStatus = 'operational'): string {
  switch (incident.kind) {
    case 'outage': {
      const current = worstStatus(incident.components.map((c) => c.status));
      const named = current === 'operational' ? worstDeclared : current;
      return named === 'operational' ? incidentKindLabels.outage : componentStatusLabels[named];
    }
    case 'security':
      return 'Security incident';
    case 'breach':
      return 'Data breach notice';
    case 'maintenance':
      return 'Scheduled maintenance';
  }
}

/** One sentence that says plainly what kind of notice this is, where that matters. */
function lede(organisation: string, kind: IncidentKind): string | null {
  if (kind === 'breach') {
    return `This notice concerns a personal data breach at ${organisation}. It sets out what we know at this time and what we do not yet know; we will keep you informed as we learn more.`;
  }
  if (kind === 'security') return `This notice concerns a security incident at ${organisation}.`;
  return null;
}

/** Severity is shown for service incidents; for security and breach notices see incidentTag. */
const scheduleLine = (s: NonNullable<Facts['schedule']>) => `${s.label} ${s.when}`;

const showsSeverity = (kind: IncidentKind) => kind === 'outage' || kind === 'maintenance';

/** Newlines in a subject or a header would start a new header line; collapse all whitespace. */
const oneLine = (value: string) => value.replace(/\s+/g, ' ').trim();

function truncate(value: string, max: number): string {
  const chars = [...value];
  return chars.length <= max ? value : `${chars.slice(0, max - 1).join('')}…`;
}

// ---- time ----

interface Clock {
  /** "14:00 UTC" */
  time(date: Date): string;
  /** "Tue, 3 Mar 2026" */
  day(date: Date): string;
  /** "Tue, 3 Mar 2026, 14:00 UTC" */
  full(date: Date): string;
  /** "14:00 UTC" on the same day as `reference`, else "14:00 UTC on Wed, 4 Mar 2026" */
  relative(date: Date, reference: Date): string;
}

function clock(timeZone: string): Clock {
  // en-GB for a 24-hour clock and day-month order, which read unambiguously everywhere
  const time = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' });
  const day = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  return {
    time: (d) => time.format(d),
    day: (d) => day.format(d),
    full: (d) => `${day.format(d)}, ${time.format(d)}`,
    relative: (d, ref) => (day.format(d) === day.format(ref) ? time.format(d) : `${time.format(d)} on ${day.format(d)}`),
  };
}

// ---- shared facts ----

interface Facts {
  tag: string;
  title: string;
  kindLabel: string;
  severity: string | null;
  lede: string | null;
  components: { name: string; status: string }[];
  posted: string;
  /** the update's status */
  status: string;
  /** the incident's status now, which the Slack thread root shows */
  currentStatus: string;
  /** "Next update by 14:00 UTC" or "Resolved at 15:20 UTC", or null */
  schedule: { label: 'Next update by' | 'Resolved at' | 'Completed at' | 'Cancelled at'; when: string } | null;
  /** scheduled maintenance: "Tue, 3 Mar 2026, 02:00 UTC to 04:00 UTC" */
  window: string | null;
  /** breach notices: which notice this is, and that more may follow (Art. 33(4)) */
  phase: { label: string; line: string } | null;
  started: string;
  rendered: { html: string; text: string };
}

function facts(input: IncidentMessageInput): Facts {
  const { incident, update, organisation } = input;
  const c = clock(input.timeZone ?? 'UTC');
  const resolved = incident.status === 'resolved';
  let schedule: Facts['schedule'] = null;
  if (resolved)
    schedule = {
      label: wasCancelled(incident) ? 'Cancelled at' : incident.kind === 'maintenance' ? 'Completed at' : 'Resolved at',
      when: c.relative(incident.resolvedAt ?? update.publishedAt, update.publishedAt),
    };
  else if (incident.nextUpdateBy) schedule = { label: 'Next update by', when: c.relative(incident.nextUpdateBy, update.publishedAt) };
  return {
    tag: incidentTag(incident, input.worstDeclared),
    title: oneLine(incident.title),
    status: input.event === 'maintenance.reminder' ? 'Reminder' : updateLabel(incident, update.status),
    currentStatus: updateLabel(incident, incident.status),
    window: incident.window
      ? `${c.full(incident.window.startsAt)} to ${c.relative(incident.window.endsAt, incident.window.startsAt)}`
      : null,
    phase: incident.kind === 'breach' && input.phase ? breachPhase(input.phase) : null,
    kindLabel: incidentKindLabels[incident.kind],
    severity: showsSeverity(incident.kind) ? severityLabels[incident.severity] : null,
    lede: lede(organisation, incident.kind),
    components: incident.components.map((x) => ({ name: oneLine(x.name), status: componentStatusLabels[x.status] })),
    posted: c.full(update.publishedAt),
    schedule,
    started: c.full(incident.startedAt),
    rendered: renderMarkdown(update.body),
  };
}

/**
 * GDPR Art. 33(4): where not everything is known at once, a breach notice
 * may go out in phases. Each notice says which one it is, so a reader can
 * tell the first from the fourth and knows more may come.
 */
export function breachPhase(phase: number): { label: string; line: string } {
  if (phase <= 1)
    return {
      label: 'Initial notice',
      line: 'This is our initial notice. What we do not know yet we will send in further notices as we learn it (GDPR Art. 33(4)).',
    };
  return {
    label: `Notice ${phase}`,
    line: `This is notice ${phase} about this breach: it adds to what we told you before. We provide information in phases as it becomes available (GDPR Art. 33(4)).`,
  };
}

/** The safe HTML of an update, as the public incident page and the email show it. */
export function incidentPageHtml(update: Pick<UpdateView, 'body'>): string {
  return renderMarkdown(update.body).html;
}

// ---- email ----

/**
 * Plain structure for mail clients: headings, paragraphs and one simple
 * table, no <style>, no images, no layout tables; the channel appends the
 * manage/unsubscribe footer.
 */
function email(input: IncidentMessageInput, f: Facts): NonNullable<NotificationContent['email']> {
  const e = escapeHtml;
  const kindLine = [input.organisation, f.kindLabel, ...(f.severity ? [`${f.severity} severity`] : [])].join(' · ');
  const html: string[] = [`<h1>${e(f.title)}</h1>`, `<p>${e(kindLine)}</p>`];
  if (f.lede) html.push(`<p>${e(f.lede)}</p>`);
  if (f.phase) html.push(`<p><strong>${e(f.phase.label)}.</strong> ${e(f.phase.line)}</p>`);
  html.push(`<p>Status: <strong>${e(f.status)}</strong></p>`);
  if (f.window) html.push(`<p>Maintenance window: <strong>${e(f.window)}</strong></p>`);
  if (f.components.length > 0) {
    html.push(
      '<table cellpadding="6" cellspacing="0" border="1">',
      '<thead><tr><th align="left" scope="col">Affected component</th><th align="left" scope="col">Status</th></tr></thead>',
      '<tbody>',
      ...f.components.map((x) => `<tr><td>${e(x.name)}</td><td>${e(x.status)}</td></tr>`),
      '</tbody>',
      '</table>',
    );
  }
  html.push(`<h2>${e(f.status)} · ${e(f.posted)}</h2>`, `<div>${f.rendered.html}</div>`);
  if (f.schedule) html.push(`<p><strong>${e(scheduleLine(f.schedule))}</strong></p>`);
  html.push(`<p><a href="${e(input.incidentUrl)}">Follow this incident on our status page</a></p>`);
  if (input.calendarUrl) html.push(`<p><a href="${e(input.calendarUrl)}">Add the maintenance window to your calendar (.ics)</a></p>`);

  const text: string[] = [f.title, kindLine];
  if (f.lede) text.push(f.lede);
  if (f.phase) text.push(`${f.phase.label}. ${f.phase.line}`);
  text.push(`Status: ${f.status}`);
  if (f.window) text.push(`Maintenance window: ${f.window}`);
  if (f.components.length > 0) text.push(['Affected components:', ...f.components.map((x) => `- ${x.name}: ${x.status}`)].join('\n'));
  text.push(`${f.status} · ${f.posted}`, f.rendered.text);
  if (f.schedule) text.push(`${scheduleLine(f.schedule)}.`);
  text.push(`Follow this incident: ${input.incidentUrl}`);
  if (input.calendarUrl) text.push(`Add the window to your calendar: ${input.calendarUrl}`);

  return {
    subject: `[${f.tag}] ${f.title} — ${f.phase ? `${f.phase.label}: ` : ''}${f.status}`,
    html: `${html.join('\n')}\n`,
    text: `${text.filter(Boolean).join('\n\n')}\n`,
  };
}

// ---- SMS ----

/**
 * Typographic characters outside the GSM alphabet would switch the whole
 * message to UCS-2 (70 instead of 160 characters a segment); their ASCII
 * look-alikes say the same.
 */
const GSM_FRIENDLY: [RegExp, string][] = [
  [/[‘’‚‛′]/g, "'"],
  [/[“”„‟″]/g, '"'],
  [/[‐‑‒–—―−]/g, '-'],
  [/…/g, '...'],
  [/[•·]/g, '-'],
  [/[\u00A0\u2000-\u200B\u202F\u205F\u3000]/g, ' '],
];
function gsmFriendly(value: string): string {
  return GSM_FRIENDLY.reduce((s, [pattern, replacement]) => s.replace(pattern, replacement), value);
}

/** The first sentence: up to the first . ! or ? followed by a space (so "v1.2" does not end one). */
export function firstSentence(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const match = /^.*?[.!?](?=\s|$)/.exec(flat);
  return match ? match[0] : flat;
}

function sms(input: IncidentMessageInput, f: Facts): NonNullable<NotificationContent['sms']> {
  const status = `${oneLine(input.organisation)} - ${f.tag}: ${f.title} (${f.phase && f.phase.label !== 'Initial notice' ? `${f.phase.label}, ` : ''}${f.status}).`;
  const sentence = firstSentence(f.rendered.text);
  return { body: gsmFriendly(sentence ? `${status} ${sentence}` : status), link: input.incidentUrl };
}

// ---- Slack ----

/** Slack's limits: header text 150 characters, section text 3000, 50 blocks a message. */
const SLACK_HEADER_MAX = 150;
const SLACK_SECTION_MAX = 3000;
const SLACK_BODY_BLOCKS_MAX = 40;

/** Splits mrkdwn into section-sized pieces, at paragraph, then line, then word boundaries. */
export function slackChunks(mrkdwn: string, max = SLACK_SECTION_MAX): string[] {
  const chunks: string[] = [];
  let current = '';
  const pushPiece = (piece: string, separator: string) => {
    if (!current) current = piece;
    else if (current.length + separator.length + piece.length <= max) current += separator + piece;
    else {
      chunks.push(current);
      current = piece;
    }
  };
  for (const paragraph of mrkdwn.split('\n\n')) {
    if (paragraph.length <= max) {
      pushPiece(paragraph, '\n\n');
      continue;
    }
    for (const line of paragraph.split('\n')) {
      let rest = line;
      while (rest.length > max) {
        // cut at the last space, never inside an escape such as &amp;
        let cut = rest.lastIndexOf(' ', max);
        if (cut <= 0) {
          cut = max;
          const amp = rest.lastIndexOf('&', cut);
          if (amp > cut - 5 && amp > 0) cut = amp;
        }
        pushPiece(rest.slice(0, cut), '\n');
        rest = rest.slice(cut).trimStart();
      }
      if (rest) pushPiece(rest, '\n');
    }
  }
  if (current) chunks.push(current);
  return chunks;
}

const plainText = (text: string): PlainTextElement => ({ type: 'plain_text', text, emoji: false });

function slack(input: IncidentMessageInput, f: Facts): NonNullable<NotificationContent['slack']> {
  const url = slackUrl(input.incidentUrl);
  const componentsLine =
    f.components.length > 0 ? truncate(`Affected: ${f.components.map((x) => `${x.name} (${x.status})`).join(', ')}`, 2000) : null;
  const heading = `[${f.tag}] ${f.title} — ${f.status}`;

  // The reply: what this update says. Titles and component names go in plain_text objects, which Slack
  // never parses for formatting or mentions; the update body is escaped mrkdwn with verbatim set.
  const body = renderSlackMrkdwn(input.update.body);
  let chunks = slackChunks(body);
  if (chunks.length > SLACK_BODY_BLOCKS_MAX) chunks = [...chunks.slice(0, SLACK_BODY_BLOCKS_MAX - 1), `… <${url}|Read the full update>`];
  const context: KnownBlock = {
    type: 'context',
    elements: [
      ...(f.phase ? [plainText(f.phase.label)] : []),
      ...(componentsLine ? [plainText(componentsLine)] : []),
      ...(f.window ? [plainText(`Window: ${f.window}`)] : []),
      ...(f.schedule ? [plainText(scheduleLine(f.schedule))] : []),
      { type: 'mrkdwn', text: `<${url}|Incident page>`, verbatim: true },
    ],
  };
  const blocks: KnownBlock[] = [
    { type: 'header', text: plainText(truncate(`${f.status}: ${f.title}`, SLACK_HEADER_MAX)) },
    ...chunks.map((text): KnownBlock => ({ type: 'section', text: { type: 'mrkdwn', text, verbatim: true } })),
    context,
  ];
  const sentence = firstSentence(f.rendered.text);

  // The thread root: the incident's current state, edited in place as updates arrive.
  const fields = [
    { label: 'Status', value: f.currentStatus },
    ...(f.severity ? [{ label: 'Severity', value: f.severity }] : []),
    { label: 'Kind', value: f.kindLabel },
    ...(f.window ? [{ label: 'Window', value: f.window }] : [{ label: 'Started', value: f.started }]),
    ...(f.schedule ? [{ label: f.schedule.label, value: f.schedule.when }] : []),
  ];
  const rootBlocks: KnownBlock[] = [
    { type: 'header', text: plainText(truncate(`${f.tag}: ${f.title}`, SLACK_HEADER_MAX)) },
    { type: 'section', fields: fields.map((x) => ({ type: 'mrkdwn', text: `*${x.label}*\n${escapeSlack(x.value)}`, verbatim: true })) },
    ...(componentsLine ? [{ type: 'section', text: plainText(componentsLine) } satisfies KnownBlock] : []),
    { type: 'context', elements: [{ type: 'mrkdwn', text: `<${url}|Incident page> · updates in this thread`, verbatim: true }] },
  ];

  return {
    text: escapeSlack(sentence ? `${heading}: ${sentence}` : heading),
    blocks,
    root: { text: escapeSlack(`[${f.tag}] ${f.title} — ${f.currentStatus}`), blocks: rootBlocks },
  };
}

// ---- webhook ----

export function incidentEventType(input: Pick<IncidentMessageInput, 'update' | 'first' | 'event'>): IncidentEventType {
  if (input.event) return input.event;
  if (input.update.status === 'resolved') return 'incident.resolved';
  return input.first ? 'incident.created' : 'incident.updated';
}

function webhook(input: IncidentMessageInput, f: Facts): NonNullable<NotificationContent['webhook']> {
  const { incident, update } = input;
  return {
    type: incidentEventType(input),
    data: {
      incident: {
        id: incident.id,
        kind: incident.kind,
        severity: incident.severity,
        title: incident.title,
        status: incident.status,
        components: incident.components.map((x) => ({ id: x.id, name: x.name, status: x.status })),
        startedAt: incident.startedAt.toISOString(),
        resolvedAt: incident.resolvedAt?.toISOString() ?? null,
        nextUpdateBy: incident.nextUpdateBy?.toISOString() ?? null,
        window: incident.window ? { startsAt: incident.window.startsAt.toISOString(), endsAt: incident.window.endsAt.toISOString() } : null,
        url: input.incidentUrl,
      },
      update: {
        id: update.id,
        status: update.status,
        // verbatim markdown for systems that render it themselves; bodyText for those that show text
        body: update.body,
        bodyText: f.rendered.text,
        publishedAt: update.publishedAt.toISOString(),
        ...(f.phase ? { notice: input.phase, noticeLabel: f.phase.label } : {}),
      },
    },
  };
}

/** Every channel's message for one published update. */
export function incidentMessages(input: IncidentMessageInput): NotificationContent {
  const f = facts(input);
  return { email: email(input, f), sms: sms(input, f), slack: slack(input, f), webhook: webhook(input, f) };
}
