/**
 * The breach clocks, computed from what is recorded: the notify-customers
 * clock is met only when a notice reached every recipient it was queued
 * for (accepted by the provider, or confirmed delivered), at the time the
 * last of them was reached. The delivery rows here are written as the
 * dispatcher and the provider callbacks write them. On each engine (SQLite
 * always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, as the application
 * role under row-level security): one database per engine, an incident of its
 * own per case, seeded through the builder.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName, DeliveryStatus } from '../../db/schema/notify.ts';
import { attention } from '../../src/core/console/dashboard.ts';
import type { Site } from '../../src/core/content/schema.ts';
import { type BreachClock, breachClocks, breachRecord } from '../../src/core/incidents/breach.ts';
import type { IncidentStatus } from '../../src/core/incidents/types.ts';
import { writeRows } from '../helpers/engine-server.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';

const HOUR = 3_600_000;
const AWARE = new Date('2026-05-04T08:00:00Z').getTime();
/** awareness + 72 h, as content/site.yaml sets it */
const DEADLINE = AWARE + 72 * HOUR;
const BEFORE_DEADLINE = new Date(AWARE + 10 * HOUR);
const AFTER_DEADLINE = new Date(DEADLINE + 5 * HOUR);
const site = {
  policies: {
    breachClocks: { detectHours: 1, assessHours: 6, notifyHours: 72 },
    backups: { enabled: false, time: '02:30', keep: 14, directory: 'backups' },
  },
} as Site;

interface Row {
  channel?: ChannelName;
  status: DeliveryStatus;
  /** hours after awareness */
  sentAt?: number;
  finishedAt?: number;
  /** the log transport's message id: written down, not sent */
  logged?: boolean;
}

const sent = (hours: number, channel: ChannelName = 'email'): Row => ({ channel, status: 'sent', sentAt: hours });

