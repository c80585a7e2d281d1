/**
 * Data breaches: the fields GDPR Art. 33(3) requires (nature, categories and
 * approximate numbers of data subjects and records, likely consequences,
 * measures, the DPO as contact point) and the clocks from awareness:
 * detect, assess and notify customers (targets in content/site.yaml) and
 * the supervisory authority's 72 hours.
 */
import type { Db } from '../../../db/client.ts';
import type { Site } from '../content/schema.ts';

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

/** The Art. 33(3) facts, as markdown appended to the first notice so every channel carries them. */
export function breachNoticeSection(fields: BreachFields, site: Site): string {
  const { privacy } = site.contacts;
  return [
    '### What we know so far',
    `- **${breachFieldLabels.nature}:** ${fields.nature.trim()}`,
    `- **${breachFieldLabels.subjects}:** ${fields.subjects.trim()}`,
    `- **${breachFieldLabels.records}:** ${fields.records.trim()}`,
    `- **${breachFieldLabels.consequences}:** ${fields.consequences.trim()}`,
    `- **${breachFieldLabels.measures}:** ${fields.measures.trim()}`,
    `- **Became aware:** ${fields.awareAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    `- **Contact:** ${privacy.name}, ${privacy.role}, ${privacy.email}`,
  ].join('\n');
}

export function saveBreachFields(db: Db, incidentId: number, fields: BreachFields): void {
  db.$client
    .prepare(
      `INSERT INTO breach_details (incident_id, aware_at, occurred_at, nature, subjects, records, consequences, measures) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (incident_id) DO UPDATE SET aware_at = excluded.aware_at, occurred_at = excluded.occurred_at, nature = excluded.nature,
         subjects = excluded.subjects, records = excluded.records, consequences = excluded.consequences, measures = excluded.measures`,
    )
    .run(
      incidentId,
      fields.awareAt.getTime(),
      fields.occurredAt?.getTime() ?? null,
      fields.nature,
      fields.subjects,
      fields.records,
      fields.consequences,
      fields.measures,
    );
}

export interface BreachRecord extends BreachFields {
  authorityNotifiedAt: Date | null;
}

export function breachRecord(db: Db, incidentId: number): BreachRecord | null {
  const row = db.$client.prepare('SELECT * FROM breach_details WHERE incident_id = ?').get(incidentId) as
    | {
        aware_at: number;
        occurred_at: number | null;
        nature: string;
        subjects: string;
        records: string;
        consequences: string;
        measures: string;
        authority_notified_at: number | null;
      }
    | undefined;
  if (!row) return null;
  return {
    awareAt: new Date(row.aware_at),
    occurredAt: row.occurred_at === null ? null : new Date(row.occurred_at),
    nature: row.nature,
    subjects: row.subjects,
    records: row.records,
    consequences: row.consequences,
    measures: row.measures,
    authorityNotifiedAt: row.authority_notified_at === null ? null : new Date(row.authority_notified_at),
  };
}

export function markAuthorityNotified(db: Db, incidentId: number, at: Date): boolean {
  return (
    db.$client
      .prepare('UPDATE breach_details SET authority_notified_at = ? WHERE incident_id = ? AND authority_notified_at IS NULL')
      .run(at.getTime(), incidentId).changes === 1
  );
}

export type ClockState = 'met' | 'due' | 'missed' | 'unknown';

export interface BreachClock {
  name: string;
  deadline: Date | null;
  doneAt: Date | null;
  state: ClockState;
}

function clock(name: string, deadline: Date | null, doneAt: Date | null, now: Date): BreachClock {
  if (!deadline) return { name, deadline, doneAt, state: 'unknown' };
  if (doneAt) return { name, deadline, doneAt, state: doneAt <= deadline ? 'met' : 'missed' };
  return { name, deadline, doneAt, state: now <= deadline ? 'due' : 'missed' };
}

/**
 * The four clocks. Detect runs from when the breach began (if known) to
 * awareness; assess ends with the first update past "investigating";
 * notify ends with the first customer notice; the authority's 72 hours end
 * when staff record that it was notified.
 */
export function breachClocks(db: Db, site: Site, incidentId: number, record: BreachRecord, now: Date): BreachClock[] {
  const { detectHours, assessHours, notifyHours } = site.policies.breachClocks;
  const hours = (from: Date, h: number) => new Date(from.getTime() + h * 3_600_000);
  const updates = db.$client
    .prepare('SELECT status, published_at FROM incident_updates WHERE incident_id = ? ORDER BY published_at')
    .all(incidentId) as { status: string; published_at: number }[];
  const assessed = updates.find((u) => u.status !== 'investigating');
  const firstNotice = updates[0];
  return [
    clock(
      `Detect within ${detectHours} h`,
      record.occurredAt ? hours(record.occurredAt, detectHours) : null,
      record.occurredAt ? record.awareAt : null,
      now,
    ),
    clock(
      `Assess within ${assessHours} h of awareness`,
      hours(record.awareAt, assessHours),
      assessed ? new Date(assessed.published_at) : null,
      now,
    ),
    clock(
      `Notify customers within ${notifyHours} h`,
      hours(record.awareAt, notifyHours),
      firstNotice ? new Date(firstNotice.published_at) : null,
      now,
    ),
    clock('Notify the supervisory authority within 72 h (GDPR Art. 33)', hours(record.awareAt, 72), record.authorityNotifiedAt, now),
  ];
}
