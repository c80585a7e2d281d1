import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database, Tx } from '../../db/engine/types.ts';
import {
  type ChallengeCheck,
  createEmailChallenge,
  createSmsChallenge,
  EMAIL_LINK_TTL_MS,
  SMS_CODE_TTL_MS,
  useEmailChallenge,
  useSmsChallenge,
} from '../../src/core/subscriptions/challenges.ts';
import { challengeForUse, countAttempt, markUsed, removeChallengesExpiredBefore, retireChallenges } from '../../src/stores/challenges.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const SECRET = 'challenge-store-test-secret-0123456789abcdef';
const T0 = new Date('2026-11-30T09:15:00.123Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

async function recipient(tx: Tx, address: string): Promise<number> {
  const q = query(tx);
  const [s] = await q.db
    .insert(q.t.subscribers)
    .values({ createdAt: T0, trustCenterId: q.trustCenter })
    .returning({ id: q.t.subscribers.id });
  if (!s) throw new Error('no subscriber');
  const [r] = await q.db
    .insert(q.t.recipients)
    .values({
      subscriberId: s.id,
      channel: address.startsWith('+') ? 'sms' : 'email',
      address,
      addressHash: `hash:${address}`,
      status: 'pending',
      createdAt: T0,
      trustCenterId: q.trustCenter,
    })
    .returning({ id: q.t.recipients.id });
  if (!r) throw new Error('no recipient');
  return r.id;
}

/** The row without its hash (of a random id and secret, so different on each run). */
async function rowOf(database: Database, id: string) {
  const row = await database.transaction((tx) => challengeForUse(tx, id, 'sms_code'));
  if (!row) return undefined;
  const { secretHash, ...rest } = row;
  return { ...rest, hashed: /^[0-9a-f]{64}$/.test(secretHash) };
}

const count = (checks: ChallengeCheck[]) => {
  const tally: Record<string, number> = {};
  for (const c of checks) {
    const key = c.ok ? 'ok' : c.reason;
    tally[key] = (tally[key] ?? 0) + 1;
  }
  return tally;
};

/** Everything a caller can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const [jane, bob, phone, other] = await database.transaction(async (tx) => [
    await recipient(tx, 'jane@acme.example'),
    await recipient(tx, 'bob@acme.example'),
    await recipient(tx, '+447911123456'),
    await recipient(tx, '+447911123457'),
  ]);
  if (!jane || !bob || !phone || !other) throw new Error('no recipients');

  // Email links: only the issued secret works, once, until it expires.
  const token = await createEmailChallenge(database, SECRET, jane, T0);
  const [id = '', secret = ''] = token.split('.');
  seen.link = {
    shape: /^[a-z0-9]+\.[a-z0-9]+$/.test(token),
    wrongSecret: await useEmailChallenge(database, SECRET, `${id}.${secret}x`, later(1)),
    malformed: await useEmailChallenge(database, SECRET, `${token}.extra`, later(1)),
    unknown: await useEmailChallenge(database, SECRET, `nope.${secret}`, later(1)),
    // an SMS challenge's id is not an email link's
    asSms: await useSmsChallenge(database, SECRET, id, '123456', later(1)),
    right: await useEmailChallenge(database, SECRET, token, later(1)),
    again: await useEmailChallenge(database, SECRET, token, later(2)),
  };
  const stale = await createEmailChallenge(database, SECRET, bob, T0);
  seen.expiredLink = await useEmailChallenge(database, SECRET, stale, later(EMAIL_LINK_TTL_MS));
  // A new challenge replaces the address's unused ones.
  const first = await createEmailChallenge(database, SECRET, bob, later(5));
  const second = await createEmailChallenge(database, SECRET, bob, later(6));
  seen.replaced = [await useEmailChallenge(database, SECRET, first, later(7)), await useEmailChallenge(database, SECRET, second, later(7))];

  // SMS codes: five tries, the right one on the fifth still works; after five wrong ones, not even the right one.
  const sms = await createSmsChallenge(database, SECRET, phone, T0);
  seen.smsShape = /^\d{6}$/.test(sms.code);
  const tries: ChallengeCheck[] = [];
  for (let i = 0; i < 4; i++) tries.push(await useSmsChallenge(database, SECRET, sms.id, wrong(sms.code), later(10)));
  tries.push(await useSmsChallenge(database, SECRET, sms.id, `${sms.code.slice(0, 3)} ${sms.code.slice(3)}`, later(10)));
  tries.push(await useSmsChallenge(database, SECRET, sms.id, sms.code, later(11)));
  seen.smsTries = tries;
  const locked = await createSmsChallenge(database, SECRET, phone, later(20));
  const lockedTries: ChallengeCheck[] = [];
  for (let i = 0; i < 5; i++) lockedTries.push(await useSmsChallenge(database, SECRET, locked.id, wrong(locked.code), later(21)));
  lockedTries.push(await useSmsChallenge(database, SECRET, locked.id, locked.code, later(22)));
  seen.lockedTries = lockedTries;
  seen.lockedRow = await rowOf(database, locked.id);
  const expiring = await createSmsChallenge(database, SECRET, phone, later(30));
  seen.expiredCode = await useSmsChallenge(database, SECRET, expiring.id, expiring.code, later(30 + SMS_CODE_TTL_MS));

  // At the same time: two uses of one code, one link, and eight wrong codes on one challenge.
  const race = await createSmsChallenge(database, SECRET, other, later(40));
  seen.raceCode = count(await Promise.all([0, 1].map(() => useSmsChallenge(database, SECRET, race.id, race.code, later(41)))));
  const raceLink = await createEmailChallenge(database, SECRET, jane, later(40));
  seen.raceLink = count(await Promise.all([0, 1].map(() => useEmailChallenge(database, SECRET, raceLink, later(41)))));
  const guessed = await createSmsChallenge(database, SECRET, other, later(50));
  seen.raceGuesses = count(
    await Promise.all(Array.from({ length: 8 }, () => useSmsChallenge(database, SECRET, guessed.id, wrong(guessed.code), later(51)))),
  );
  seen.raceGuessesRow = await rowOf(database, guessed.id);

  // Another trust center sees and changes none of it.
  const open = await createSmsChallenge(database, SECRET, phone, later(60));
  const tc2 = { trustCenter: 2 };
  seen.otherTrustCenter = await database.transaction(
    async (tx) => ({
      row: await challengeForUse(tx, open.id, 'sms_code'),
      counted: await countAttempt(tx, open.id),
      used: await markUsed(tx, open.id, later(61)),
      retired: await retireChallenges(tx, phone, later(61)),
      purged: await removeChallengesExpiredBefore(tx, later(1_000 * EMAIL_LINK_TTL_MS)),
    }),
    tc2,
  );
  seen.untouched = await rowOf(database, open.id);
  seen.stillWorks = await useSmsChallenge(database, SECRET, open.id, open.code, later(62));

  // Housekeeping's purge: only what expired before the cutoff.
  seen.purged = await database.transaction(async (tx) => [
    await removeChallengesExpiredBefore(tx, later(SMS_CODE_TTL_MS + 35)),
    await removeChallengesExpiredBefore(tx, later(2 * EMAIL_LINK_TTL_MS)),
    await removeChallengesExpiredBefore(tx, later(2 * EMAIL_LINK_TTL_MS)),
  ]);
  seen.afterPurge = await rowOf(database, open.id);
  return seen;
}

const expected = {
  link: {
    shape: true,
    wrongSecret: { ok: false, reason: 'invalid' },
    malformed: { ok: false, reason: 'invalid' },
    unknown: { ok: false, reason: 'invalid' },
    asSms: { ok: false, reason: 'invalid' },
    right: { ok: true, recipientId: 1 },
    again: { ok: false, reason: 'used' },
  },
  expiredLink: { ok: false, reason: 'expired' },
  replaced: [
    { ok: false, reason: 'used' },
    { ok: true, recipientId: 2 },
  ],
  smsShape: true,
  smsTries: [
    { ok: false, reason: 'invalid' },
    { ok: false, reason: 'invalid' },
    { ok: false, reason: 'invalid' },
    { ok: false, reason: 'invalid' },
    { ok: true, recipientId: 3 },
    { ok: false, reason: 'used' },
  ],
  lockedTries: [
    { ok: false, reason: 'invalid' },
    { ok: false, reason: 'invalid' },
    { ok: false, reason: 'invalid' },
    { ok: false, reason: 'invalid' },
    { ok: false, reason: 'tries' },
    { ok: false, reason: 'tries' },
  ],
  lockedRow: { recipientId: 3, hashed: true, attempts: 5, usedAt: null, expiresAt: later(20 + SMS_CODE_TTL_MS) },
  expiredCode: { ok: false, reason: 'expired' },
  raceCode: { ok: 1, used: 1 },
  raceLink: { ok: 1, used: 1 },
  // one after the other: four wrong, the fifth uses the last try, the rest find none left and count nothing
  raceGuesses: { invalid: 4, tries: 4 },
  raceGuessesRow: { attempts: 5, usedAt: null },
  otherTrustCenter: { row: undefined, used: false, retired: 0, purged: 0 },
  untouched: { recipientId: 3, attempts: 0, usedAt: null },
  stillWorks: { ok: true, recipientId: 3 },
  // the SMS codes issued at T0, +20 ms and +30 ms (expired before the cutoff); then the other eight (48 h links included)
  purged: [3, 8, 0],
  afterPurge: undefined,
};

describe('subscription challenges store on SQLite', () => {
  let engine: SqliteEngine;
  beforeAll(() => {
    engine = tempSqliteEngine();
  });
  afterAll(async () => {
    await engine.close();
  });

  it('issues, checks and consumes links and codes', async () => {
    expect(await sequence(engine)).toMatchObject(expected);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('subscription challenges store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives exactly what SQLite gives, concurrent uses included, as the application role under row-level security', async () => {
    const onPostgres = await sequence(engines.postgres);
    expect(onPostgres).toMatchObject(expected);
    expect(onPostgres).toEqual(await sequence(engines.sqlite));
  });
});
