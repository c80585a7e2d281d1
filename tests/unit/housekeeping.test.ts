import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import { auditLog, rateLimits, staffSessions } from '../../db/schema.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { recordAudit, verifyAuditChain } from '../../src/core/audit/log.ts';
import { hitLimitNow } from '../../src/core/auth/rate-limit.ts';
import { createSession } from '../../src/core/auth/session.ts';
import { runHousekeeping } from '../../src/core/maintenance/housekeeping.ts';
import { insertStaffIfAbsent } from '../../src/stores/staff.ts';

const DAY = 86_400_000;
const policy = {
  auditRetentionDays: 365,
  staffSessions: { idleMinutes: 60 },
  retention: { deliveryAttemptsDays: 90, loggedMessagesDays: 30 },
};

describe('housekeeping', () => {
  it('purges audit entries past retention, keeping the chain verifiable, and expired sessions and limits', async () => {
    const db = bindAuditKeys(openDatabase(':memory:'), auditKeyring('housekeeping-unit-test-secret-long-enough'));
    const start = new Date('2025-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++)
      recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed', summary: { i } }, new Date(start.getTime() + i * DAY));
    const now = new Date(start.getTime() + 370 * DAY);
    recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, now);
    const fresh = await databaseOf(db).transaction(async (tx) => {
      const member = await insertStaffIfAbsent(tx, 'a@lumenwork.example', 'viewer', start);
      if (!member) throw new Error('no staff member');
      await createSession(tx, member.id, { ip: null, userAgent: null }, { idleMinutes: 60, absoluteHours: 12 }, start);
      return createSession(tx, member.id, { ip: null, userAgent: null }, { idleMinutes: 60, absoluteHours: 12 }, now);
    });
    await hitLimitNow(databaseOf(db), { bucket: 'b', max: 5, windowMs: 60_000 }, 'k', start);

    const result = await runHousekeeping(databaseOf(db), policy, now);
    expect(result.auditRemoved).toBe(5);
    expect(result.sessionsRemoved).toBe(1);
    expect(result.rateLimitsRemoved).toBe(1);
    expect(
      db
        .select()
        .from(staffSessions)
        .all()
        .map((s) => s.id),
    ).toEqual([fresh.session.id]);
    expect(db.select().from(rateLimits).all()).toHaveLength(0);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
    expect(
      db
        .select()
        .from(auditLog)
        .all()
        .map((e) => e.action),
    ).toContain('audit.purged');
    // nothing more to do the second time
    expect(await runHousekeeping(databaseOf(db), policy, now)).toEqual({
      auditRemoved: 0,
      repeatsRecorded: 0,
      sessionsRemoved: 0,
      linksRemoved: 0,
      rateLimitsRemoved: 0,
      unconfirmedRemoved: 0,
      deliveryAttemptsRemoved: 0,
      loggedMessagesRemoved: 0,
    });
  });

  it('purges delivery attempts and logged messages past their retention, keeping the deliveries', async () => {
    const db = openDatabase(':memory:');
    const sqlite = db.$client;
    const now = new Date('2025-06-01T00:00:00Z');
    const daysAgo = (n: number) => now.getTime() - n * DAY;
    const { id: notification } = sqlite
      .prepare(
        `INSERT INTO notifications (kind, title, content, audience, recipient_count, created_at) VALUES ('t', 't', '{}', '{}', 1, ?) RETURNING id`,
      )
      .get(daysAgo(200)) as { id: number };
    const { id: delivery } = sqlite
      .prepare(`INSERT INTO deliveries (notification_id, channel, status, next_attempt_at) VALUES (?, 'email', 'sent', ?) RETURNING id`)
      .get(notification, daysAgo(200)) as { id: number };
    const attempt = sqlite.prepare(`INSERT INTO delivery_attempts (delivery_id, at, outcome, duration_ms) VALUES (?, ?, 'retry', 5)`);
    const logged = sqlite.prepare(
      `INSERT INTO logged_messages (delivery_id, channel, "to", payload, at) VALUES (?, 'email', 'ad…@x.example', '{}', ?)`,
    );
    // more than one purge batch of old attempts
    for (let i = 0; i < 2500; i++) attempt.run(delivery, daysAgo(91 + (i % 50)));
    attempt.run(delivery, daysAgo(89));
    for (const age of [45, 31, 29, 1]) logged.run(delivery, daysAgo(age));

    const result = await runHousekeeping(databaseOf(db), policy, now);
    expect(result.deliveryAttemptsRemoved).toBe(2500);
    expect(result.loggedMessagesRemoved).toBe(2);
    const ages = (table: string) =>
      (sqlite.prepare(`SELECT at FROM ${table} ORDER BY at`).all() as { at: number }[]).map((r) =>
        Math.round((now.getTime() - r.at) / DAY),
      );
    expect(ages('delivery_attempts')).toEqual([89]);
    expect(ages('logged_messages')).toEqual([29, 1]);
    expect(sqlite.prepare('SELECT count(*) AS n FROM deliveries').get()).toEqual({ n: 1 });
  });
});
