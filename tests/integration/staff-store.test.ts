/**
 * Staff accounts, sessions, recovery codes and links on the stores (src/stores/staff.ts,
 * sessions.ts), run alike on SQLite and PostgreSQL: what a person would check after each step,
 * and what must hold when requests arrive at once (PostgreSQL runs them side by side): no failed
 * code goes uncounted, a recovery code or a link works once, the last owner stays.
 */
import { randomBytes } from 'node:crypto';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { generateHOTP } from '@oslojs/otp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import {
  type AuthContext,
  completeEnrolment,
  completeLink,
  inviteStaff,
  type Outcome,
  setStaffEnabled,
  startEnrolment,
  verifySecondFactor,
} from '../../src/core/auth/console-auth.ts';
import { authLimits, peekLimitNow } from '../../src/core/auth/rate-limit.ts';
import { createSession, validateSessionToken } from '../../src/core/auth/session.ts';
import { totpCounter } from '../../src/core/auth/totp.ts';
import { sessionsOf, sessionWithStaff, touchSession } from '../../src/stores/sessions.ts';
import {
  activeOwnerCount,
  consumeLinkRow,
  insertLink,
  insertStaffIfAbsent,
  linkById,
  replaceRecoveryCodes,
  revokeLinkRows,
  staffByEmail,
  staffRows,
  unusedRecoveryCodeCount,
  updateStaffRow,
  useRecoveryCode,
} from '../../src/stores/staff.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const SECRET = 'staff-store-test-secret-0123456789abcdef';
const KEYRING = auditKeyring(SECRET);
const T0 = new Date('2026-12-01T10:00:05.000Z');
const MINUTE = 60_000;
const at = (ms: number) => new Date(T0.getTime() + ms);
const PASSWORD = 'tangerine oxbow lamplight 42';
const POLICY = { idleMinutes: 60, absoluteHours: 12 };
const KEYS = [randomBytes(32)];

let both: BothEngines | undefined;
let sqliteOnly: SqliteEngine | undefined;

beforeAll(async () => {
  if (TEST_POSTGRES_URL) {
    both = await bothEngines();
    bindAuditKeys(both.sqlite, KEYRING);
    bindAuditKeys(both.postgres, KEYRING);
  } else {
    sqliteOnly = bindAuditKeys(tempSqliteEngine(), KEYRING);
  }
}, 60_000);

afterAll(async () => {
  await both?.close();
  await sqliteOnly?.close();
});

/** Each case runs on every engine there is: SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL names one. */
function engines(): [string, Database][] {
  if (both)
    return [
      ['sqlite', both.sqlite],
      ['postgres', both.postgres],
    ];
  if (sqliteOnly) return [['sqlite', sqliteOnly]];
  throw new Error('no engine');
}

let unique = 0;
const nextIp = () => `198.51.100.${++unique}`;

function ctx(database: Database, now: Date, ip = '203.0.113.9'): AuthContext {
  return {
    database,
    now,
    keys: KEYS,
    policy: POLICY,
    client: { ip, userAgent: 'staff-store test' },
    issuer: 'Lumenwork',
    secret: SECRET,
  };
}

function ok<T extends object>(outcome: Outcome<T>): { ok: true } & T {
  if (!outcome.ok) throw new Error(`expected success, got: ${outcome.message}`);
  return outcome;
}

/** An owner who set a password through their link and enrolled an authenticator: its key and recovery codes. */
async function enrolledOwner(database: Database, email: string) {
  const invite = ok(await inviteStaff(ctx(database, T0), null, email, 'owner'));
  const signedIn = ok(await completeLink(ctx(database, T0), invite.token, PASSWORD, PASSWORD));
  const auth = await validateSessionToken(database, signedIn.token, POLICY, T0);
  if (!auth) throw new Error('no session');
  const challenge = await startEnrolment(ctx(database, T0), auth.staff, auth.session);
  const key = decodeBase32IgnorePadding(challenge.keyText.replace(/ /g, ''));
  const code = generateHOTP(key, BigInt(totpCounter(T0)), 6);
  const enrolled = ok(await completeEnrolment(ctx(database, T0), auth.staff, auth.session, challenge.pending, code));
  const member = await database.read((r) => staffByEmail(r, email));
  if (!member) throw new Error('no member');
  return { member, key, codes: enrolled.recoveryCodes };
}

