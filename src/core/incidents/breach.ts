/**
 * Data breaches: the fields GDPR Art. 33(3) requires (nature, categories and
 * approximate numbers of data subjects and records, likely consequences,
 * measures, the DPO as contact point) and the clocks from awareness:
 * detect, assess and notify customers (targets in content/site.yaml) and
 * the supervisory authority's 72 hours. The notify clock is computed from
 * what each notice's deliveries recorded (src/core/notify/reach.ts): it is
 * never met by a notice that reached no one or not everyone.
 * The facts are src/stores/breaches.ts's; a breach's notices and whom they
 * reached are read in one snapshot (notify/reach.ts).
 */
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import { breachRow, recordAuthorityNotified, saveBreachFacts } from '../../stores/breaches.ts';
import { updatesInOrder } from '../../stores/incidents.ts';
import type { Site } from '../content/schema.ts';
import { describeReach, type NotificationReach, notificationReach } from '../notify/reach.ts';
import { breachPhase } from './messages.ts';
import type { IncidentStatus } from './types.ts';

export interface BreachFields {
  awareAt: Date;
  occurredAt: Date | null;
  nature: string;
  subjects: string;
  records: string;
  consequences: string;
  measures: string;
}

export const breachFieldLabels = {
  nature: 'Nature of the breach',
  subjects: 'Data subjects: categories and approximate number',
  records: 'Personal data records: categories and approximate number',
  consequences: 'Likely consequences',
  measures: 'Measures taken or proposed',
} as const;

type TextField = keyof typeof breachFieldLabels;
const textFields = Object.keys(breachFieldLabels) as TextField[];

/** Why a first breach notice cannot go out yet, or null. "not yet known" is an answer; nothing is not. */
export function breachFieldsProblem(fields: BreachFields, now: Date): string | null {
  const empty = textFields.filter((f) => fields[f].trim() === '');
  if (empty.length) {
    return `A breach notice must say what is known and what is not. Fill in: ${empty.map((f) => breachFieldLabels[f]).join('; ')}. Write "not yet known" where that is the truth.`;
  }
  const long = textFields.find((f) => fields[f].length > 4000);
  if (long) return `${breachFieldLabels[long]} is too long (4,000 characters at most).`;
  if (Number.isNaN(fields.awareAt.getTime()) || fields.awareAt.getTime() > now.getTime() + 60_000)
    return 'The time you became aware of the breach must be a time in the past (UTC).';
  if (fields.occurredAt && (Number.isNaN(fields.occurredAt.getTime()) || fields.occurredAt > fields.awareAt))
    return 'When the breach began cannot be after you became aware of it.';
  return null;
}

/**
 * The Art. 33(3) facts, as markdown appended to the first notice so every channel carries them. Its
 * heading is `#`: pages and emails demote it to h3, the level below their own h2 (markdown.ts).
 */
