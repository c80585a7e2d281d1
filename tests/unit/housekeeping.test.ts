import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { auditLog, rateLimits, staffSessions } from '../../db/schema.ts';
import { recordAudit, verifyAuditChain } from '../../src/core/audit/log.ts';
import { hitLimit } from '../../src/core/auth/rate-limit.ts';
import { createSession } from '../../src/core/auth/session.ts';
import { insertStaff } from '../../src/core/auth/staff.ts';
import { runHousekeeping } from '../../src/core/maintenance/housekeeping.ts';

const DAY = 86_400_000;
const policy = { auditRetentionDays: 365, staffSessions: { idleMinutes: 60 } };

describe('housekeeping', () => {
  it('purges audit entries past retention, keeping the chain verifiable, and expired sessions and limits', () => {
    const db = openDatabase(':memory:');
    const start = new Date('2025-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++)
      recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed', summary: { i } }, new Date(start.getTime() + i * DAY));
    const now = new Date(start.getTime() + 370 * DAY);
    recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, now);
    const member = insertStaff(db, 'a@lumenwork.example', 'viewer', start);
    createSession(db, member.id, { ip: null, userAgent: null }, { idleMinutes: 60, absoluteHours: 12 }, start);
    const fresh = createSession(db, member.id, { ip: null, userAgent: null }, { idleMinutes: 60, absoluteHours: 12 }, now);
    hitLimit(db, { bucket: 'b', max: 5, windowMs: 60_000 }, 'k', start);

    const result = runHousekeeping(db, policy, now);
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
    expect(verifyAuditChain(db)).toMatchObject({ ok: true });
    expect(
      db
        .select()
        .from(auditLog)
        .all()
        .map((e) => e.action),
    ).toContain('audit.purged');
    // nothing more to do the second time
    expect(runHousekeeping(db, policy, now)).toEqual({
      auditRemoved: 0,
      sessionsRemoved: 0,
      linksRemoved: 0,
      rateLimitsRemoved: 0,
      unconfirmedRemoved: 0,
    });
  });
});
