/**
 * Repeated refusals: one entry and a count per window, never a flood, and
 * never a lost count (not across windows, a restart, or a shutdown).
 */

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { refusalFingerprint } from '../../src/core/audit/canonical.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { type AuditInput, appendAudit, listAudit, recordAudit, verifyAuditChain } from '../../src/core/audit/log.ts';
import {
  closeRepeatWindows,
  describeRepeats,
  openRepeatWindows,
  REPEAT_ADDRESSES_MAX,
  type RefusalInput,
  recordRefusal,
  timesRecorded,
} from '../../src/core/audit/repeats.ts';
import { dashboardCounts } from '../../src/core/console/dashboard.ts';
import { runHousekeeping } from '../../src/core/maintenance/housekeeping.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/server.ts';
import { HOUR, MINUTE, PASSWORD, SECOND, World } from './auth-world.ts';

const KEYRING = auditKeyring('audit-repeats-unit-test-secret-long-enough');
const T0 = new Date('2026-03-02T09:00:00.000Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
/** The target of the refusal someHistory() records. */
const refusal0Target = 'staff:1';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A sign-in refused because the address is locked out, as console-auth records it. */
const locked = (overrides: Partial<RefusalInput> = {}): RefusalInput => ({
  actor: { type: 'anonymous' },
  ip: '203.0.113.66',
  userAgent: 'curl/8.0',
  action: 'auth.sign_in.locked',
  target: 'staff:1',
  summary: { reason: 'ip' },
  ...overrides,
});

/** How many refusals the log accounts for: each entry once, a closing entry its count. */
async function accountedFor(db: Db | Database, action = 'auth.sign_in.locked'): Promise<number> {
  return (await listAudit('$client' in db ? databaseOf(db) : db, { limit: 1000 }))
    .filter((e) => e.action === action)
    .reduce((sum, e) => {
      const repeated = e.summary.repeated as { times?: number } | undefined;
      return sum + (repeated?.times ?? 1);
    }, 0);
}

let db: Db;
beforeEach(() => {
  db = bindAuditKeys(openDatabase(':memory:'), KEYRING);
});

describe('repeated refusals', () => {
  it('500 locked sign-ins from one address: one entry, then one with the count, adding up to 500', async () => {
    for (let i = 0; i < 500; i++) await recordRefusal(databaseOf(db), locked({ userAgent: `agent ${i % 7}` }), later(i * SECOND));
    expect(await listAudit(databaseOf(db))).toHaveLength(1);
    expect(await openRepeatWindows(databaseOf(db))).toMatchObject([{ action: 'auth.sign_in.locked', ip: '203.0.113.66', repeats: 499 }]);

    expect(await closeRepeatWindows(databaseOf(db), later(16 * MINUTE))).toHaveLength(1);
    const entries = await listAudit(databaseOf(db));
    expect(entries.map((e) => e.action)).toEqual(['auth.sign_in.locked', 'auth.sign_in.locked']);
    const [summary, first] = entries;
    expect(first).toMatchObject({ ip: '203.0.113.66', target: 'staff:1', summary: { reason: 'ip' }, userAgent: 'agent 0' });
    expect(summary).toMatchObject({
      ip: '203.0.113.66',
      target: 'staff:1',
      actorType: 'anonymous',
      summary: {
        reason: 'ip',
        repeated: { times: 499, from: later(SECOND).toISOString(), to: later(499 * SECOND).toISOString(), after: first?.id },
      },
    });
    expect(describeRepeats(summary?.summary ?? {})).toBe(
      `repeated 499 more times between 2026-03-02 09:00:01 UTC and 2026-03-02 09:08:19 UTC (after #${first?.id})`,
    );
    expect(await accountedFor(db)).toBe(500);
    expect(await openRepeatWindows(databaseOf(db))).toEqual([]);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true, checked: 2 });
  });

  it('does not merge refusals from other addresses, for other targets, or with another reason', async () => {
    const inputs = [
      locked(),
      locked({ ip: '203.0.113.67' }),
      locked({ target: 'staff:2' }),
      locked({ target: null }),
      locked({ summary: { reason: 'account' } }),
      locked({ action: 'auth.sign_in.failed' }),
      locked({ actor: { type: 'staff', id: 1, label: 'a@lumenwork.example' } }),
    ];
    for (let round = 0; round < 3; round++) {
      for (const input of inputs) await recordRefusal(databaseOf(db), input, later(round * MINUTE));
    }
    expect(await listAudit(databaseOf(db))).toHaveLength(inputs.length);
    expect((await openRepeatWindows(databaseOf(db))).map((w) => w.repeats)).toEqual(inputs.map(() => 2));
    await closeRepeatWindows(databaseOf(db), later(20 * MINUTE));
    expect(await listAudit(databaseOf(db))).toHaveLength(2 * inputs.length);
    expect((await accountedFor(db)) + (await accountedFor(db, 'auth.sign_in.failed'))).toBe(3 * inputs.length);
  });

  it('a window closes on the next refusal after it, which opens the next: nothing is lost between them', async () => {
    for (let i = 0; i < 10; i++) await recordRefusal(databaseOf(db), locked(), later(i * MINUTE)); // window 0:00–0:15
    const next = await recordRefusal(databaseOf(db), locked(), later(15 * MINUTE)); // closes it, opens 0:15–0:30
    expect(next.entry?.summary).toEqual({ reason: 'ip' });
    for (let i = 16; i < 20; i++) await recordRefusal(databaseOf(db), locked(), later(i * MINUTE));
    // any refusal closes every window that is due, not only its own
    await recordRefusal(databaseOf(db), locked({ ip: '198.51.100.1' }), later(31 * MINUTE));
    expect((await listAudit(databaseOf(db))).map((e) => (e.summary.repeated as { times: number } | undefined)?.times ?? 'first')).toEqual([
      'first', // 198.51.100.1
      4, // repeats of the second window
      'first', // 0:15
      9, // repeats of the first window
      'first', // 0:00
    ]);
    expect(await accountedFor(db)).toBe(16);
  });

  it('a window with no repeats closes without an entry', async () => {
    await recordRefusal(databaseOf(db), locked(), T0);
    expect(await closeRepeatWindows(databaseOf(db), later(15 * MINUTE))).toEqual([]);
    expect(await listAudit(databaseOf(db))).toHaveLength(1);
    expect(db.$client.prepare('SELECT count(*) AS n FROM audit_repeats').get()).toEqual({ n: 0 });
  });

  it('never loses a count across a restart: the counter is in the database, and the next window close writes it', async () => {
    const dataDir = tempDir('candor-repeats-');
    dirs.push(dataDir);
    const file = join(dataDir, 'candor.db');
    const before = bindAuditKeys(openDatabase(file), KEYRING);
    for (let i = 0; i < 42; i++) await recordRefusal(databaseOf(before), locked(), later(i * SECOND));
    before.$client.close(); // a crash: no shutdown, nothing flushed

    const after = bindAuditKeys(openDatabase(file), KEYRING);
    try {
      expect(await openRepeatWindows(databaseOf(after))).toMatchObject([{ repeats: 41 }]);
      // housekeeping after the window closes
      const policy = {
        auditRetentionDays: 365,
        staffSessions: { idleMinutes: 60 },
        retention: { deliveryAttemptsDays: 90, loggedMessagesDays: 30 },
      };
      expect((await runHousekeeping(databaseOf(after), policy, later(10 * MINUTE))).repeatsRecorded).toBe(0);
      expect((await runHousekeeping(databaseOf(after), policy, later(15 * MINUTE))).repeatsRecorded).toBe(1);
      expect(await accountedFor(after)).toBe(42);
      expect(await verifyAuditChain(databaseOf(after))).toMatchObject({ ok: true });
    } finally {
      after.$client.close();
    }
  });

  it('at shutdown every open window is closed, so its count goes under the chain', async () => {
    for (let i = 0; i < 5; i++) await recordRefusal(databaseOf(db), locked(), later(i * SECOND));
    expect(await closeRepeatWindows(databaseOf(db), later(MINUTE))).toEqual([]);
    expect(await closeRepeatWindows(databaseOf(db), later(MINUTE), { all: true })).toHaveLength(1);
    expect(await accountedFor(db)).toBe(5);
    expect(await openRepeatWindows(databaseOf(db))).toEqual([]);
  });

  it('counts repeats, open windows included, where the console counts failed sign-ins', async () => {
    const failed = (ip: string) => locked({ action: 'auth.sign_in.failed', ip, summary: { reason: 'password', emailDomain: 'x.example' } });
    for (let i = 0; i < 7; i++) await recordRefusal(databaseOf(db), failed('203.0.113.1'), later(i * SECOND));
    for (let i = 0; i < 3; i++) await recordRefusal(databaseOf(db), failed('203.0.113.2'), later(i * SECOND));
    await closeRepeatWindows(databaseOf(db), later(15 * MINUTE + 2 * SECOND));
    await recordRefusal(databaseOf(db), failed('203.0.113.2'), later(16 * MINUTE));
    await recordRefusal(databaseOf(db), failed('203.0.113.2'), later(16 * MINUTE + SECOND));
    expect(await timesRecorded(databaseOf(db), 'auth.sign_in.failed', T0)).toBe(12);
    expect((await dashboardCounts(databaseOf(db), later(17 * MINUTE))).failedSignInsToday).toBe(12);
  });
});

