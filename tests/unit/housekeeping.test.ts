/**
 * Housekeeping's purges on each engine (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set,
 * as the application role under row-level security): what is past its retention goes, the rest and the
 * audit chain stay. Seeded through the product's code and the builder, inspected through the builder.
 */
import { asc, eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import type { Database, Tx } from '../../db/engine/types.ts';
import { issueReaderLink } from '../../src/core/access/reader-links.ts';
import { openReaderSession } from '../../src/core/access/reader-sessions.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { verifyAuditChain, writeAudit } from '../../src/core/audit/log.ts';
import { hitLimitNow } from '../../src/core/auth/rate-limit.ts';
import { createSession } from '../../src/core/auth/session.ts';
import { runHousekeeping } from '../../src/core/maintenance/housekeeping.ts';
import { ensureRecipient } from '../../src/core/notify/recipients.ts';
import { insertStaffIfAbsent } from '../../src/stores/staff.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const DAY = 86_400_000;
const policy = {
  auditRetentionDays: 365,
  staffSessions: { idleMinutes: 60 },
  retention: { deliveryAttemptsDays: 90, loggedMessagesDays: 30 },
};

function inTransaction<T>(database: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.transaction((tx) => fn(tx)) : database.transaction((tx) => fn(tx));
}

describe.each(enginesUnderTest())('housekeeping on $name', (engine) => {
  const opened: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of opened.splice(0)) await close();
  });

  async function freshDatabase(): Promise<Database> {
    const { database, close } = await engine.open();
    opened.push(close);
    return database;
  }

  it('purges audit entries past retention, keeping the chain verifiable, and expired sessions and limits', async () => {
    const db = bindAuditKeys(await freshDatabase(), auditKeyring('housekeeping-unit-test-secret-long-enough'));
    const start = new Date('2025-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++)
      await inTransaction(db, (tx) =>
        writeAudit(tx, { actor: { type: 'system' }, action: 'audit.viewed', summary: { i } }, new Date(start.getTime() + i * DAY)),
      );
    const now = new Date(start.getTime() + 370 * DAY);
    await inTransaction(db, (tx) => writeAudit(tx, { actor: { type: 'system' }, action: 'audit.viewed' }, now));
    const fresh = await inTransaction(db, async (tx) => {
      const member = await insertStaffIfAbsent(tx, 'a@lumenwork.example', 'viewer', start);
      if (!member) throw new Error('no staff member');
      await createSession(tx, member.id, { ip: null, userAgent: null }, { idleMinutes: 60, absoluteHours: 12 }, start);
      return createSession(tx, member.id, { ip: null, userAgent: null }, { idleMinutes: 60, absoluteHours: 12 }, now);
    });
    await hitLimitNow(db, { bucket: 'b', max: 5, windowMs: 60_000 }, 'k', start);

    const result = await runHousekeeping(db, policy, now);
    expect(result.auditRemoved).toBe(5);
    expect(result.sessionsRemoved).toBe(1);
    expect(result.rateLimitsRemoved).toBe(1);
    const left = await readRows(db, async (q) => ({
      sessions: await q.db
        .select({ id: q.t.staffSessions.id })
        .from(q.t.staffSessions)
        .where(eq(q.t.staffSessions.trustCenterId, q.trustCenter)),
      limits: await q.db.select({ key: q.t.rateLimits.key }).from(q.t.rateLimits).where(eq(q.t.rateLimits.trustCenterId, q.trustCenter)),
      actions: await q.db.select({ action: q.t.auditLog.action }).from(q.t.auditLog).where(eq(q.t.auditLog.trustCenterId, q.trustCenter)),
    }));
    expect(left.sessions.map((s) => s.id)).toEqual([fresh.session.id]);
    expect(left.limits).toHaveLength(0);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    expect(left.actions.map((e) => e.action)).toContain('audit.purged');
    // nothing more to do the second time
    expect(await runHousekeeping(db, policy, now)).toEqual({
      auditRemoved: 0,
      repeatsRecorded: 0,
      sessionsRemoved: 0,
      linksRemoved: 0,
      rateLimitsRemoved: 0,
      unconfirmedRemoved: 0,
      deliveryAttemptsRemoved: 0,
      loggedMessagesRemoved: 0,
      idempotencyRepliesRemoved: 0,
    });
  });

  it("removes customers' sessions past their end or idle, and their links a week after use or expiry", async () => {
    const db = await freshDatabase();
    const start = new Date('2026-12-01T08:00:00Z');
    const hours = (n: number) => new Date(start.getTime() + n * 3_600_000);
    const client = { ip: null, userAgent: null };
    const { idle, live, oldLink, newLink } = await inTransaction(db, async (tx) => {
      const customer = (await ensureRecipient(tx, TEST_KEYS, { channel: 'email', address: 'c@customer.example' }, start)).id;
      const idle = await openReaderSession(tx, customer, client, start);
      const live = await openReaderSession(tx, customer, client, hours(9));
      const oldLink = await issueReaderLink(tx, customer, 'sign_in', null, start);
      const newLink = await issueReaderLink(tx, customer, 'verify', null, hours(9));
      return { idle, live, oldLink, newLink };
    });
    const left = () =>
      readRows(db, async (q) => ({
        sessions: (await q.db.select({ id: q.t.readerSessions.id }).from(q.t.readerSessions)).map((r) => r.id).sort(),
        links: (await q.db.select({ id: q.t.readerLinks.id }).from(q.t.readerLinks)).map((r) => r.id).sort(),
      }));
    const idOf = (token: string) => token.split('.')[0] ?? '';
    // at 10 h: the first session has been idle 10 h (2 h allowed), the second 1 h
    expect((await runHousekeeping(db, policy, hours(10))).sessionsRemoved).toBe(1);
    expect((await left()).sessions).toEqual([idOf(live.token)]);
    // links stay a week after they expired ("already used" stays true), then go: the sign-in link expired
    // at 30 minutes, the verify link at 33 h
    expect((await runHousekeeping(db, policy, hours(24 * 7))).linksRemoved).toBe(0);
    expect((await runHousekeeping(db, policy, hours(24 * 7 + 1))).linksRemoved).toBe(1);
    expect((await left()).links).toEqual([idOf(newLink)]);
    expect(idOf(oldLink)).not.toBe(idOf(newLink));
    // past its 12 hours, the live session goes too
    expect((await left()).sessions).toEqual([]);
    expect(idle.token).not.toBe(live.token);
  });

  it('purges delivery attempts and logged messages past their retention, keeping the deliveries', async () => {
    const db = await freshDatabase();
    const now = new Date('2025-06-01T00:00:00Z');
    const daysAgo = (n: number) => new Date(now.getTime() - n * DAY);
    await writeRows(db, async (q) => {
      const trustCenterId = q.trustCenter;
      const [notification] = await q.db
        .insert(q.t.notifications)
        .values({ kind: 't', title: 't', content: {}, audience: {}, recipientCount: 1, createdAt: daysAgo(200), trustCenterId })
        .returning({ id: q.t.notifications.id });
      const [delivery] = await q.db
        .insert(q.t.deliveries)
        .values({ notificationId: notification?.id ?? 0, channel: 'email', status: 'sent', nextAttemptAt: daysAgo(200), trustCenterId })
        .returning({ id: q.t.deliveries.id });
      const deliveryId = delivery?.id ?? 0;
      const attempt = (at: Date) => ({ deliveryId, at, outcome: 'retry' as const, durationMs: 5, trustCenterId });
      // more than one purge batch of old attempts
      const old = Array.from({ length: 2500 }, (_, i) => attempt(daysAgo(91 + (i % 50))));
      for (let i = 0; i < old.length; i += 500) await q.db.insert(q.t.deliveryAttempts).values(old.slice(i, i + 500));
      await q.db.insert(q.t.deliveryAttempts).values(attempt(daysAgo(89)));
      await q.db.insert(q.t.loggedMessages).values(
        [45, 31, 29, 1].map((age) => ({
          deliveryId,
          channel: 'email' as const,
          to: 'ad…@x.example',
          payload: {},
          at: daysAgo(age),
          trustCenterId,
        })),
      );
    });

    const result = await runHousekeeping(db, policy, now);
    expect(result.deliveryAttemptsRemoved).toBe(2500);
    expect(result.loggedMessagesRemoved).toBe(2);
    const ageInDays = (r: { at: Date }) => Math.round((now.getTime() - r.at.getTime()) / DAY);
    const left = await readRows(db, async (q) => {
      const { deliveryAttempts: a, loggedMessages: l, deliveries: d } = q.t;
      return {
        attempts: await q.db.select({ at: a.at }).from(a).where(eq(a.trustCenterId, q.trustCenter)).orderBy(asc(a.at)),
        logged: await q.db.select({ at: l.at }).from(l).where(eq(l.trustCenterId, q.trustCenter)).orderBy(asc(l.at)),
        deliveries: await q.db.$count(d, eq(d.trustCenterId, q.trustCenter)),
      };
    });
    expect(left.attempts.map(ageInDays)).toEqual([89]);
    expect(left.logged.map(ageInDays)).toEqual([29, 1]);
    expect(left.deliveries).toBe(1);
  });
});