export function breachNoticeSection(fields: BreachFields, site: Site): string {
  const { privacy } = site.contacts;
  return [
    '# What we know so far',
    `- **${breachFieldLabels.nature}:** ${fields.nature.trim()}`,
    `- **${breachFieldLabels.subjects}:** ${fields.subjects.trim()}`,
    `- **${breachFieldLabels.records}:** ${fields.records.trim()}`,
    `- **${breachFieldLabels.consequences}:** ${fields.consequences.trim()}`,
    `- **${breachFieldLabels.measures}:** ${fields.measures.trim()}`,
    `- **Became aware:** ${fields.awareAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    `- **Contact:** ${privacy.name}, ${privacy.role}, ${privacy.email}`,
  ].join('\n');
}

/** Writes the breach's facts in the caller's transaction (the one that declares it). */
export async function saveBreachFields(tx: Tx, incidentId: number, fields: BreachFields): Promise<void> {
  await saveBreachFacts(tx, incidentId, {
    awareAt: fields.awareAt,
    occurredAt: fields.occurredAt,
    nature: fields.nature,
    subjects: fields.subjects,
    records: fields.records,
    consequences: fields.consequences,
    measures: fields.measures,
  });
}

export interface BreachRecord extends BreachFields {
  authorityNotifiedAt: Date | null;
}

export async function readBreachRecord(r: Reader | Tx, incidentId: number): Promise<BreachRecord | null> {
  const row = await breachRow(r, incidentId);
  if (!row) return null;
  const { incidentId: _incident, ...record } = row;
  return record;
}

export function breachRecord(database: Database, incidentId: number): Promise<BreachRecord | null> {
  return database.read((r) => readBreachRecord(r, incidentId));
}

/**
 * Records that the supervisory authority was notified, once (a conditional update: of concurrent
 * calls exactly one records it), with `audit` written in the same transaction when it does.
 */
export function markAuthorityNotified(
  database: Database,
  incidentId: number,
  at: Date,
  audit: (tx: Tx) => Promise<void> = async () => {},
): Promise<boolean> {
  return database.transaction(async (tx) => {
    const recorded = await recordAuthorityNotified(tx, incidentId, at);
    if (recorded) await audit(tx);
    return recorded;
  });
}

/**
 * met: done by the deadline; due: not done, the deadline ahead; missed: the deadline passed before it was
 * done (doneAt says when, if it was done since); unknown: no deadline (detect, when the start is not known).
 * The notify clock has two problem states, never "met": incomplete, its notices reached some intended
 * recipients but not all, and nothing more is on its way; unreached, its notices reached no one.
 */
export type ClockState = 'met' | 'due' | 'missed' | 'incomplete' | 'unreached' | 'unknown';

export interface BreachClock {
  name: string;
  deadline: Date | null;
  doneAt: Date | null;
  state: ClockState;
  /** the deadline has passed and the clock was not met by it */
  overdue: boolean;
  /** what the recorded facts behind the state are, in words (the notify clock: what the notices reached) */
  detail: string | null;
}

function clock(name: string, deadline: Date | null, doneAt: Date | null, now: Date): BreachClock {
  if (!deadline) return { name, deadline, doneAt, state: 'unknown', overdue: false, detail: null };
  if (doneAt) return { name, deadline, doneAt, state: doneAt <= deadline ? 'met' : 'missed', overdue: doneAt > deadline, detail: null };
  return { name, deadline, doneAt, state: now <= deadline ? 'due' : 'missed', overdue: now > deadline, detail: null };
}

/** One notice to customers about the breach: a published update and whom its notification reached. */
export interface BreachNotice {
  updateId: number;
  /** its place among the breach's notices, from 1 (GDPR Art. 33(4) phases) */
  phase: number;
  /** "Initial notice", "Notice 2", … as the notice itself says */
  label: string;
  status: IncidentStatus;
  publishedAt: Date;
  /** null for an update published before updates recorded their notification: no delivery of it is known */
  notificationId: number | null;
  reach: Omit<NotificationReach, 'notificationId'>;
}

const nothingRecorded: Omit<NotificationReach, 'notificationId'> = {
  intended: 0,
  reached: 0,
  delivered: 0,
  failed: 0,
  suppressed: 0,
  logged: 0,
  onTheWay: 0,
  channels: {},
  lastReachedAt: null,
  outcome: 'no-one',
};

/** The breach's notices from its updates (oldest first) and whom each notification reached. */
export function noticesOf(
  updates: readonly { id: number; status: IncidentStatus; publishedAt: Date; notificationId: number | null }[],
  reach: Map<number, NotificationReach>,
): BreachNotice[] {
  return updates.map((u, i) => ({
    updateId: u.id,
    phase: i + 1,
    label: breachPhase(i + 1).label,
    status: u.status,
    publishedAt: u.publishedAt,
    notificationId: u.notificationId,
    reach: (u.notificationId !== null && reach.get(u.notificationId)) || nothingRecorded,
  }));
}

/** The breach's notices in the order they were published, each with whom it reached. */
export async function breachNotices(database: Database, incidentId: number): Promise<BreachNotice[]> {
  return database.read((r) => readBreachNotices(r, incidentId));
}

/** The breach's notices, read in the caller's snapshot or transaction. */
export async function readBreachNotices(r: Reader | Tx, incidentId: number): Promise<BreachNotice[]> {
  const updates = await updatesInOrder(r, incidentId);
  const reach = await notificationReach(
    r,
    updates.flatMap((u) => (u.notificationId === null ? [] : [u.notificationId])),
  );
  return noticesOf(updates, reach);
}

const utc = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/**
 * The notify-customers clock, from the notices' deliveries. It is met when a
 * notice has reached every recipient it was queued for (at least one): done
 * at the time the last of them was reached, met if that is by the deadline,
 * missed if after. Until then: due (or missed once the deadline passes)
 * while nothing was sent or deliveries are on their way; incomplete when a
 * notice reached some but lost others (failed, not sent, only logged);
 * unreached when the notices reached no one. A later notice that reaches
 * everyone meets it then; retried deliveries count when they are reached.
 */
function notifyClock(name: string, deadline: Date, notices: BreachNotice[], now: Date): BreachClock {
  const overdue = now > deadline;
  const said = (n: BreachNotice) => `${n.label} (${utc(n.publishedAt)}) ${describeReach(n.reach)}`;
  const complete = notices
    .filter((n) => n.reach.outcome === 'everyone' && n.reach.lastReachedAt !== null)
    .sort((a, b) => (a.reach.lastReachedAt?.getTime() ?? 0) - (b.reach.lastReachedAt?.getTime() ?? 0));
  const [first] = complete;
  const doneAt = first?.reach.lastReachedAt;
  if (first && doneAt) {
    const met = doneAt <= deadline;
    // earlier notices that did not reach everyone stay on record: those they lost may not have heard at all
    const before = notices.filter((n) => n.phase < first.phase && n.reach.outcome !== 'everyone');
    return {
      name,
      deadline,
      doneAt,
      state: met ? 'met' : 'missed',
      overdue: !met,
      detail: `${said(first)}; the last was reached ${utc(doneAt)}${met ? '' : ', after the deadline'}.${
        before.length ? ` Before it: ${before.map(said).join('; ')}.` : ''
      }`,
    };
  }
  const running = { name, deadline, doneAt: null, overdue };
  if (notices.length === 0) return { ...running, state: overdue ? 'missed' : 'due', detail: 'No notice has gone to customers yet.' };
  const sending = notices.filter((n) => n.reach.outcome === 'on-the-way').at(-1);
  if (sending) return { ...running, state: overdue ? 'missed' : 'due', detail: `${said(sending)}.` };
  const partial = notices.filter((n) => n.reach.outcome === 'not-everyone').sort((a, b) => b.reach.reached - a.reach.reached)[0];
  if (partial)
    return {
      ...running,
      state: 'incomplete',
      detail: `${said(partial)}. Retry what failed or send a further notice: the clock is met when a notice reaches everyone it was queued for.`,
    };
  return {
    ...running,
    state: 'unreached',
    detail: `${notices.map(said).join('. ')}. The clock runs on until a notice reaches the people it is meant for.`,
  };
}

/**
 * The four clocks. Detect runs from when the breach began (if known) to
 * awareness; assess ends with the first update past "investigating";
 * notify ends when a customer notice has reached everyone it was queued
 * for (see notifyClock); the authority's 72 hours end when staff record
 * that it was notified.
 */
export async function breachClocks(
  database: Database,
  site: { policies: Pick<Site['policies'], 'breachClocks'> },
  incidentId: number,
  record: BreachRecord,
  now: Date,
): Promise<BreachClock[]> {
  return clocksOf(site, await breachNotices(database, incidentId), record, now);
}

/** The four clocks from the breach's record and its notices. */
export function clocksOf(
  site: { policies: Pick<Site['policies'], 'breachClocks'> },
  notices: BreachNotice[],
  record: BreachRecord,
  now: Date,
): BreachClock[] {
  const { detectHours, assessHours, notifyHours } = site.policies.breachClocks;
  const hours = (from: Date, h: number) => new Date(from.getTime() + h * 3_600_000);
  const assessed = notices.find((u) => u.status !== 'investigating');
  return [
    clock(
      `Detect within ${detectHours} h`,
      record.occurredAt ? hours(record.occurredAt, detectHours) : null,
      record.occurredAt ? record.awareAt : null,
      now,
    ),
    clock(`Assess within ${assessHours} h of awareness`, hours(record.awareAt, assessHours), assessed ? assessed.publishedAt : null, now),
    notifyClock(`Notify customers within ${notifyHours} h`, hours(record.awareAt, notifyHours), notices, now),
    clock('Notify the supervisory authority within 72 h (GDPR Art. 33)', hours(record.awareAt, 72), record.authorityNotifiedAt, now),
  ];
}

/** A clock that needs a person: running, missed, or a problem state. */
export function clockNeedsAttention(c: BreachClock): boolean {
  return c.state === 'due' || c.state === 'missed' || c.state === 'incomplete' || c.state === 'unreached';
}
