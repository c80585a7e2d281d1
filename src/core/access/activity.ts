/**
 * Console → Access: who asked for gated documents, who was granted what, who viewed and downloaded
 * what (per company as the visitor typed it, and per customer organisation where the verified email's
 * domain is one of its domains), and who accepted which NDA; the CSV exports of the same rows. Every
 * figure is computed from the rows (src/stores/access-activity.ts). Addresses are opened here for
 * display; reading the page and each export is audited before anything is shown.
 */
import type { Database, Reader } from '../../../db/engine/types.ts';
import {
  type AcceptanceRow,
  type AccessPerson,
  acceptanceCount,
  acceptancePage,
  activityCounts,
  type CompanyCount,
  decidedRequests,
  grantCounts,
  grantPage,
  grantsIn,
  pendingRequestCount,
  pendingRequests,
  peopleByIds,
  recentAcceptances,
  recentViews,
  requestCounts,
  requestPage,
  staffNames,
  type ViewTally,
  viewPage,
  viewTallies,
} from '../../stores/access-activity.ts';
import type { AuditAction } from '../audit/actions.ts';
import { writeAudit } from '../audit/log.ts';
import { type Keys, openRecipient } from '../notify/recipients.ts';
import type { StaffAudit } from '../subscriptions/context.ts';
import { csvRow } from '../text/csv.ts';
import { type AccessGrantRow, type GrantState, grantState } from './grants.ts';

/** Rows each list of the page shows at most (the CSV has them all). */
export const PAGE_LIMITS = { pending: 200, decided: 50, grants: 200, ended: 50, views: 100, acceptances: 100 } as const;

export interface Person {
  recipientId: number;
  /** the verified address, opened; a placeholder when it cannot be opened with this server's keys */
  email: string;
  /** the customer organisation whose verified domain the email is in */
  organisation: string | null;
}

export interface PendingItem {
  id: number;
  name: string;
  company: string;
  person: Person;
  documents: string[];
  createdAt: Date;
  /** ms since it was made */
  waitedMs: number;
}

export interface DecidedItem {
  id: number;
  name: string;
  company: string;
  person: Person;
  documents: string[];
  status: string;
  /** "rule *.example.com" or "Alex Doe", or null when the row says neither */
  decidedBy: string | null;
  decidedAt: Date | null;
}

export interface GrantItem {
  id: number;
  name: string;
  company: string;
  person: Person;
  documents: string[];
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  revokedBy: string | null;
  grantedBy: string;
  state: GrantState;
}

export interface DocumentActivity {
  document: string;
  views: number;
  downloads: number;
  last: Date;
}

export interface PersonActivity {
  person: Person;
  name: string;
  requests: number;
  grants: number;
  views: number;
  downloads: number;
  last: Date | null;
  documents: DocumentActivity[];
}

export interface CompanyActivity {
  /** the company as the visitors typed it (the most common spelling of those grouped case-insensitively) */
  company: string;
  /** the customer organisations the people's verified domains belong to */
  organisations: string[];
  requests: number;
  grants: number;
  views: number;
  downloads: number;
  people: PersonActivity[];
}

export interface RecentView {
  id: number;
  name: string;
  company: string;
  person: Person;
  document: string;
  kind: 'view' | 'download';
  at: Date;
  ip: string | null;
}

export interface AcceptanceItem {
  id: number;
  fullName: string;
  company: string;
  person: Person;
  ndaTitle: string;
  ndaHash: string;
  acceptedAt: Date;
}

export interface AccessOverview {
  pendingTotal: number;
  pending: PendingItem[];
  decided: DecidedItem[];
  grants: Record<GrantState, GrantItem[]>;
  companies: CompanyActivity[];
  recentViews: RecentView[];
  acceptances: AcceptanceItem[];
}

const UNREADABLE = '(address sealed under a key this server lacks)';

function personOf(keys: Keys, people: ReadonlyMap<number, AccessPerson>, recipientId: number): Person {
  const row = people.get(recipientId);
  if (!row) return { recipientId, email: '(address removed)', organisation: null };
  let email: string;
  try {
    email = openRecipient(keys, { channel: row.channel, address: row.address, secret: null }).address;
  } catch {
    email = UNREADABLE;
  }
  return { recipientId, email, organisation: row.organisation };
}

const decider = (
  row: { decidedVia: 'rule' | 'staff' | null; rulePattern: string | null; decidedBy: number | null },
  staff: ReadonlyMap<number, string>,
): string | null => {
  if (row.decidedVia === 'rule') return `rule ${row.rulePattern ?? '(removed)'}`;
  if (row.decidedBy !== null) return staff.get(row.decidedBy) ?? `staff #${row.decidedBy}`;
  return null;
};

