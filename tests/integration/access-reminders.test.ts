/**
 * Reminders of waiting access requests (src/core/access/reminders.ts) on each engine, on a clock: a pending
 * request confirmed Friday 16:00 is not reminded over the weekend, is reminded Monday 16:00, then not again
 * that day, then Tuesday 16:00; a request decided meanwhile is not; two nodes reminding at once remind once.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { remindWaitingRequests } from '../../src/core/access/reminders.ts';
import { ensureRecipient } from '../../src/core/notify/recipients.ts';
import { changeRequestStatus, insertAccessRequest } from '../../src/stores/access-requests.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const FRIDAY_16 = new Date('2026-12-04T16:00:00.000Z');
const at = (iso: string) => new Date(iso);

describe.each(enginesUnderTest())('reminders on $name', (engine) => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ database, close } = await engine.open());
    await staffMemberOn(database, 'admin', { enrolled: true, email: `reviewer-${engine.name}@lumenwork.example` });
  }, 60_000);
  afterAll(() => close());

  const deps = () => ({
    database,
    staff: { keys: TEST_KEYS, staffSlack: null },
    publicUrl: new URL('http://127.0.0.1:4321/'),
    gated: [{ slug: 'soc-2-type-ii-report', title: 'SOC 2 Type II report' }],
  });
  const reminders = () =>
    database.read(async (r) => {
      const q = reading(r);
      return q.db.select().from(q.t.notifications).where(eq(q.t.notifications.kind, 'staff-access-reminder'));
    });

  async function pendingRequest(email: string, verifiedAt: Date): Promise<number> {
    return database.transaction(async (tx) => {
      const recipient = await ensureRecipient(tx, TEST_KEYS, { channel: 'email', address: email }, verifiedAt);
      const id = await insertAccessRequest(tx, {
        recipientId: recipient.id,
        domain: email.split('@')[1] ?? '',
        name: 'Dana',
        company: 'Acme',
        reason: 'review',
        documents: ['soc-2-type-ii-report'],
        createdAt: verifiedAt,
      });
      await changeRequestStatus(tx, id, 'unverified', { status: 'pending', verifiedAt });
      return id;
    });
  }

  it('Friday 16:00 → Monday 16:00, once per working day, and not once decided', async () => {
    const waiting = await pendingRequest('dana@acme.example', FRIDAY_16);
    const decided = await pendingRequest('lee@acme.example', FRIDAY_16);
    await database.transaction((tx) => changeRequestStatus(tx, decided, 'pending', { status: 'approved', decidedVia: 'staff' }));
    for (const t of ['2026-12-05T16:00:00Z', '2026-12-06T23:00:00Z', '2026-12-07T15:59:00Z'])
      expect(await remindWaitingRequests(deps(), at(t)), t).toBe(0);
    expect(await remindWaitingRequests(deps(), at('2026-12-07T16:00:00Z'))).toBe(1);
    expect(await remindWaitingRequests(deps(), at('2026-12-07T20:00:00Z'))).toBe(0);
    expect(await remindWaitingRequests(deps(), at('2026-12-08T15:00:00Z'))).toBe(0);
    expect(await remindWaitingRequests(deps(), at('2026-12-08T16:05:00Z'))).toBe(1);
    const sent = await reminders();
    expect(sent.length).toBe(2);
    expect(JSON.stringify(sent[0]?.content)).toContain(`/console/access/requests/${waiting}`);
    expect(JSON.stringify(sent)).not.toContain('dana@acme.example');
  });

  it('two nodes reminding at once remind once', async () => {
    await pendingRequest('pat@race.example', FRIDAY_16);
    const before = (await reminders()).length;
    // the first request is due again Wednesday; the new one since Monday
    const now = at('2026-12-09T17:00:00Z');
    const [a, b] = await Promise.all([remindWaitingRequests(deps(), now), remindWaitingRequests(deps(), now)]);
    expect(a + b).toBe(2);
    expect((await reminders()).length).toBe(before + 2);
  });
});
