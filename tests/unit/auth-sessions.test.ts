/**
 * Sessions, one-time links and rate limits: what is stored, when they end,
 * and that they hold across an injected clock, against a fresh database of
 * each engine (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set,
 * as the application role under row-level security), inspected through the
 * stores and the builder.
 */
import { createHash } from 'node:crypto';
import { asc } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import type { Database, Tx } from '../../db/engine/types.ts';
import * as links from '../../src/core/auth/links.ts';
import type { Role } from '../../src/core/auth/permissions.ts';
import { clearLimit, hitLimitNow, type Limit, peekLimitNow } from '../../src/core/auth/rate-limit.ts';
import * as sessions from '../../src/core/auth/session.ts';
import { insertStaffIfAbsent, type StaffChanges, updateStaffRow } from '../../src/stores/staff.ts';
import { readRows } from '../helpers/engine-server.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';
import { flipLast } from '../helpers/tamper.ts';

const T0 = new Date('2026-03-02T09:00:10.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const at = (ms: number) => new Date(T0.getTime() + ms);
const policy = { idleMinutes: 60, absoluteHours: 12 };
const client = { ip: '203.0.113.9', userAgent: 'test' };
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** Each step in a transaction of its own on the database's async handle, as the flows run them. */
const inTx = <T>(db: Database, fn: (tx: Tx) => Promise<T>) => db.transaction(fn);
const { LINK_TTL_MS } = links;
async function insertStaff(db: Database, email: string, role: Role, now: Date) {
  const made = await inTx(db, (tx) => insertStaffIfAbsent(tx, email, role, now));
  if (!made) throw new Error(`${email} exists`);
  return made;
}
const updateStaff = (db: Database, id: number, changes: StaffChanges, now: Date) => inTx(db, (tx) => updateStaffRow(tx, id, changes, now));
const createSession = (db: Database, staffId: number, c: typeof client, p: typeof policy, now: Date) =>
  inTx(db, (tx) => sessions.createSession(tx, staffId, c, p, now));
const validateSessionToken = (db: Database, token: string, p: typeof policy, now: Date) => sessions.validateSessionToken(db, token, p, now);
const invalidateSessionsOf = (db: Database, staffId: number, keepId?: string) =>
  inTx(db, (tx) => sessions.invalidateSessionsOf(tx, staffId, keepId));
const createLink = (db: Database, staffId: number, purpose: links.LinkPurpose, createdBy: number | null, now: Date) =>
  inTx(db, (tx) => links.createLink(tx, staffId, purpose, createdBy, now));
const checkLink = (db: Database, token: string, now: Date) => db.read((r) => links.checkLink(r, token, now));
const consumeLink = (db: Database, id: string, now: Date) => inTx(db, (tx) => links.consumeLink(tx, id, now));

function splitToken(token: string): { id: string; secret: string } {
  const [id, secret] = token.split('.');
  if (!id || !secret) throw new Error(`not an id.secret token: ${token}`);
  return { id, secret };
}

/** Every stored session, in the order they were made (their creation time, then id). */
const sessionRows = (db: Database) =>
  readRows(db, (q) => q.db.select().from(q.t.staffSessions).orderBy(asc(q.t.staffSessions.createdAt), asc(q.t.staffSessions.id)));
const linkRows = (db: Database) => readRows(db, (q) => q.db.select().from(q.t.staffLinks));

/** Whether a stored value holds the secret in clear, as text or as bytes. */
function holds(value: unknown, secret: string): boolean {
  const bytes = Buffer.from(secret);
  if (typeof value === 'string') return value.includes(secret) || value.includes(bytes.toString('hex'));
  if (Buffer.isBuffer(value)) return value.includes(bytes);
  return false;
}

describe.each(enginesUnderTest())('on $name', (engine) => {
  /** A fresh database per test, dropped after it. */
  let opened: OpenedEngine | undefined;
  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });
  async function freshDatabase(): Promise<Database> {
    if (opened) throw new Error('one database per test');
    opened = await engine.open();
    return opened.database;
  }

  describe('sessions', () => {
    async function world() {
      const db = await freshDatabase();
      const member = await insertStaff(db, 'jane@lumenwork.example', 'admin', T0);
      await updateStaff(db, member.id, { status: 'active' }, T0);
      return { db, member };
    }

    it('give the browser id.secret and keep only SHA-256 of the secret', async () => {
      const { db, member } = await world();
      const { token, session } = await createSession(db, member.id, client, policy, T0);
      expect(token).toMatch(/^[a-z2-7]{24}\.[a-z2-7]{24}$/);
      const { id, secret } = splitToken(token);
      expect(session.id).toBe(id);
      const [row, ...others] = await sessionRows(db);
      expect(others).toHaveLength(0);
      expect(row?.secretHash).toEqual(sha256(secret));
      for (const [column, value] of Object.entries(row ?? {})) expect(holds(value, secret), column).toBe(false);
      expect(session.expiresAt).toEqual(at(12 * HOUR));
      expect(session.mfaVerifiedAt).toBeNull();
    });

    it('refuse a wrong or malformed token without ending the real session', async () => {
      const { db, member } = await world();
      const { token } = await createSession(db, member.id, client, policy, T0);
      const { id, secret } = splitToken(token);
      const wrong = `${id}.${flipLast(secret)}`;
      for (const bad of [wrong, id, `${id}.`, `.${secret}`, `${token}.x`, '', `${'a'.repeat(65)}.${secret}`, `unknownid.${secret}`]) {
        expect(await validateSessionToken(db, bad, policy, at(MINUTE))).toBeNull();
      }
      expect((await validateSessionToken(db, token, policy, at(MINUTE)))?.staff.id).toBe(member.id);
    });

    it('end after the idle period, and the row goes', async () => {
      const { db, member } = await world();
      const { token } = await createSession(db, member.id, client, policy, T0);
      expect(await validateSessionToken(db, token, policy, at(60 * MINUTE - 1))).not.toBeNull();
      const second = await createSession(db, member.id, client, policy, T0);
      expect(await validateSessionToken(db, second.token, policy, at(60 * MINUTE))).toBeNull();
      expect((await sessionRows(db)).map((r) => r.id)).toEqual([splitToken(token).id]);
    });

    it('end at the absolute lifetime despite constant activity', async () => {
      const { db, member } = await world();
      const { token } = await createSession(db, member.id, client, policy, T0);
      for (let t = 50 * MINUTE; t < 12 * HOUR; t += 50 * MINUTE) {
        expect(await validateSessionToken(db, token, policy, at(t)), `at ${t / MINUTE} min`).not.toBeNull();
      }
      expect(await validateSessionToken(db, token, policy, at(12 * HOUR))).toBeNull();
      expect(await sessionRows(db)).toHaveLength(0);
    });

    it('end when the account is disabled', async () => {
      const { db, member } = await world();
      const { token } = await createSession(db, member.id, client, policy, T0);
      await updateStaff(db, member.id, { status: 'disabled' }, at(MINUTE));
      expect(await validateSessionToken(db, token, policy, at(2 * MINUTE))).toBeNull();
      expect(await sessionRows(db)).toHaveLength(0);
    });

    it('record activity at most once a minute', async () => {
      const { db, member } = await world();
      const { token } = await createSession(db, member.id, client, policy, T0);
      const stored = async () => (await sessionRows(db))[0]?.lastActiveAt;
      expect((await validateSessionToken(db, token, policy, at(30 * SECOND)))?.session.lastActiveAt).toEqual(T0);
      expect(await stored()).toEqual(T0);
      expect((await validateSessionToken(db, token, policy, at(61 * SECOND)))?.session.lastActiveAt).toEqual(at(61 * SECOND));
      expect(await stored()).toEqual(at(61 * SECOND));
      await validateSessionToken(db, token, policy, at(100 * SECOND));
      expect(await stored()).toEqual(at(61 * SECOND));
      // Activity pushes the idle end out.
      expect(await validateSessionToken(db, token, policy, at(61 * SECOND + 59 * MINUTE))).not.toBeNull();
    });

    it('can all be ended except the one kept, and only for that person', async () => {
      const { db, member } = await world();
      const other = await insertStaff(db, 'sam@lumenwork.example', 'viewer', T0);
      const keep = await createSession(db, member.id, client, policy, T0);
      const a = await createSession(db, member.id, client, policy, T0);
      const b = await createSession(db, member.id, client, policy, T0);
      const theirs = await createSession(db, other.id, client, policy, T0);
      expect(await invalidateSessionsOf(db, member.id, keep.session.id)).toBe(2);
      expect(await validateSessionToken(db, keep.token, policy, at(MINUTE))).not.toBeNull();
      expect(await validateSessionToken(db, a.token, policy, at(MINUTE))).toBeNull();
      expect(await validateSessionToken(db, b.token, policy, at(MINUTE))).toBeNull();
      expect(await validateSessionToken(db, theirs.token, policy, at(MINUTE))).not.toBeNull();
      expect(await invalidateSessionsOf(db, member.id)).toBe(1);
      expect(await validateSessionToken(db, keep.token, policy, at(MINUTE))).toBeNull();
    });
  });

  describe('one-time links', () => {
    async function world() {
      const db = await freshDatabase();
      const member = await insertStaff(db, 'jane@lumenwork.example', 'admin', T0);
      return { db, member };
    }

    it('keep only the hash of the secret and work once', async () => {
      const { db, member } = await world();
      const { token, link } = await createLink(db, member.id, 'invite', null, T0);
      expect(token).toMatch(/^[a-z2-7]{24}\.[a-z2-7]{24}$/);
      const { secret } = splitToken(token);
      for (const row of await linkRows(db)) {
        for (const [column, value] of Object.entries(row)) expect(holds(value, secret), column).toBe(false);
      }
      const check = await checkLink(db, token, at(MINUTE));
      expect(check).toEqual({ ok: true, link });
      expect(await consumeLink(db, link.id, at(MINUTE))).toBe(true);
      expect(await consumeLink(db, link.id, at(MINUTE))).toBe(false);
      expect(await checkLink(db, token, at(2 * MINUTE))).toEqual({ ok: false, reason: 'used' });
    });

    it('expire after 24 hours', async () => {
      const { db, member } = await world();
      const { token } = await createLink(db, member.id, 'reset', null, T0);
      expect(LINK_TTL_MS).toBe(24 * HOUR);
      expect((await checkLink(db, token, at(24 * HOUR - 1))).ok).toBe(true);
      expect(await checkLink(db, token, at(24 * HOUR))).toEqual({ ok: false, reason: 'expired' });
    });

    it('refuse a wrong secret or a malformed token', async () => {
      const { db, member } = await world();
      const { token } = await createLink(db, member.id, 'setup', null, T0);
      const { id, secret } = splitToken(token);
      const other = await createLink(db, (await insertStaff(db, 'sam@lumenwork.example', 'viewer', T0)).id, 'invite', null, T0);
      for (const bad of [
        `${id}.${splitToken(other.token).secret}`,
        `${id}.${secret.toUpperCase()}`,
        id,
        `${token}.x`,
        '',
        `nosuchid.${secret}`,
      ]) {
        expect(await checkLink(db, bad, at(MINUTE))).toEqual({ ok: false, reason: 'invalid' });
      }
    });

    it('replace an earlier unused link for the same person', async () => {
      const { db, member } = await world();
      const first = await createLink(db, member.id, 'invite', null, T0);
      const second = await createLink(db, member.id, 'reset', null, at(MINUTE));
      expect((await checkLink(db, first.token, at(2 * MINUTE))).ok).toBe(false);
      expect(await consumeLink(db, first.link.id, at(2 * MINUTE))).toBe(false);
      expect((await checkLink(db, second.token, at(2 * MINUTE))).ok).toBe(true);
    });
  });

  describe('rate limits', () => {
    const limit: Limit = { bucket: 'test:a', max: 3, windowMs: MINUTE };
    /** The rate limits on the async handle of a fresh database, one transaction per call, as flows use them. */
    async function limits() {
      const database = await freshDatabase();
      return {
        peek: (l: Limit, key: string, now: Date) => peekLimitNow(database, l, key, now),
        hit: (l: Limit, key: string, now: Date) => hitLimitNow(database, l, key, now),
        clear: (l: Limit, key: string) => database.transaction((tx) => clearLimit(tx, l, key)),
      };
    }

    it('count attempts in a fixed window and limit beyond the maximum', async () => {
      const { peek, hit } = await limits();
      expect(await peek(limit, 'k', T0)).toEqual({ count: 0, limited: false, retryAfterMs: 0 });
      const hits = [];
      for (const i of [1, 2, 3]) hits.push(await hit(limit, 'k', at(i * SECOND)));
      expect(hits).toMatchObject([
        { count: 1, limited: false },
        { count: 2, limited: false },
        { count: 3, limited: false },
      ]);
      expect(await peek(limit, 'k', at(4 * SECOND))).toEqual({ count: 3, limited: true, retryAfterMs: 57 * SECOND });
      expect(await hit(limit, 'k', at(5 * SECOND))).toEqual({ count: 4, limited: true, retryAfterMs: 56 * SECOND });
    });

    it('start again once the window has passed', async () => {
      const { peek, hit } = await limits();
      for (let i = 0; i < 5; i++) await hit(limit, 'k', at(i * SECOND));
      expect((await peek(limit, 'k', at(MINUTE - 1))).limited).toBe(true);
      expect(await peek(limit, 'k', at(MINUTE))).toEqual({ count: 0, limited: false, retryAfterMs: 0 });
      expect(await hit(limit, 'k', at(MINUTE))).toEqual({ count: 1, limited: false, retryAfterMs: MINUTE });
      // The new window runs from its first attempt.
      expect((await hit(limit, 'k', at(2 * MINUTE - 1))).count).toBe(2);
      expect((await hit(limit, 'k', at(2 * MINUTE))).count).toBe(1);
    });

    it('count per bucket and key, and can be cleared', async () => {
      const { peek, hit, clear } = await limits();
      const other: Limit = { ...limit, bucket: 'test:b' };
      for (let i = 0; i < 4; i++) await hit(limit, 'k', T0);
      expect((await peek(limit, 'k', T0)).limited).toBe(true);
      expect(await hit(limit, 'j', T0)).toMatchObject({ count: 1, limited: false });
      expect(await hit(other, 'k', T0)).toMatchObject({ count: 1, limited: false });
      await clear(limit, 'k');
      expect((await peek(limit, 'k', T0)).count).toBe(0);
      expect((await peek(limit, 'j', T0)).count).toBe(1);
    });
  });
});