describe.each(enginesUnderTest())('sign-in refusals through the console flow, on $name', (engine) => {
  let opened: OpenedEngine | undefined;
  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });

  it('a burst of wrong passwords from one address: a few entries whose counts add up to every attempt', async () => {
    opened = await engine.open();
    const w = new World(opened.database);
    const { member } = await w.activeStaff('owner@lumenwork.example', 'owner');
    const attempts = 40;
    for (let i = 0; i < attempts; i++) {
      const result = await w.signIn(member.email, `${PASSWORD} wrong ${i}`, { ip: '198.51.100.23', userAgent: `bot ${i}` });
      expect(result.ok).toBe(false);
      w.advance(SECOND);
    }
    w.advance(15 * MINUTE);
    await closeRepeatWindows(w.database, w.now);
    const entries = (await listAudit(w.database, { limit: 1000 })).filter(
      (e) => e.action === 'auth.sign_in.failed' || e.action === 'auth.sign_in.locked',
    );
    const kinds = new Set(entries.map((e) => `${e.action} ${JSON.stringify({ ...e.summary, repeated: undefined })}`));
    // each kind of refusal (failed, locked per account, locked per address…): its first entry and one count
    expect(entries.length).toBeLessThanOrEqual(2 * kinds.size);
    expect(kinds.size).toBeLessThanOrEqual(4);
    expect((await accountedFor(w.database, 'auth.sign_in.failed')) + (await accountedFor(w.database, 'auth.sign_in.locked'))).toBe(
      attempts,
    );
    expect(await verifyAuditChain(w.database)).toMatchObject({ ok: true });
  });
});

