/**
 * When a document (content/documents) expires, worked out at the moment of
 * asking: publicly it is "Expired on <date>" from its expiry day (UTC) on,
 * without a rebuild; staff see it on the dashboard from
 * `policies.documentExpiryWarningDays` before, and hear of it once per
 * document and expiry date through the staff channel. The once is the jobs
 * table's unique key: the hourly planning step adds a warning job of key
 * `document-expiry:<slug>:<expiry day>` unless one exists, on any node, and
 * the job's message and its completion are one transaction.
 */
import type { Database } from '../../../db/engine/types.ts';
import type { DocumentSource } from '../content/load.ts';
import { completeJob, type JobHandler, scheduleJobOnce } from '../jobs/jobs.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';

const DAY_MS = 86_400_000;
export const DOCUMENT_EXPIRY_JOB = 'document-expiry-warning';

/** Whether a document expiring at `expires` (a UTC day) is expired at `now`: from that day on. */
export function isExpired(expires: Date | undefined, now: Date): boolean {
  return expires !== undefined && now.getTime() >= expires.getTime();
}

export interface ExpiringDocument {
  slug: string;
  title: string;
  access: DocumentSource['access'];
  expires: Date;
  expired: boolean;
  /** whole days until it expires (0 on the day and after) */
  daysLeft: number;
}

/** Documents expired, or expiring within `warnDays` of `now`, soonest first. */
export function expiringDocuments(documents: readonly DocumentSource[], warnDays: number, now: Date): ExpiringDocument[] {
  const soonest = now.getTime() + warnDays * DAY_MS;
  return documents
    .flatMap((d) =>
      d.expires && d.expires.getTime() <= soonest
        ? [
            {
              slug: d.slug,
              title: d.title,
              access: d.access,
              expires: d.expires,
              expired: isExpired(d.expires, now),
              daysLeft: Math.max(0, Math.ceil((d.expires.getTime() - now.getTime()) / DAY_MS)),
            },
          ]
        : [],
    )
    .sort((a, b) => a.expires.getTime() - b.expires.getTime() || a.slug.localeCompare(b.slug));
}

const day = (d: Date) => d.toISOString().slice(0, 10);

/** The key of a document's one warning for one expiry date: a new date (a renewed document) is a new warning. */
export function expiryWarningKey(slug: string, expires: Date): string {
  return `document-expiry:${slug}:${day(expires)}`;
}

/** Adds the warning job of every document within its warning window that has none yet; the keys added. */
export async function planExpiryWarnings(
  database: Database,
  documents: readonly DocumentSource[],
  warnDays: number,
  now: Date,
): Promise<string[]> {
  const due = expiringDocuments(documents, warnDays, now);
  if (due.length === 0) return [];
  return database.transaction(async (tx) => {
    const added: string[] = [];
    for (const d of due) {
      const key = expiryWarningKey(d.slug, d.expires);
      const payload = { slug: d.slug, title: d.title, expires: day(d.expires) };
      if (await scheduleJobOnce(tx, key, DOCUMENT_EXPIRY_JOB, now, payload, now)) added.push(key);
    }
    return added;
  });
}

export interface ExpiryWarningDeps {
  database: Database;
  staff: StaffChannels;
  publicUrl: URL;
}

/** The staff message of one warning job: it and the job's completion commit together. */
export function documentJobHandlers(deps: ExpiryWarningDeps): Record<string, JobHandler> {
  return {
    [DOCUMENT_EXPIRY_JOB]: async (job, now) => {
      const title = String(job.payload.title);
      const expires = new Date(`${String(job.payload.expires)}T00:00:00Z`);
      const when = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(expires);
      const expired = isExpired(expires, now);
      const subject = expired ? `Document expired: ${title}` : `Document expires soon: ${title}`;
      const days = Math.ceil((expires.getTime() - now.getTime()) / DAY_MS);
      const text = expired
        ? `${title} expired on ${when}; the trust center marks it expired. Replace it in content/documents with the renewed one, or remove it. Dashboard: ${new URL('console', deps.publicUrl).href}`
        : `${title} expires on ${when} (in ${days} ${days === 1 ? 'day' : 'days'}); from then on the trust center marks it expired. Put the renewed one in content/documents before then. Dashboard: ${new URL('console', deps.publicUrl).href}`;
      await deps.database.transaction(async (tx) => {
        await notifyStaff(tx, deps.staff, { kind: 'staff-document-expiry', subject, text }, now);
        await completeJob(tx, job.id, now);
      });
    },
  };
}
