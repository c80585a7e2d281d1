/**
 * The subscriber files Candor imports, read into one shape: Atlassian Statuspage's subscriber CSV,
 * Instatus's subscriber export, and Candor's own export (src/core/subscriptions/directory.ts
 * `subscribersCsv`). Headers are matched loosely (case, spaces, `_` and `-` ignored), with the
 * variants each product has used, so a file edited in a spreadsheet still reads.
 *
 * Where the column names come from:
 * - Statuspage: "Import subscribers via CSV" (support.atlassian.com/statuspage/docs/import-subscribers-via-csv/):
 *   a subscriber type column (`email`, `sms`, `webhook`; Slack subscribers are not in CSVs), the email
 *   address, the phone number without its country code and a two-letter `country code` beside it, the
 *   components subscribed to; the subscriber export of the manage portal and the API's subscriber
 *   object (developer.statuspage.io: `mode`, `email`, `phone_number`, `phone_country`, `created_at`,
 *   `components`) name the same fields, so both spellings are accepted.
 * - Instatus: the subscriber object of its API (instatus.com/help/api/subscribers: `email`, `phone`,
 *   `webhook`, `confirmed`, `all`, `components`, `createdAt`), whose names its CSV export uses.
 * - Candor: `subscriber_id, organisation, channel, address, status, topics, subscribed_at`, then the
 *   consent columns `consent_source, consent_method, opted_in_at, opted_in_via`.
 */
import type { ImportFormat } from '../../stores/subscriber-imports.ts';
import { isTopic, type Topic } from './topics.ts';

/** One subscriber row as every format reads. */
/**
 * A cell's control characters (NUL, line breaks inside a quoted cell, …) become spaces: none belongs in
 * an address, a name or a topic list, and PostgreSQL cannot store a NUL. An address that held one is
 * then refused as invalid, naming its row, rather than stored changed.
 */
const controlFree = (cell: string) => cell.replace(/\p{Cc}/gu, ' ');

export interface ImportRow {
  /** the file's line number of the row (the header is line 1) */
  line: number;
  channel: 'email' | 'sms' | 'webhook' | 'slack' | 'other';
  /** as the file has it (the number with its country when separate) */
  address: string;
  /** ISO country of a number given without its country code */
  country: string | null;
  optedInAt: Date | null;
  /** when the subscriber signed up, as the file says (Candor's `subscribed_at`; the others' creation time) */
  subscribedAt: Date | null;
  /** component names or ids as the file has them; empty: every component */
  components: string[];
  /** topics (Candor's own file); null: incidents and maintenance, what the other products send */
  topics: { topic: string; component: string }[] | null;
  organisation: string | null;
  /** false when the file says the person never confirmed (no consent to carry over) */
  confirmed: boolean;
  /** false when the file says the address is suppressed (Candor's own file) */
  suppressed: boolean;
  /** the file's subscriber id, grouping a Candor subscriber's addresses */
  groupKey: string | null;
  /** where the file says they opted in (Candor's own file), else the format's name */
  optedInVia: string | null;
}

const norm = (h: string) =>
  h
    .replace(/^\uFEFF/, '')
    .trim()
    .toLowerCase()
    .replace(/[\s_-]+/g, '');

type Field = 'type' | 'email' | 'phone' | 'country' | 'created' | 'components' | 'all' | 'confirmed' | 'webhook' | 'state';

const statuspageHeaders: Record<Field, string[]> = {
  type: ['type', 'subscribertype', 'mode', 'subscriptiontype', 'subscriber'],
  email: ['email', 'emailaddress', 'address', 'recipient'],
  phone: ['phone', 'phonenumber', 'number', 'sms', 'mobile'],
  country: ['phonecountry', 'countrycode', 'country'],
  created: ['createdat', 'created', 'subscribedat', 'subscribedon', 'datesubscribed', 'optedinat'],
  components: ['components', 'componentnames', 'componentids', 'subscribedcomponents', 'component'],
  all: ['all', 'allcomponents', 'subscribeall'],
  confirmed: ['confirmed', 'isconfirmed'],
  webhook: ['endpoint', 'webhook', 'webhookurl'],
  state: ['state', 'status', 'subscriberstate'],
};

const candorColumns = ['subscriberid', 'organisation', 'channel', 'address', 'status', 'topics', 'subscribedat'] as const;

export const formatLabels: Record<ImportFormat, string> = {
  statuspage: 'statuspage export',
  instatus: 'instatus export',
  candor: 'candor export',
};

export type HeaderResult = { ok: true; read: (cells: string[], line: number) => ImportRow } | { ok: false; message: string };

const yes = (v: string) => /^(true|yes|y|1|confirmed|active)$/i.test(v.trim());
const no = (v: string) => /^(false|no|n|0|unconfirmed|pending|quarantined)$/i.test(v.trim());

