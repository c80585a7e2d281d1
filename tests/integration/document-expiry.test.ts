/**
 * The staff warning of a document about to expire (src/core/documents/expiry.ts), on each engine: sent
 * once per document and expiry date however often the hourly step plans it and however many runners
 * (nodes) run it, not before the warning window, and again for a renewed document's new date.
 */
import { and, eq } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import type { DocumentSource } from '../../src/core/content/load.ts';
import { documentJobHandlers, expiringDocuments, planExpiryWarnings } from '../../src/core/documents/expiry.ts';
import { runDueJobs } from '../../src/core/jobs/jobs.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-12-03T10:00:00Z');

function document(slug: string, expires: string | undefined): DocumentSource {
  return {
    slug,
    title: `Report ${slug}`,
    description: 'A report.',
    category: 'audit-report',
    framework: 'soc-2',
    file: `${slug}.pdf`,
    period: { from: new Date('2025-01-01'), to: new Date('2025-12-31') },
    expires: expires ? new Date(`${expires}T00:00:00Z`) : undefined,
    access: 'nda',
    source: `content/documents/${slug}.md`,
    pdf: `content/documents/${slug}.pdf`,
    bytes: 1000,
  };
}

async function warningsSent(database: Database): Promise<{ title: string }[]> {
  return database.read(async (r) => {
    const q = reading(r);
    const n = q.t.notifications;
    return q.db
      .select({ title: n.title })
      .from(n)
      .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.kind, 'staff-document-expiry')))
      .orderBy(n.id);
  });
}

describe('expiringDocuments', () => {
  const documents = [
    document('later', '2027-06-01'),
    document('soon', '2026-12-20'),
    document('gone', '2026-12-01'),
    document('none', undefined),
  ];

  it('lists the expired and those within the window, soonest first, and no others', () => {
    const listed = expiringDocuments(documents, 30, NOW);
    expect(listed.map((d) => [d.slug, d.expired, d.daysLeft])).toEqual([
      ['gone', true, 0],
      ['soon', false, 17],
    ]);
  });

  it('counts a document expired from its expiry day on (UTC)', () => {
    const onTheDay = expiringDocuments([document('today', '2026-12-03')], 30, new Date('2026-12-03T00:00:00Z'));
    expect(onTheDay[0]?.expired).toBe(true);
    const dayBefore = expiringDocuments([document('today', '2026-12-03')], 30, new Date('2026-12-02T23:59:59Z'));
    expect(dayBefore[0]?.expired).toBe(false);
  });
});

describe.each(enginesUnderTest())('staff warnings on $name', (engine) => {
  let opened: OpenedEngine;
  beforeEach(async () => {
    opened = await engine.open();
    await staffMemberOn(opened.database, 'owner', { enrolled: true });
  });
  afterEach(async () => {
    await opened?.close();
  });

  const handlers = (database: Database) =>
    documentJobHandlers({ database, staff: { keys: TEST_KEYS, staffSlack: null }, publicUrl: new URL('https://trust.example') });

  it('warns once per document and expiry date, however often planned and run, on two runners', async () => {
    const { database } = opened;
    const other = opened.another();
    const documents = [document('soc-2', '2026-12-20'), document('iso', '2027-06-01')];

    // 40 days ahead: outside the 30-day window, nothing is planned.
    expect(await planExpiryWarnings(database, documents, 30, new Date('2026-11-10T00:00:00Z'))).toEqual([]);

    // Two nodes plan and run at once, then every hour for three days.
    const planned = await Promise.all([planExpiryWarnings(database, documents, 30, NOW), planExpiryWarnings(other, documents, 30, NOW)]);
    expect(planned.flat()).toEqual(['document-expiry:soc-2:2026-12-20']);
    await Promise.all([runDueJobs(database, handlers(database), NOW), runDueJobs(other, handlers(other), NOW)]);
    for (let hour = 1; hour <= 72; hour += 1) {
      const at = new Date(NOW.getTime() + hour * 3_600_000);
      expect(await planExpiryWarnings(hour % 2 ? database : other, documents, 30, at)).toEqual([]);
      await runDueJobs(database, handlers(database), at);
    }
    expect(await warningsSent(database)).toEqual([{ title: 'Document expires soon: Report soc-2' }]);

    // On and after the expiry day: still that one warning.
    await planExpiryWarnings(database, documents, 30, new Date('2026-12-21T00:00:00Z'));
    await runDueJobs(database, handlers(database), new Date('2026-12-21T00:00:00Z'));
    expect(await warningsSent(database)).toHaveLength(1);

    // The renewed report has a new expiry date: a new warning when that one nears.
    const renewed = [document('soc-2', '2027-12-20')];
    const nearing = new Date(new Date('2027-12-20T00:00:00Z').getTime() - 10 * DAY);
    expect(await planExpiryWarnings(database, renewed, 30, nearing)).toEqual(['document-expiry:soc-2:2027-12-20']);
    await runDueJobs(database, handlers(database), nearing);
    expect((await warningsSent(database)).map((w) => w.title)).toEqual([
      'Document expires soon: Report soc-2',
      'Document expires soon: Report soc-2',
    ]);
  });

  it('tells of a document already expired when first seen as expired, once', async () => {
    const { database } = opened;
    const documents = [document('gone', '2026-12-01')];
    await planExpiryWarnings(database, documents, 30, NOW);
    await runDueJobs(database, handlers(database), NOW);
    await planExpiryWarnings(database, documents, 30, new Date(NOW.getTime() + DAY));
    await runDueJobs(database, handlers(database), new Date(NOW.getTime() + DAY));
    expect(await warningsSent(database)).toEqual([{ title: 'Document expired: Report gone' }]);
  });
});