const grantedBy = (grant: AccessGrantRow, staff: ReadonlyMap<number, string>) =>
  grant.createdBy === null ? 'a rule' : (staff.get(grant.createdBy) ?? `staff #${grant.createdBy}`);

/** The company key: what the visitor typed, trimmed, spaces folded, case ignored. */
export const companyKey = (company: string) => company.trim().replace(/\s+/g, ' ').toLocaleLowerCase('en');

/**
 * Views, downloads, requests and grants per company (as given) and person. A person appears under each
 * company they gave; their organisation is the one their verified email's domain belongs to.
 */
export function groupByCompany(
  tallies: readonly ViewTally[],
  requests: readonly CompanyCount[],
  grants: readonly CompanyCount[],
  personFor: (recipientId: number) => Person,
): CompanyActivity[] {
  interface Building {
    spellings: Map<string, number>;
    people: Map<number, PersonActivity & { docs: Map<string, DocumentActivity> }>;
  }
  const companies = new Map<string, Building>();
  const personIn = (company: string, recipientId: number, name: string, weight: number) => {
    const key = companyKey(company);
    const c = companies.get(key) ?? companies.set(key, { spellings: new Map(), people: new Map() }).get(key);
    if (!c) throw new Error('unreachable');
    const spelling = company.trim().replace(/\s+/g, ' ');
    c.spellings.set(spelling, (c.spellings.get(spelling) ?? 0) + weight);
    let p = c.people.get(recipientId);
    if (!p) {
      p = {
        person: personFor(recipientId),
        name,
        requests: 0,
        grants: 0,
        views: 0,
        downloads: 0,
        last: null,
        documents: [],
        docs: new Map(),
      };
      c.people.set(recipientId, p);
    }
    if (!p.name && name) p.name = name;
    return p;
  };
  for (const r of requests) personIn(r.company, r.recipientId, r.name, r.n).requests += r.n;
  for (const g of grants) personIn(g.company, g.recipientId, g.name, g.n).grants += g.n;
  for (const t of tallies) {
    const p = personIn(t.company, t.recipientId, '', t.n);
    const doc = p.docs.get(t.document) ?? { document: t.document, views: 0, downloads: 0, last: t.last };
    if (t.kind === 'view') {
      doc.views += t.n;
      p.views += t.n;
    } else {
      doc.downloads += t.n;
      p.downloads += t.n;
    }
    if (t.last > doc.last) doc.last = t.last;
    if (!p.last || t.last > p.last) p.last = t.last;
    p.docs.set(t.document, doc);
  }
  const result: CompanyActivity[] = [...companies.values()].map((c) => {
    const people = [...c.people.values()]
      .map(({ docs, ...p }) => ({ ...p, documents: [...docs.values()].sort((a, b) => a.document.localeCompare(b.document)) }))
      .sort((a, b) => (b.last?.getTime() ?? 0) - (a.last?.getTime() ?? 0) || a.person.email.localeCompare(b.person.email));
    const spelling = [...c.spellings.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] ?? '';
    const sum = (f: (p: PersonActivity) => number) => people.reduce((n, p) => n + f(p), 0);
    return {
      company: spelling,
      organisations: [...new Set(people.flatMap((p) => (p.person.organisation ? [p.person.organisation] : [])))].sort(),
      requests: sum((p) => p.requests),
      grants: sum((p) => p.grants),
      views: sum((p) => p.views),
      downloads: sum((p) => p.downloads),
      people,
    };
  });
  return result.sort((a, b) => b.views + b.downloads - (a.views + a.downloads) || a.company.localeCompare(b.company));
}