function parseTime(v: string): Date | null {
  const t = v.trim();
  if (!t) return null;
  const d = new Date(/^\d+$/.test(t) ? Number(t) * (t.length <= 10 ? 1000 : 1) : t);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** A spreadsheet-safe export put a quote before cells that start like a formula (src/core/text/csv.ts): undone here. */
const unDefused = (v: string) => (/^'[=+\-@\t\r]/.test(v) ? v.slice(1) : v);

const splitList = (v: string) =>
  v
    .split(/[;|,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** Reads the header row of a file of this format: how to read its rows, or what is wrong with it. */
export function readHeader(format: ImportFormat, header: string[]): HeaderResult {
  const names = header.map(norm);
  if (format === 'candor') {
    const at = Object.fromEntries(candorColumns.map((c) => [c, names.indexOf(c)])) as Record<(typeof candorColumns)[number], number>;
    const missing = candorColumns.filter((c) => at[c] < 0);
    const named = (c: string) => (c === 'subscriberid' ? 'subscriber_id' : c === 'subscribedat' ? 'subscribed_at' : c);
    if (missing.length > 0)
      return { ok: false, message: `This is not a Candor subscriber export: it has no ${missing.map(named).join(', ')} column.` };
    const optedAt = names.indexOf('optedinat');
    const optedVia = names.indexOf('optedinvia');
    return {
      ok: true,
      read(cells, line) {
        const cell = (i: number) => (i >= 0 ? unDefused(controlFree(cells[i] ?? '')).trim() : '');
        const channel = cell(at.channel);
        const topics = cell(at.topics)
          .split(/\s+/)
          .filter((t) => t !== '')
          .map((t) => {
            const [topic = '', component = ''] = t.split(':');
            return { topic, component };
          });
        const status = cell(at.status);
        return {
          line,
          channel: channel === 'email' || channel === 'sms' || channel === 'webhook' || channel === 'slack' ? channel : 'other',
          address: cell(at.address),
          country: null,
          optedInAt: parseTime(cell(optedAt)) ?? parseTime(cell(at.subscribedat)),
          subscribedAt: parseTime(cell(at.subscribedat)),
          components: [],
          topics,
          organisation: cell(at.organisation) || null,
          confirmed: status === 'active',
          suppressed: status === 'suppressed' || status === 'removed',
          groupKey: cell(at.subscriberid) || null,
          optedInVia: cell(optedVia) || null,
        };
      },
    };
  }
  const find = (field: Field) => names.findIndex((n) => statuspageHeaders[field].includes(n));
  const col = Object.fromEntries((Object.keys(statuspageHeaders) as Field[]).map((f) => [f, find(f)])) as Record<Field, number>;
  // "address" doubles as the email column only where no email column is named
  if (col.email < 0 && col.phone < 0 && col.webhook < 0) {
    return {
      ok: false,
      message: `This ${format === 'statuspage' ? 'Statuspage' : 'Instatus'} file has no email or phone column (its header row reads: ${header.slice(0, 8).join(', ').slice(0, 200)}).`,
    };
  }
  return {
    ok: true,
    read(cells, line) {
      const cell = (i: number) => (i >= 0 ? controlFree(cells[i] ?? '').trim() : '');
      const type = cell(col.type).toLowerCase();
      const email = cell(col.email);
      const phone = cell(col.phone);
      const hook = cell(col.webhook);
      const channel: ImportRow['channel'] =
        type === 'email' || type === 'sms' || type === 'webhook' || type === 'slack'
          ? type
          : type !== '' && type !== 'e-mail'
            ? 'other'
            : email
              ? 'email'
              : phone
                ? 'sms'
                : hook
                  ? 'webhook'
                  : 'email';
      const state = cell(col.state);
      const all = cell(col.all);
      return {
        line,
        channel: type === 'e-mail' ? 'email' : channel,
        address: channel === 'sms' ? phone || email : channel === 'webhook' ? hook || email : email || phone,
        country: cell(col.country).toUpperCase() || null,
        optedInAt: parseTime(cell(col.created)),
        subscribedAt: parseTime(cell(col.created)),
        components: all !== '' && yes(all) ? [] : splitList(cell(col.components)),
        topics: null,
        organisation: null,
        confirmed: !(no(cell(col.confirmed)) || (state !== '' && no(state))),
        suppressed: state !== '' && /^(quarantined|unsubscribed|suppressed)$/i.test(state),
        groupKey: null,
        optedInVia: null,
      };
    },
  };
}

/** Candor's topic rows from a row of its own file: unknown topics named. */
export function checkTopics(rows: { topic: string; component: string }[]): { ok: true; topics: Topic[] } | { ok: false; unknown: string } {
  const unknown = rows.find((r) => !isTopic(r.topic));
  if (unknown) return { ok: false, unknown: unknown.topic };
  return { ok: true, topics: [...new Set(rows.map((r) => r.topic as Topic))] };
}