/** A new session of the member, after the password only (the second factor still to give). */
async function passwordSession(database: Database, staffId: number, now: Date) {
  const { token } = await database.transaction((tx) => createSession(tx, staffId, { ip: null, userAgent: 'test' }, POLICY, now));
  const auth = await validateSessionToken(database, token, POLICY, now);
  if (!auth) throw new Error('no session');
  return auth;
}

const WRONG = 'That code is not valid. Enter the current code from your authenticator app, or a recovery code.';

describe('staff store', () => {
  it('keeps accounts, recovery codes, links and sessions alike on each engine', async () => {
    const seen: Record<string, unknown>[] = [];
    for (const [, database] of engines()) {
      const observed: Record<string, unknown> = {};
      const sam = await database.transaction(async (tx) => {
        const made = await insertStaffIfAbsent(tx, 'sam@lumenwork.example', 'viewer', T0);
        observed.again = await insertStaffIfAbsent(tx, 'sam@lumenwork.example', 'owner', T0);
        await insertStaffIfAbsent(tx, 'ada@lumenwork.example', 'owner', T0);
        if (!made) throw new Error('not made');
        await updateStaffRow(tx, made.id, { status: 'active', role: 'owner' }, at(MINUTE));
        return made;
      });
      observed.list = (await database.read((r) => staffRows(r)))
        .filter((s) => s.email.endsWith('@lumenwork.example'))
        .map((s) => [s.email, s.role, s.status]);
      observed.owners = await database.read((r) => activeOwnerCount(r));
      observed.ownersBut = await database.read((r) => activeOwnerCount(r, sam.id));
      observed.codes = await database.transaction(async (tx) => {
        await replaceRecoveryCodes(tx, sam.id, ['h1', 'h2', 'h3']);
        const first = await useRecoveryCode(tx, sam.id, 'h2', at(2 * MINUTE));
        const second = await useRecoveryCode(tx, sam.id, 'h2', at(2 * MINUTE));
        const unknown = await useRecoveryCode(tx, sam.id, 'nope', at(2 * MINUTE));
        return [first, second, unknown, await unusedRecoveryCodeCount(tx, sam.id)];
      });
      observed.link = await database.transaction(async (tx) => {
        const link = await insertLink(tx, {
          id: 'link-1',
          staffId: sam.id,
          purpose: 'invite',
          secretHash: Buffer.from('hash'),
          createdBy: null,
          createdAt: T0,
          expiresAt: at(24 * 60 * MINUTE),
        });
        const used = [await consumeLinkRow(tx, link.id, at(MINUTE)), await consumeLinkRow(tx, link.id, at(MINUTE))];
        const stored = await linkById(tx, link.id);
        return { used, usedAt: stored?.usedAt, hash: stored?.secretHash.toString(), revoked: await revokeLinkRows(tx, sam.id, at(MINUTE)) };
      });
      const { session } = await database.transaction((tx) => createSession(tx, sam.id, { ip: '192.0.2.1', userAgent: 'ua' }, POLICY, T0));
      observed.touches = await database.transaction(async (tx) => [
        await touchSession(tx, session.id, at(30_000), at(30_000 - MINUTE)),
        await touchSession(tx, session.id, at(2 * MINUTE), at(MINUTE)),
        await touchSession(tx, session.id, at(2 * MINUTE), at(MINUTE)),
      ]);
      const joined = await database.read((r) => sessionWithStaff(r, session.id));
      observed.joined = [joined?.staff.email, joined?.session.lastActiveAt, joined?.session.ip];
      observed.sessions = (await database.read((r) => sessionsOf(r, sam.id))).length;
      seen.push(observed);
    }
    expect(seen[0]).toEqual({
      again: undefined,
      list: [
        ['ada@lumenwork.example', 'owner', 'invited'],
        ['sam@lumenwork.example', 'owner', 'active'],
      ],
      owners: 1,
      ownersBut: 0,
      codes: [true, false, false, 2],
      link: { used: [true, false], usedAt: at(MINUTE), hash: 'hash', revoked: 0 },
      touches: [false, true, false],
      joined: ['sam@lumenwork.example', at(2 * MINUTE), '192.0.2.1'],
      sessions: 1,
    });
    for (const other of seen.slice(1)) expect(other).toEqual(seen[0]);
  });

  it('counts every one of many wrong codes given at once, from many addresses', async () => {
    for (const [name, database] of engines()) {
      const { member, key } = await enrolledOwner(database, `many-${name}@lumenwork.example`);
      const now = at(MINUTE);
      const auth = await passwordSession(database, member.id, now);
      const wrong = generateHOTP(key, BigInt(totpCounter(now) + 5), 6);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => verifySecondFactor(ctx(database, now, nextIp()), auth.staff, auth.session, wrong)),
      );
      expect(answers, name).toEqual(Array.from({ length: 12 }, () => ({ ok: false, message: WRONG })));
      const ceiling = await peekLimitNow(database, authLimits.mfaPerAccount, `staff:${member.id}`, now);
      expect(ceiling.count, name).toBe(12);
    }
  });

  it('lets exactly five wrong codes at once from one address through, then refuses', async () => {
    for (const [name, database] of engines()) {
      const { member, key } = await enrolledOwner(database, `one-ip-${name}@lumenwork.example`);
      const now = at(MINUTE);
      const auth = await passwordSession(database, member.id, now);
      const wrong = generateHOTP(key, BigInt(totpCounter(now) + 5), 6);
      const ip = nextIp();
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => verifySecondFactor(ctx(database, now, ip), auth.staff, auth.session, wrong)),
      );
      const messages = answers.map((a) => (a.ok ? 'ok' : a.message));
      expect(
        messages.filter((m) => m === WRONG),
        name,
      ).toHaveLength(authLimits.mfaPerAccountAndIp.max);
      expect(
        messages.filter((m) => m.startsWith('Too many attempts')),
        name,
      ).toHaveLength(10 - authLimits.mfaPerAccountAndIp.max);
    }
  });

  it('accepts a recovery code once when ten sessions present it at once', async () => {
    for (const [name, database] of engines()) {
      const { member, codes } = await enrolledOwner(database, `recovery-${name}@lumenwork.example`);
      const code = codes[0] ?? '';
      const now = at(MINUTE);
      const sessions = await Promise.all(Array.from({ length: 10 }, () => passwordSession(database, member.id, now)));
      const answers = await Promise.all(
        sessions.map((auth) => verifySecondFactor(ctx(database, now, nextIp()), auth.staff, auth.session, code)),
      );
      expect(
        answers.filter((a) => a.ok),
        name,
      ).toHaveLength(1);
      expect(await database.read((r) => unusedRecoveryCodeCount(r, member.id)), name).toBe(codes.length - 1);
      // and the store's claim itself, ten transactions at once on another code
      const other = codes[1] ?? '';
      const { hashRecoveryCode } = await import('../../src/core/auth/totp.ts');
      const claims = await Promise.all(
        Array.from({ length: 10 }, () =>
          database.transaction((tx) => useRecoveryCode(tx, member.id, hashRecoveryCode(other, SECRET), now)),
        ),
      );
      expect(claims.filter(Boolean), name).toHaveLength(1);
    }
  });

  it('keeps an active owner when two owners disable each other at once', async () => {
    for (const [name, database] of engines()) {
      // The only owners: every other owner of the earlier cases is disabled first.
      const owners = (await database.read((r) => staffRows(r))).filter((s) => s.role === 'owner' && s.status === 'active');
      const a = await enrolledOwner(database, `pair-a-${name}@lumenwork.example`);
      const b = await enrolledOwner(database, `pair-b-${name}@lumenwork.example`);
      for (const o of owners) ok(await setStaffEnabled(ctx(database, at(MINUTE)), a.member, o.id, false));
      expect(await database.read((r) => activeOwnerCount(r)), name).toBe(2);
      const [ab, ba] = await Promise.all([
        setStaffEnabled(ctx(database, at(2 * MINUTE)), a.member, b.member.id, false),
        setStaffEnabled(ctx(database, at(2 * MINUTE)), b.member, a.member.id, false),
      ]);
      expect([ab.ok, ba.ok].filter(Boolean), name).toHaveLength(1);
      expect(await database.read((r) => activeOwnerCount(r)), name).toBe(1);
    }
  });

  it('makes one account of two invitations of one address at once', async () => {
    for (const [name, database] of engines()) {
      const email = `twice-${name}@lumenwork.example`;
      const [first, second] = await Promise.all([
        inviteStaff(ctx(database, T0), null, email, 'viewer'),
        inviteStaff(ctx(database, T0), null, email, 'viewer'),
      ]);
      expect([first.ok, second.ok], name).toEqual([true, true]);
      expect(
        (await database.read((r) => staffRows(r))).filter((s) => s.email === email),
        name,
      ).toHaveLength(1);
    }
  });
});
