/**
 * Repeated refusals: one entry and a count per window, never a flood, and
 * never a lost count (not across windows, a restart, or a shutdown).
 */

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteDatabase } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { refusalFingerprint } from '../../src/core/audit/canonical.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { type AuditInput, listAudit, verifyAuditChain, writeAudit } from '../../src/core/audit/log.ts';
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
import { deleteEntriesUpTo, entryById, insertPurge } from '../../src/stores/audit.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { type EngineUnderTest, enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/server.ts';
import { HOUR, MINUTE, must, PASSWORD, SECOND, World } from './auth-world.ts';

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
async function accountedFor(db: Database, action = 'auth.sign_in.locked'): Promise<number> {
  return (await listAudit(db, { limit: 1000 }))
    .filter((e) => e.action === action)
    .reduce((sum, e) => {
      const repeated = e.summary.repeated as { times?: number } | undefined;
      return sum + (repeated?.times ?? 1);
    }, 0);
}

let opened: OpenedEngine | undefined;
/** this test's database, sealing audit entries with KEYRING */
let db: Database;
/** A fresh database of the engine for each test, dropped after it (the SQLite version's was in memory). */
function freshDatabasePerTest(engine: EngineUnderTest): void {
  beforeEach(async () => {
    opened = await engine.open();
    db = bindAuditKeys(opened.database, KEYRING);
  });
  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });
}