describe('a window row written by someone who can write the database but has no key', () => {
  /** Writes an audit_repeats row straight into the file, as such a person would, due to close. */
  function plantWindow(row: {
    action: string;
    actorType?: string;
    target?: string | null;
    summary: Record<string, unknown>;
    firstEntryId: number;
  }) {
    db.$client
      .prepare(
        `INSERT INTO audit_repeats (fingerprint, action, actor_type, actor_id, actor_label, ip, target, summary, first_entry_id,
           opened_at, closes_at, repeats, first_repeat_at, last_repeat_at)
         VALUES (?, ?, ?, NULL, NULL, '203.0.113.9', ?, ?, ?, ?, ?, 1, ?, ?)`,
      )
      .run(
        `planted-${row.action}-${row.firstEntryId}`,
        row.action,
        row.actorType ?? 'system',
        row.target ?? null,
        JSON.stringify(row.summary),
        row.firstEntryId,
        T0.getTime(),
        later(MINUTE).getTime(),
        T0.getTime(),
        T0.getTime(),
      );
  }

  /** A few ordinary entries to purge, then a refusal to point a window at. */
  async function someHistory() {
    for (let i = 0; i < 3; i++)
      recordAudit(db, { actor: { type: 'system' }, action: 'backup.created', summary: { n: i } }, later(i * SECOND));
    const refusal = (await recordRefusal(databaseOf(db), locked(), later(5 * SECOND))).entry;
    if (!refusal) throw new Error('the first refusal opens a window');
    return refusal;
  }

  it('a planted audit.purged window is not sealed, so removing the oldest entries behind it is still caught', async () => {
    const refusal = await someHistory();
    plantWindow({ action: 'audit.purged', summary: { upToId: 2, removed: 2, retentionDays: 1 }, firstEntryId: refusal.id });
    await closeRepeatWindows(databaseOf(db), later(20 * MINUTE));

    const entries = await listAudit(databaseOf(db), { limit: 100 });
    expect(entries.filter((e) => e.action === 'audit.purged')).toEqual([]);
    const discarded = entries.find((e) => e.action === 'audit.repeats_discarded');
    expect(discarded).toMatchObject({
      actorType: 'system',
      summary: { after: refusal.id, reason: 'the window does not match its first entry' },
    });
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });

    // The rest of the attack: a purge record for the two oldest entries, and the entries gone.
    const second = db.$client.prepare('SELECT hash FROM audit_log WHERE id = 2').get() as { hash: string };
    db.$client
      .prepare('INSERT INTO audit_purges (at, up_to_id, last_hash, removed) VALUES (?, 2, ?, 2)')
      .run(later(HOUR).getTime(), second.hash);
    db.$client.prepare('DELETE FROM audit_log WHERE id <= 2').run();
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ok: false,
      problem: 'missing',
      reason: expect.stringMatching(/no audit\.purged entry/),
    });
  });

  it('a window naming an entry that is not a refusal, or no entry, is discarded and recorded', async () => {
    await someHistory();
    plantWindow({ action: 'backup.created', summary: { n: 0 }, firstEntryId: 1 });
    plantWindow({ action: 'auth.sign_in.locked', summary: { reason: 'ip' }, firstEntryId: 999 });
    await closeRepeatWindows(databaseOf(db), later(20 * MINUTE));
    const reasons = (await listAudit(databaseOf(db), { action: 'audit.repeats_discarded' })).map((e) => e.summary.reason);
    expect(reasons.sort()).toEqual([
      'its first entry (backup.created) is not a refusal that may be repeated',
      'its first entry is no longer in the log',
    ]);
    expect((await listAudit(databaseOf(db), { limit: 100 })).filter((e) => e.summary.repeated !== undefined)).toEqual([]);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
  });

  it("an open window's row rewritten in place: the closing entry still repeats the sealed first entry", async () => {
    const refusal = await someHistory();
    await recordRefusal(databaseOf(db), locked(), later(6 * SECOND));
    db.$client.prepare(`UPDATE audit_repeats SET action = 'audit.purged', target = 'audit_log', summary = '{"upToId":2}'`).run();
    const [closing] = await closeRepeatWindows(databaseOf(db), later(20 * MINUTE));
    expect(closing).toMatchObject({
      action: 'auth.sign_in.locked',
      target: refusal.target,
      summary: { reason: 'ip', repeated: { times: 1, after: refusal.id } },
    });
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
  });

  it('a count or times chosen in the row are not sealed: a date in the future, text for an id, a count that is no number', async () => {
    await recordRefusal(databaseOf(db), locked(), T0);
    await recordRefusal(databaseOf(db), locked(), later(MINUTE));
    db.$client.prepare('UPDATE audit_repeats SET last_repeat_at = ?').run(Date.parse('2099-12-31T00:00:00Z'));
    const [future] = await closeRepeatWindows(databaseOf(db), later(20 * MINUTE));
    expect(future).toMatchObject({
      action: 'audit.repeats_discarded',
      at: later(20 * MINUTE),
      target: 'audit:1',
      summary: { after: 1, reason: 'the window row is not one Candor wrote (its times are out of order or in the future)' },
    });

    await recordRefusal(databaseOf(db), locked(), later(30 * MINUTE));
    await recordRefusal(databaseOf(db), locked(), later(31 * MINUTE));
    db.$client.prepare("UPDATE audit_repeats SET first_entry_id = '1 -- purge of #2-#40 approved by owner@x', repeats = '7'").run();
    const [text] = await closeRepeatWindows(databaseOf(db), later(50 * MINUTE));
    expect(text).toMatchObject({ action: 'audit.repeats_discarded', target: null, summary: { after: null } });
    expect(JSON.stringify(text)).not.toMatch(/approved/);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
  });

  it('a window planted again for a first entry whose window closed already is discarded, and the log still verifies', async () => {
    const first = (await recordRefusal(databaseOf(db), locked(), T0)).entry;
    await recordRefusal(databaseOf(db), locked(), later(MINUTE));
    expect(await closeRepeatWindows(databaseOf(db), later(20 * MINUTE))).toHaveLength(1);
    if (!first) throw new Error('the first refusal opens a window');
    db.$client
      .prepare(
        `INSERT INTO audit_repeats (fingerprint, action, actor_type, ip, target, summary, first_entry_id, opened_at, closes_at, repeats, first_repeat_at, last_repeat_at, addresses)
         VALUES (?, 'auth.sign_in.locked', 'anonymous', '203.0.113.66', 'staff:1', '{"reason":"ip"}', ?, ?, ?, 3, ?, ?, '[]')`,
      )
      .run(
        refusalFingerprint(first),
        first.id,
        T0.getTime(),
        later(15 * MINUTE).getTime(),
        later(MINUTE).getTime(),
        later(2 * MINUTE).getTime(),
      );
    const [again] = await closeRepeatWindows(databaseOf(db), later(40 * MINUTE));
    expect(again).toMatchObject({ action: 'audit.repeats_discarded', summary: { reason: expect.stringMatching(/closed already \(#2\)/) } });
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
  });

  it('verify names a "repeated" entry an older version sealed from a forged window', async () => {
    const refusal = await someHistory();
    const seal = (input: AuditInput) => db.transaction((tx) => appendAudit(tx, KEYRING, input, later(HOUR)), { behavior: 'immediate' });
    const repeated = { times: 3, from: T0.toISOString(), to: T0.toISOString(), after: refusal.id };

    const forgedPurge = seal({
      actor: { type: 'anonymous' },
      action: 'audit.purged',
      target: 'audit_log',
      summary: { upToId: 2, repeated },
    });
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ok: false,
      problem: 'altered',
      firstBrokenId: forgedPurge.id,
      reason: expect.stringMatching(/audit\.purged entry that no purge wrote/),
    });
  });

  it.each([
    [
      'an action never counted',
      { action: 'backup.created' as const, target: refusal0Target, summary: { reason: 'ip' } },
      /not an action Candor counts/,
    ],
    ['another target', { action: 'auth.sign_in.locked' as const, target: 'staff:2', summary: { reason: 'ip' } }, /does not match it/],
    [
      'another summary',
      { action: 'auth.sign_in.locked' as const, target: refusal0Target, summary: { reason: 'account' } },
      /does not match it/,
    ],
  ])('verify refuses a "repeated" entry with %s', async (_, forged, reason) => {
    const refusal = await someHistory();
    const entry = db.transaction(
      (tx) =>
        appendAudit(
          tx,
          KEYRING,
          {
            actor: { type: 'anonymous' },
            ip: refusal.ip,
            action: forged.action,
            target: forged.target,
            summary: { ...forged.summary, repeated: { times: 2, from: T0.toISOString(), to: T0.toISOString(), after: refusal.id } },
          },
          later(HOUR),
        ),
      { behavior: 'immediate' },
    );
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({
      ok: false,
      problem: 'altered',
      firstBrokenId: entry.id,
      reason: expect.stringMatching(reason),
    });
  });
});

describe('refusals from many addresses of one network', () => {
  it('one window per IPv6 network, counting the distinct addresses it came from', async () => {
    for (let i = 1; i <= 50; i++) await recordRefusal(databaseOf(db), locked({ ip: `2001:db8:1:2::${i.toString(16)}` }), later(i * SECOND));
    await recordRefusal(databaseOf(db), locked({ ip: '2001:db8:1:2::1' }), later(51 * SECOND));
    expect(await listAudit(databaseOf(db))).toHaveLength(1);
    const [closing] = await closeRepeatWindows(databaseOf(db), later(20 * MINUTE));
    expect(closing?.summary.repeated).toMatchObject({ times: 50, addresses: 50 });
    expect(describeRepeats(closing?.summary ?? {})).toMatch(/\(after #1\), from 50 addresses in 2001:db8:1:2?:?:?:?\/\d+$/);
    expect(await accountedFor(db)).toBe(51);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
  });

  it('a window keeps at most a bounded list of addresses, and says "at least" beyond it', async () => {
    for (let i = 1; i <= REPEAT_ADDRESSES_MAX + 10; i++)
      await recordRefusal(databaseOf(db), locked({ ip: `2001:db8:1:2::${i.toString(16)}` }), later(i * SECOND));
    expect((await openRepeatWindows(databaseOf(db)))[0]?.addresses).toHaveLength(REPEAT_ADDRESSES_MAX);
    const [closing] = await closeRepeatWindows(databaseOf(db), later(20 * MINUTE));
    expect(describeRepeats(closing?.summary ?? {})).toMatch(new RegExp(`from at least ${REPEAT_ADDRESSES_MAX} addresses`));
  });

  it('IPv4 addresses stay separate windows', async () => {
    for (let i = 1; i <= 3; i++) await recordRefusal(databaseOf(db), locked({ ip: `198.51.100.${i}` }), later(i * SECOND));
    expect(await listAudit(databaseOf(db))).toHaveLength(3);
  });
});