async function readOverview(r: Reader, keys: Keys, now: Date): Promise<AccessOverview> {
  const pendingTotal = await pendingRequestCount(r);
  const pending = await pendingRequests(r, PAGE_LIMITS.pending);
  const decided = await decidedRequests(r, PAGE_LIMITS.decided);
  const live = await grantsIn(r, 'live', now, PAGE_LIMITS.grants);
  const expired = await grantsIn(r, 'expired', now, PAGE_LIMITS.ended);
  const revoked = await grantsIn(r, 'revoked', now, PAGE_LIMITS.ended);
  const tallies = await viewTallies(r);
  const requested = await requestCounts(r);
  const granted = await grantCounts(r);
  const views = await recentViews(r, PAGE_LIMITS.views);
  const accepted = await recentAcceptances(r, PAGE_LIMITS.acceptances);
  const grants = [...live, ...expired, ...revoked];
  const people = await peopleByIds(r, [
    ...pending.map((p) => p.recipientId),
    ...decided.map((d) => d.recipientId),
    ...grants.map((g) => g.recipientId),
    ...tallies.map((t) => t.recipientId),
    ...requested.map((t) => t.recipientId),
    ...granted.map((t) => t.recipientId),
    ...views.map((v) => v.recipientId),
    ...accepted.map((a) => a.recipientId),
  ]);
  const staff = await staffNames(r, [...decided.map((d) => d.decidedBy), ...grants.flatMap((g) => [g.createdBy, g.revokedBy])]);
  const opened = new Map<number, Person>();
  const person = (id: number) => opened.get(id) ?? opened.set(id, personOf(keys, people, id)).get(id) ?? personOf(keys, people, id);
  const grantItem = (g: AccessGrantRow): GrantItem => ({
    id: g.id,
    name: g.name,
    company: g.company,
    person: person(g.recipientId),
    documents: g.documents,
    createdAt: g.createdAt,
    expiresAt: g.expiresAt,
    revokedAt: g.revokedAt,
    revokedBy: g.revokedBy === null ? null : (staff.get(g.revokedBy) ?? `staff #${g.revokedBy}`),
    grantedBy: grantedBy(g, staff),
    state: grantState(g, now),
  });
  const byState: Record<GrantState, GrantItem[]> = { active: [], expiring: [], expired: [], revoked: [] };
  for (const g of grants) {
    const item = grantItem(g);
    byState[item.state].push(item);
  }
  return {
    pendingTotal,
    pending: pending.map((p) => ({
      id: p.id,
      name: p.name,
      company: p.company,
      person: person(p.recipientId),
      documents: p.documents,
      createdAt: p.createdAt,
      waitedMs: Math.max(0, now.getTime() - p.createdAt.getTime()),
    })),
    decided: decided.map((d) => ({
      id: d.id,
      name: d.name,
      company: d.company,
      person: person(d.recipientId),
      documents: d.documents,
      status: d.status,
      decidedBy: decider(d, staff),
      decidedAt: d.decidedAt,
    })),
    grants: byState,
    companies: groupByCompany(tallies, requested, granted, person),
    recentViews: views.map((v) => ({
      id: v.id,
      name: v.name,
      company: v.company,
      person: person(v.recipientId),
      document: v.document,
      kind: v.kind,
      at: v.at,
      ip: v.ip,
    })),
    acceptances: accepted.map((a: AcceptanceRow) => ({
      id: a.id,
      fullName: a.fullName,
      company: a.company,
      person: person(a.recipientId),
      ndaTitle: a.ndaTitle,
      ndaHash: a.ndaHash,
      acceptedAt: a.acceptedAt,
    })),
  };
}

const staffEntry = (staff: StaffAudit, action: AuditAction, target: string, summary: Record<string, unknown>) => ({
  ...staff,
  action,
  target,
  summary,
});

/** Console → Access: audited (`access.activity.viewed`) before it is read, then read on one snapshot. */
export async function accessOverview(database: Database, keys: Keys, staff: StaffAudit, now: Date): Promise<AccessOverview> {
  await database.transaction((tx) => writeAudit(tx, staffEntry(staff, 'access.activity.viewed', 'access', {}), now));
  return database.read((r) => readOverview(r, keys, now));
}