describe.each(enginesUnderTest())('on $name', (engine) => {
  let opened: OpenedEngine;
  let database: Database;
  let incidentId: number;
  beforeAll(async () => {
    opened = await engine.open();
    database = opened.database;
  });
  afterAll(() => opened?.close());

  beforeEach(async () => {
    incidentId = await writeRows(database, async (q) => {
      const aware = new Date(AWARE);
      const [incident] = await q.db
        .insert(q.t.incidents)
        .values({
          kind: 'breach',
          severity: 'critical',
          title: 'Exports',
          status: 'identified',
          public: false,
          startedAt: aware,
          createdAt: aware,
        })
        .returning({ id: q.t.incidents.id });
      if (!incident) throw new Error('no incident');
      await q.db.insert(q.t.breachDetails).values({
        incidentId: incident.id,
        awareAt: aware,
        nature: 'n',
        subjects: 's',
        records: 'r',
        consequences: 'not yet known',
        measures: 'm',
      });
      return incident.id;
    });
  });

  /** A published notice (an incident update) and the deliveries its notification was queued for. */
  function notice(publishedHours: number, rows: Row[], status: IncidentStatus = 'identified'): Promise<number> {
    const published = new Date(AWARE + publishedHours * HOUR);
    return writeRows(database, async (q) => {
      const [notification] = await q.db
        .insert(q.t.notifications)
        .values({
          kind: 'incident',
          threadKey: `incident:${incidentId}`,
          title: 'Exports',
          content: {},
          audience: {},
          recipientCount: rows.length,
          createdAt: published,
        })
        .returning({ id: q.t.notifications.id });
      if (!notification) throw new Error('no notification');
      const notificationId = notification.id;
      await q.db
        .insert(q.t.incidentUpdates)
        .values({ incidentId, status, body: 'We found unauthorised access.', publishedAt: published, notificationId });
      const hours = (h: number | undefined) => (h === undefined ? null : new Date(AWARE + h * HOUR));
      if (rows.length > 0)
        await q.db.insert(q.t.deliveries).values(
          rows.map((r, i) => ({
            notificationId,
            recipientId: null,
            channel: r.channel ?? 'email',
            status: r.status,
            attempts: 1,
            nextAttemptAt: published,
            providerMessageId: r.sentAt === undefined ? null : r.logged ? `log-${notificationId}-${i}` : `re_${notificationId}_${i}`,
            sentAt: hours(r.sentAt),
            finishedAt: hours(r.finishedAt),
          })),
        );
      return notificationId;
    });
  }

  async function notifyClock(now: Date): Promise<BreachClock> {
    const record = await breachRecord(database, incidentId);
    if (!record) throw new Error('no breach record');
    const clock = (await breachClocks(database, site, incidentId, record, now)).find((c) => c.name.startsWith('Notify customers'));
    if (!clock) throw new Error('no notify clock');
    return clock;
  }

  describe('the notify-customers clock', () => {
    it('is not met by a notice that queued no delivery: the notice reached no one, and the clock keeps running', async () => {
      await notice(1, []);
      const due = await notifyClock(BEFORE_DEADLINE);
      expect(due.state).toBe('unreached');
      expect(due.doneAt).toBeNull();
      expect(due.overdue).toBe(false);
      expect(due.detail).toMatch(/reached no one/);
      const late = await notifyClock(AFTER_DEADLINE);
      expect(late.state).toBe('unreached');
      expect(late.overdue).toBe(true);
    });

    it('is met when every delivery was accepted, at the time the last one was', async () => {
      await notice(1, [sent(1.1), sent(1.3), { channel: 'slack', status: 'delivered', sentAt: 1.2, finishedAt: 2 }]);
      const clock = await notifyClock(BEFORE_DEADLINE);
      expect(clock.state).toBe('met');
      expect(clock.doneAt).toEqual(new Date(AWARE + 1.3 * HOUR));
      expect(clock.detail).toMatch(/reached all 3/);
    });

    it('a confirmed delivery without a recorded acceptance counts from its confirmation', async () => {
      await notice(1, [sent(1.1), { status: 'delivered', finishedAt: 1.5 }]);
      expect(await notifyClock(BEFORE_DEADLINE)).toMatchObject({ state: 'met', doneAt: new Date(AWARE + 1.5 * HOUR) });
    });

    it('one failed delivery leaves it incomplete, never met, and says how many were not reached', async () => {
      await notice(1, [sent(1.1), sent(1.2), sent(1.3), { status: 'failed', finishedAt: 1.4 }]);
      const clock = await notifyClock(BEFORE_DEADLINE);
      expect(clock.state).toBe('incomplete');
      expect(clock.doneAt).toBeNull();
      expect(clock.detail).toMatch(/reached 3 of 4; 1 failed/);
    });

    it('a bounce after the provider accepted the message is a failure', async () => {
      await notice(1, [sent(1.1), { status: 'failed', sentAt: 1.1, finishedAt: 1.6 }]);
      expect((await notifyClock(BEFORE_DEADLINE)).state).toBe('incomplete');
    });

    it('an address quarantined or removed before sending was not reached', async () => {
      await notice(1, [sent(1.1), { status: 'suppressed', finishedAt: 1.1 }]);
      const clock = await notifyClock(BEFORE_DEADLINE);
      expect(clock.state).toBe('incomplete');
      expect(clock.detail).toMatch(/reached 1 of 2; 1 not sent/);
    });

    it('what the log transport wrote down (no provider configured) reached no one', async () => {
      await notice(1, [
        { status: 'sent', sentAt: 1.1, logged: true },
        { status: 'sent', sentAt: 1.1, logged: true },
      ]);
      const clock = await notifyClock(BEFORE_DEADLINE);
      expect(clock.state).toBe('unreached');
      expect(clock.detail).toMatch(/2 only logged/);
    });

    it('while deliveries are on their way before the deadline it is due, with the progress', async () => {
      await notice(1, [sent(1.1), { status: 'pending' }, { status: 'sending' }]);
      const clock = await notifyClock(BEFORE_DEADLINE);
      expect(clock.state).toBe('due');
      expect(clock.doneAt).toBeNull();
      expect(clock.detail).toMatch(/reached 1 of 3 so far; 2 on their way/);
    });

    it('still on their way after the deadline: missed', async () => {
      await notice(1, [sent(1.1), { status: 'pending' }]);
      expect(await notifyClock(AFTER_DEADLINE)).toMatchObject({ state: 'missed', doneAt: null, overdue: true });
    });

    it('everyone reached, but after the deadline: missed, with when', async () => {
      await notice(70, [sent(71), sent(75)]);
      const clock = await notifyClock(AFTER_DEADLINE);
      expect(clock.state).toBe('missed');
      expect(clock.doneAt).toEqual(new Date(AWARE + 75 * HOUR));
    });

    it('a later notice that reaches everyone meets it, at its own time', async () => {
      await notice(1, []);
      await notice(5, [sent(5.1), sent(5.2)], 'monitoring');
      expect(await notifyClock(BEFORE_DEADLINE)).toMatchObject({ state: 'met', doneAt: new Date(AWARE + 5.2 * HOUR) });
    });

    it('with no notice yet it is due, then missed', async () => {
      expect(await notifyClock(BEFORE_DEADLINE)).toMatchObject({ state: 'due', doneAt: null });
      expect(await notifyClock(AFTER_DEADLINE)).toMatchObject({ state: 'missed', doneAt: null });
    });
  });

  describe('the dashboard', () => {
    it('lists a notify clock whose notice reached no one, as a problem', async () => {
      await notice(1, []);
      const clocks = (await attention(database, site, BEFORE_DEADLINE)).clocks.filter((c) => c.incidentId === incidentId);
      expect(clocks.map((c) => [c.name, c.state])).toContainEqual(['Notify customers within 72 h', 'unreached']);
    });

    it('no longer lists the notify clock once a notice reached everyone', async () => {
      await notice(1, [sent(1.1)]);
      const clocks = (await attention(database, site, BEFORE_DEADLINE)).clocks.filter((c) => c.incidentId === incidentId);
      expect(clocks.map((c) => c.name)).not.toContain('Notify customers within 72 h');
    });
  });
});