describe.each(enginesUnderTest())('on $name', (engine) => {
  freshDatabasePerTest(engine);

  describe('repeated refusals', () => {
    it('500 locked sign-ins from one address: one entry, then one with the count, adding up to 500', async () => {
      for (let i = 0; i < 500; i++) await recordRefusal(db, locked({ userAgent: `agent ${i % 7}` }), later(i * SECOND));
      expect(await listAudit(db)).toHaveLength(1);
      expect(await openRepeatWindows(db)).toMatchObject([{ action: 'auth.sign_in.locked', ip: '203.0.113.66', repeats: 499 }]);

      expect(await closeRepeatWindows(db, later(16 * MINUTE))).toHaveLength(1);
      const entries = await listAudit(db);
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
      expect(await openRepeatWindows(db)).toEqual([]);
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, checked: 2 });
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
        for (const input of inputs) await recordRefusal(db, input, later(round * MINUTE));
      }
      expect(await listAudit(db)).toHaveLength(inputs.length);
      expect((await openRepeatWindows(db)).map((w) => w.repeats)).toEqual(inputs.map(() => 2));
      await closeRepeatWindows(db, later(20 * MINUTE));
      expect(await listAudit(db)).toHaveLength(2 * inputs.length);
      expect((await accountedFor(db)) + (await accountedFor(db, 'auth.sign_in.failed'))).toBe(3 * inputs.length);
    });

    it('a window closes on the next refusal after it, which opens the next: nothing is lost between them', async () => {
      for (let i = 0; i < 10; i++) await recordRefusal(db, locked(), later(i * MINUTE)); // window 0:00–0:15
      const next = await recordRefusal(db, locked(), later(15 * MINUTE)); // closes it, opens 0:15–0:30
      expect(next.entry?.summary).toEqual({ reason: 'ip' });
      for (let i = 16; i < 20; i++) await recordRefusal(db, locked(), later(i * MINUTE));
      // any refusal closes every window that is due, not only its own
      await recordRefusal(db, locked({ ip: '198.51.100.1' }), later(31 * MINUTE));
      expect((await listAudit(db)).map((e) => (e.summary.repeated as { times: number } | undefined)?.times ?? 'first')).toEqual([
        'first', // 198.51.100.1
        4, // repeats of the second window
        'first', // 0:15
        9, // repeats of the first window
        'first', // 0:00
      ]);
      expect(await accountedFor(db)).toBe(16);
    });

    it('a window with no repeats closes without an entry', async () => {
      await recordRefusal(db, locked(), T0);
      expect(await closeRepeatWindows(db, later(15 * MINUTE))).toEqual([]);
      expect(await listAudit(db)).toHaveLength(1);
      expect(await readRows(db, (q) => q.db.$count(q.t.auditRepeats))).toBe(0);
    });

    it('never loses a count across a restart: the counter is in the database, and the next window close writes it', async () => {
      // SQLite: a file written through one connection, closed without a shutdown, and opened again.
      // PostgreSQL: a pool of its own writes, as a process would, and is never shut down; the test's handle reads on.
      let before: Database;
      let crash: () => void;
      let after: Database;
      let done: () => Promise<void>;
      if (engine.name === 'sqlite') {
        const dataDir = tempDir('candor-repeats-');
        dirs.push(dataDir);
        const file = join(dataDir, 'candor.db');
        const first = openSqliteDatabase(file);
        before = bindAuditKeys(first, KEYRING);
        crash = () => first.connection.$client.close(); // a crash: no shutdown, nothing flushed
        const second = openSqliteDatabase(file);
        after = bindAuditKeys(second, KEYRING);
        done = async () => {
          second.connection.$client.close();
        };
      } else {
        before = bindAuditKeys(must(opened, 'the test database').another(), KEYRING);
        crash = () => {}; // the pool is dropped with the database, never shut down
        after = db;
        done = async () => {};
      }
      for (let i = 0; i < 42; i++) await recordRefusal(before, locked(), later(i * SECOND));
      crash();

      try {
        expect(await openRepeatWindows(after)).toMatchObject([{ repeats: 41 }]);
        // housekeeping after the window closes
        const policy = {
          auditRetentionDays: 365,
          staffSessions: { idleMinutes: 60 },
          retention: { deliveryAttemptsDays: 90, loggedMessagesDays: 30 },
        };
        expect((await runHousekeeping(after, policy, later(10 * MINUTE))).repeatsRecorded).toBe(0);
        expect((await runHousekeeping(after, policy, later(15 * MINUTE))).repeatsRecorded).toBe(1);
        expect(await accountedFor(after)).toBe(42);
        expect(await verifyAuditChain(after)).toMatchObject({ ok: true });
      } finally {
        await done();
      }
    });

    it('at shutdown every open window is closed, so its count goes under the chain', async () => {
      for (let i = 0; i < 5; i++) await recordRefusal(db, locked(), later(i * SECOND));
      expect(await closeRepeatWindows(db, later(MINUTE))).toEqual([]);
      expect(await closeRepeatWindows(db, later(MINUTE), { all: true })).toHaveLength(1);
      expect(await accountedFor(db)).toBe(5);
      expect(await openRepeatWindows(db)).toEqual([]);
    });

    it('counts repeats, open windows included, where the console counts failed sign-ins', async () => {
      const failed = (ip: string) =>
        locked({ action: 'auth.sign_in.failed', ip, summary: { reason: 'password', emailDomain: 'x.example' } });
      for (let i = 0; i < 7; i++) await recordRefusal(db, failed('203.0.113.1'), later(i * SECOND));
      for (let i = 0; i < 3; i++) await recordRefusal(db, failed('203.0.113.2'), later(i * SECOND));
      await closeRepeatWindows(db, later(15 * MINUTE + 2 * SECOND));
      await recordRefusal(db, failed('203.0.113.2'), later(16 * MINUTE));
      await recordRefusal(db, failed('203.0.113.2'), later(16 * MINUTE + SECOND));
      expect(await timesRecorded(db, 'auth.sign_in.failed', T0)).toBe(12);
      expect((await dashboardCounts(db, later(17 * MINUTE))).failedSignInsToday).toBe(12);
    });
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

describe.each(enginesUnderTest())('on $name', (engine) => {
  freshDatabasePerTest(engine);

  describe('a window row written by someone who can write the database but has no key', () => {
    /** Writes an audit_repeats row straight into the database, as such a person would, due to close. */
    async function plantWindow(row: {
      action: string;
      actorType?: 'staff' | 'system' | 'anonymous';
      target?: string | null;
      summary: Record<string, unknown>;
      firstEntryId: number;
    }) {
      await writeRows(db, (q) =>
        q.db.insert(q.t.auditRepeats).values({
          fingerprint: `planted-${row.action}-${row.firstEntryId}`,
          action: row.action,
          actorType: row.actorType ?? 'system',
          actorId: null,
          actorLabel: null,
          ip: '203.0.113.9',
          target: row.target ?? null,
          summary: row.summary,
          firstEntryId: row.firstEntryId,
          openedAt: T0,
          closesAt: later(MINUTE),
          repeats: 1,
          firstRepeatAt: T0,
          lastRepeatAt: T0,
          trustCenterId: q.trustCenter,
        }),
      );
    }

    /** A few ordinary entries to purge, then a refusal to point a window at. */
    async function someHistory() {
      for (let i = 0; i < 3; i++)
        await db.transaction((tx) =>
          writeAudit(tx, { actor: { type: 'system' }, action: 'backup.created', summary: { n: i } }, later(i * SECOND)),
        );
      const refusal = (await recordRefusal(db, locked(), later(5 * SECOND))).entry;
      if (!refusal) throw new Error('the first refusal opens a window');
      return refusal;
    }

    it('a planted audit.purged window is not sealed, so removing the oldest entries behind it is still caught', async () => {
      const refusal = await someHistory();
      await plantWindow({ action: 'audit.purged', summary: { upToId: 2, removed: 2, retentionDays: 1 }, firstEntryId: refusal.id });
      await closeRepeatWindows(db, later(20 * MINUTE));

      const entries = await listAudit(db, { limit: 100 });
      expect(entries.filter((e) => e.action === 'audit.purged')).toEqual([]);
      const discarded = entries.find((e) => e.action === 'audit.repeats_discarded');
      expect(discarded).toMatchObject({
        actorType: 'system',
        summary: { after: refusal.id, reason: 'the window does not match its first entry' },
      });
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });

      // The rest of the attack: a purge record for the two oldest entries, and the entries gone.
      const second = must(await db.read((r) => entryById(r, 2)), 'entry 2');
      await db.transaction(async (tx) => {
        await insertPurge(tx, { at: later(HOUR), upToId: 2, lastHash: second.hash, removed: 2 });
        expect(await deleteEntriesUpTo(tx, 2)).toBe(2);
      });
      expect(await verifyAuditChain(db)).toMatchObject({
        ok: false,
        problem: 'missing',
        reason: expect.stringMatching(/no audit\.purged entry/),
      });
    });

    it('a window naming an entry that is not a refusal, or no entry, is discarded and recorded', async () => {
      await someHistory();
      await plantWindow({ action: 'backup.created', summary: { n: 0 }, firstEntryId: 1 });
      await plantWindow({ action: 'auth.sign_in.locked', summary: { reason: 'ip' }, firstEntryId: 999 });
      await closeRepeatWindows(db, later(20 * MINUTE));
      const reasons = (await listAudit(db, { action: 'audit.repeats_discarded' })).map((e) => e.summary.reason);
      expect(reasons.sort()).toEqual([
        'its first entry (backup.created) is not a refusal that may be repeated',
        'its first entry is no longer in the log',
      ]);
      expect((await listAudit(db, { limit: 100 })).filter((e) => e.summary.repeated !== undefined)).toEqual([]);
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    });

    it("an open window's row rewritten in place: the closing entry still repeats the sealed first entry", async () => {
      const refusal = await someHistory();
      await recordRefusal(db, locked(), later(6 * SECOND));
      await writeRows(db, (q) =>
        q.db.update(q.t.auditRepeats).set({ action: 'audit.purged', target: 'audit_log', summary: { upToId: 2 } }),
      );
      const [closing] = await closeRepeatWindows(db, later(20 * MINUTE));
      expect(closing).toMatchObject({
        action: 'auth.sign_in.locked',
        target: refusal.target,
        summary: { reason: 'ip', repeated: { times: 1, after: refusal.id } },
      });
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    });

    it('a count or times chosen in the row are not sealed: a date in the future, text for an id, a count that is no number', async () => {
      await recordRefusal(db, locked(), T0);
      await recordRefusal(db, locked(), later(MINUTE));
      await writeRows(db, (q) => q.db.update(q.t.auditRepeats).set({ lastRepeatAt: new Date('2099-12-31T00:00:00Z') }));
      const [future] = await closeRepeatWindows(db, later(20 * MINUTE));
      expect(future).toMatchObject({
        action: 'audit.repeats_discarded',
        at: later(20 * MINUTE),
        target: 'audit:1',
        summary: { after: 1, reason: 'the window row is not one Candor wrote (its times are out of order or in the future)' },
      });

      // Text in the integer columns: SQLite stores it (type affinity); PostgreSQL's integer columns refuse it, so
      // there nothing of the kind can be planted and this part is SQLite's alone.
      if (engine.name === 'sqlite') {
        await recordRefusal(db, locked(), later(30 * MINUTE));
        await recordRefusal(db, locked(), later(31 * MINUTE));
        await writeRows(db, (q) =>
          q.db.update(q.t.auditRepeats).set({ firstEntryId: sql`'1 -- purge of #2-#40 approved by owner@x'`, repeats: sql`'7'` }),
        );
        const [text] = await closeRepeatWindows(db, later(50 * MINUTE));
        expect(text).toMatchObject({ action: 'audit.repeats_discarded', target: null, summary: { after: null } });
        expect(JSON.stringify(text)).not.toMatch(/approved/);
      }
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    });

    it('a window planted again for a first entry whose window closed already is discarded, and the log still verifies', async () => {
      const first = (await recordRefusal(db, locked(), T0)).entry;
      await recordRefusal(db, locked(), later(MINUTE));
      expect(await closeRepeatWindows(db, later(20 * MINUTE))).toHaveLength(1);
      if (!first) throw new Error('the first refusal opens a window');
      await writeRows(db, (q) =>
        q.db.insert(q.t.auditRepeats).values({
          fingerprint: refusalFingerprint(first),
          action: 'auth.sign_in.locked',
          actorType: 'anonymous',
          ip: '203.0.113.66',
          target: 'staff:1',
          summary: { reason: 'ip' },
          firstEntryId: first.id,
          openedAt: T0,
          closesAt: later(15 * MINUTE),
          repeats: 3,
          firstRepeatAt: later(MINUTE),
          lastRepeatAt: later(2 * MINUTE),
          addresses: [],
          trustCenterId: q.trustCenter,
        }),
      );
      const [again] = await closeRepeatWindows(db, later(40 * MINUTE));
      expect(again).toMatchObject({
        action: 'audit.repeats_discarded',
        summary: { reason: expect.stringMatching(/closed already \(#2\)/) },
      });
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    });

    it('verify names a "repeated" entry an older version sealed from a forged window', async () => {
      const refusal = await someHistory();
      const seal = (input: AuditInput) => db.transaction((tx) => writeAudit(tx, input, later(HOUR)));
      const repeated = { times: 3, from: T0.toISOString(), to: T0.toISOString(), after: refusal.id };

      const forgedPurge = await seal({
        actor: { type: 'anonymous' },
        action: 'audit.purged',
        target: 'audit_log',
        summary: { upToId: 2, repeated },
      });
      expect(await verifyAuditChain(db)).toMatchObject({
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
      const entry = await db.transaction((tx) =>
        writeAudit(
          tx,
          {
            actor: { type: 'anonymous' },
            ip: refusal.ip,
            action: forged.action,
            target: forged.target,
            summary: { ...forged.summary, repeated: { times: 2, from: T0.toISOString(), to: T0.toISOString(), after: refusal.id } },
          },
          later(HOUR),
        ),
      );
      expect(await verifyAuditChain(db)).toMatchObject({
        ok: false,
        problem: 'altered',
        firstBrokenId: entry.id,
        reason: expect.stringMatching(reason),
      });
    });
  });

  describe('refusals from many addresses of one network', () => {
    it('one window per IPv6 network, counting the distinct addresses it came from', async () => {
      for (let i = 1; i <= 50; i++) await recordRefusal(db, locked({ ip: `2001:db8:1:2::${i.toString(16)}` }), later(i * SECOND));
      await recordRefusal(db, locked({ ip: '2001:db8:1:2::1' }), later(51 * SECOND));
      expect(await listAudit(db)).toHaveLength(1);
      const [closing] = await closeRepeatWindows(db, later(20 * MINUTE));
      expect(closing?.summary.repeated).toMatchObject({ times: 50, addresses: 50 });
      expect(describeRepeats(closing?.summary ?? {})).toMatch(/\(after #1\), from 50 addresses in 2001:db8:1:2?:?:?:?\/\d+$/);
      expect(await accountedFor(db)).toBe(51);
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    });

    it('a window keeps at most a bounded list of addresses, and says "at least" beyond it', async () => {
      for (let i = 1; i <= REPEAT_ADDRESSES_MAX + 10; i++)
        await recordRefusal(db, locked({ ip: `2001:db8:1:2::${i.toString(16)}` }), later(i * SECOND));
      expect((await openRepeatWindows(db))[0]?.addresses).toHaveLength(REPEAT_ADDRESSES_MAX);
      const [closing] = await closeRepeatWindows(db, later(20 * MINUTE));
      expect(describeRepeats(closing?.summary ?? {})).toMatch(new RegExp(`from at least ${REPEAT_ADDRESSES_MAX} addresses`));
    });

    it('IPv4 addresses stay separate windows', async () => {
      for (let i = 1; i <= 3; i++) await recordRefusal(db, locked({ ip: `198.51.100.${i}` }), later(i * SECOND));
      expect(await listAudit(db)).toHaveLength(3);
    });
  });
});