/** "3 d 4 h", "5 h 12 min", "12 min" */
export function formatWaited(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${minutes % 60} min`;
  return `${minutes} min`;
}

/** The first 12 hex digits of an NDA's SHA-256: enough to tell versions apart on a page. */
export const shortHash = (hash: string) => hash.slice(0, 12);

/** Rows per read of an export. */
export const EXPORT_PAGE_ROWS = 500;

export const ACTIVITY_CSV_HEADER = 'when,what,person,company,email,organisation,documents,by,request_id,grant_id,ip';

/** Audits the activity export (`access.activity.exported`) before its first byte; the rows it has now. */
export function auditActivityExport(database: Database, staff: StaffAudit, now: Date) {
  return database.transaction(async (tx) => {
    const counts = await activityCounts(tx);
    await writeAudit(tx, staffEntry(staff, 'access.activity.exported', 'access', { format: 'csv', ...counts }), now);
    return counts;
  });
}

/** Audits the NDA acceptance export (`access.acceptances.exported`) before its first byte. */
export function auditAcceptanceExport(database: Database, staff: StaffAudit, now: Date) {
  return database.transaction(async (tx) => {
    const rows = await acceptanceCount(tx);
    await writeAudit(tx, staffEntry(staff, 'access.acceptances.exported', 'nda_acceptances', { format: 'csv', rows }), now);
    return rows;
  });
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * One row per event: each request (`requested`) and its decision (`approved` / `refused`, by a rule or a
 * staff member), each grant (`granted`), its revocation (`revoked`) or its expiry (`expired`, once
 * expiresAt <= now), each view and download. Requests, then grants, then views, each in the order they
 * were made, read page by page as the stream is pulled.
 */
export async function* activityCsv(database: Database, keys: Keys, now: Date, pageRows = EXPORT_PAGE_ROWS): AsyncGenerator<string> {
  yield `${ACTIVITY_CSV_HEADER}\r\n`;
  const cells = (
    when: Date,
    what: string,
    name: string,
    company: string,
    person: Person,
    documents: readonly string[],
    by: string | null,
    requestId: number | null,
    grantId: number | null,
    ip: string | null = null,
  ) => csvRow([iso(when), what, name, company, person.email, person.organisation, documents.join(' '), by, requestId, grantId, ip]);

  yield* csvPages(
    database,
    pageRows,
    requestPage,
    (row) => [row.decidedBy],
    (row, page) => {
      const person = personOf(keys, page.people, row.recipientId);
      let lines = cells(row.createdAt, `requested (${row.status})`, row.name, row.company, person, row.documents, row.name, row.id, null);
      if (row.decidedAt && (row.status === 'approved' || row.status === 'refused'))
        lines += cells(row.decidedAt, row.status, row.name, row.company, person, row.documents, decider(row, page.staff), row.id, null);
      return lines;
    },
  );
  yield* csvPages(
    database,
    pageRows,
    grantPage,
    (g) => [g.createdBy, g.revokedBy],
    (g, page) => {
      const person = personOf(keys, page.people, g.recipientId);
      const until = `granted until ${g.expiresAt.toISOString()}`;
      let lines = cells(g.createdAt, until, g.name, g.company, person, g.documents, grantedBy(g, page.staff), g.requestId, g.id);
      if (g.revokedAt) {
        const by = g.revokedBy === null ? null : (page.staff.get(g.revokedBy) ?? `staff #${g.revokedBy}`);
        lines += cells(g.revokedAt, 'revoked', g.name, g.company, person, g.documents, by, g.requestId, g.id);
      } else if (g.expiresAt.getTime() <= now.getTime()) {
        lines += cells(g.expiresAt, 'expired', g.name, g.company, person, g.documents, null, g.requestId, g.id);
      }
      return lines;
    },
  );
  yield* csvPages(
    database,
    pageRows,
    viewPage,
    () => [],
    (v, page) =>
      cells(v.at, v.kind, v.name, v.company, personOf(keys, page.people, v.recipientId), [v.document], v.name, null, v.grantId, v.ip),
  );
}

/**
 * One kind of row as CSV, page by page by id (each page one read, with the people and staff it names), so
 * an export of any size holds one page at a time.
 */
async function* csvPages<Row extends { id: number; recipientId: number }>(
  database: Database,
  pageRows: number,
  read: (r: Reader, after: number, limit: number) => Promise<Row[]>,
  staffOf: (row: Row) => (number | null)[],
  lines: (row: Row, page: { people: Map<number, AccessPerson>; staff: Map<number, string> }) => string,
): AsyncGenerator<string> {
  let after = 0;
  for (;;) {
    const from = after;
    const page = await database.read(async (r) => {
      const rows = await read(r, from, pageRows);
      return {
        rows,
        people: await peopleByIds(
          r,
          rows.map((row) => row.recipientId),
        ),
        staff: await staffNames(r, rows.flatMap(staffOf)),
      };
    });
    const chunk = page.rows.map((row) => lines(row, page)).join('');
    if (chunk) yield chunk;
    const last = page.rows.at(-1);
    if (!last || page.rows.length < pageRows) return;
    after = last.id;
  }
}

export const ACCEPTANCES_CSV_HEADER = 'accepted_at,full_name,company,email,ip,user_agent,nda_hash,nda_title,grant_id';

/** The NDA acceptance record: every acceptance, oldest first, read page by page as the stream is pulled. */
export async function* acceptancesCsv(database: Database, keys: Keys, pageRows = EXPORT_PAGE_ROWS): AsyncGenerator<string> {
  yield `${ACCEPTANCES_CSV_HEADER}\r\n`;
  yield* csvPages(
    database,
    pageRows,
    acceptancePage,
    () => [],
    (a, page) => {
      const person = personOf(keys, page.people, a.recipientId);
      return csvRow([iso(a.acceptedAt), a.fullName, a.company, person.email, a.ip, a.userAgent, a.ndaHash, a.ndaTitle, a.grantId]);
    },
  );
}
