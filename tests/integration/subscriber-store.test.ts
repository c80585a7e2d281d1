/**
 * Subscribers on the stores (src/stores/subscribers.ts) through the subscription domain, on SQLite
 * and PostgreSQL alike: what a sign-up, a confirmation, an unsubscribe, an erasure, the purge of
 * unconfirmed sign-ups and the console directory leave behind, and, on PostgreSQL, that concurrent
 * callers meet as the store says (one subscriber for ten sign-ups of one address, one winner of a
 * confirmation, a Slack state or a lift, no subscriber left behind by two removals at once).
 */

import { and, eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query, reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { seal } from '../../src/core/crypto/seal.ts';
import { addressHash, openRecipient } from '../../src/core/notify/recipients.ts';
import type { Choices, StaffAudit, SubscriptionContext } from '../../src/core/subscriptions/context.ts';
import {
  auditExport,
  findSubscriber,
  liftSuppression,
  quarantine,
  removeSubscriber,
  subscriberCounts,
  subscribersCsv,
  viewSubscriber,
} from '../../src/core/subscriptions/directory.ts';
import { subscribeEmail } from '../../src/core/subscriptions/subscribe.ts';
import {
  deleteSubscriber,
  purgeUnconfirmed,
  removeRecipient,
  setTopics,
  setTopicsIn,
  signUp,
  signUpIn,
  topicsOf,
} from '../../src/core/subscriptions/subscribers.ts';
import { insertRecipient, recipientByHash } from '../../src/stores/recipients.ts';
import { activateRecipient, insertSlackState, recipientById, takeSlackState } from '../../src/stores/subscribers.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const KEYRING = auditKeyring(TEST_KEYS.secret);
const T0 = new Date('2026-11-30T09:15:00.123Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
const staff: StaffAudit = { actor: { type: 'staff', id: 7, label: 'Ada (ada@example.com)' }, ip: '192.0.2.1', userAgent: 'test' };
const choices = (over: Partial<Choices> = {}): Choices => ({ topics: ['incidents'], components: [], organisation: null, ...over });

async function counts(database: Database) {
  return database.read(async (r) => {
    const q = reading(r);
    const n = async (table: 'subscribers' | 'recipients' | 'subscriberTopics') => Number(await q.db.$count(q.t[table], undefined));
    return { subscribers: await n('subscribers'), recipients: await n('recipients'), topics: await n('subscriberTopics') };
  });
}

async function auditActions(database: Database): Promise<{ action: string; target: string | null; summary: unknown }[]> {
  return database.read(async (r) => {
    const q = reading(r);
    const a = q.t.auditLog;
    const rows = await q.db.select({ id: a.id, action: a.action, target: a.target, summary: a.summary }).from(a);
    return rows.sort((x, y) => x.id - y.id).map(({ action, target, summary }) => ({ action, target, summary }));
  });
}

/** Everything a user of the subscription domain can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const email = await signUp(
    database,
    TEST_KEYS,
    { channel: 'email', address: ' Jane@Example.com ', status: 'pending' },
    choices({ topics: ['incidents', 'maintenance'], components: ['api', 'web'], organisation: 'Acme' }),
    at(0),
  );
  const again = await signUp(database, TEST_KEYS, { channel: 'email', address: 'jane@example.com', status: 'pending' }, choices(), at(1));
  seen.signUps = { created: [email.created, again.created], same: again.recipient.id === email.recipient.id };
  seen.opened = openRecipient(TEST_KEYS, email.recipient).address;
  const subscriberId = email.recipient.subscriberId ?? 0;
  seen.topics = await topicsOf(database, subscriberId);
  await setTopics(database, subscriberId, choices({ topics: ['docs', 'incidents'], components: ['api', 'api'], organisation: 'Acme Ltd' }));
  seen.topicsAfter = await topicsOf(database, subscriberId);
  seen.confirm = await database.transaction(async (tx) => [
    await activateRecipient(tx, email.recipient.id),
    await activateRecipient(tx, email.recipient.id),
  ]);
  const sms = await signUp(database, TEST_KEYS, { channel: 'sms', address: '+447911123456', status: 'active' }, choices(), at(2));
  const hook = await signUp(
    database,
    TEST_KEYS,
    { channel: 'webhook', address: 'https://hooks.example/in', secret: 'whsec_abc', status: 'active' },
    choices({ topics: ['subprocessors'] }),
    at(3),
  );
  seen.secret = openRecipient(TEST_KEYS, hook.recipient).secret;
  // a second address of the SMS subscriber, as staff tooling might add one
  const smsSubscriber = sms.recipient.subscriberId ?? 0;
  const second = await database.transaction((tx) =>
    insertRecipient(tx, {
      subscriberId: smsSubscriber,
      channel: 'slack',
      address: seal(TEST_KEYS.keys[0] ?? Buffer.alloc(32), 'C0SLACK', 'recipient:slack:address'),
      addressHash: 'hash:slack',
      domainHash: null,
      secret: null,
      status: 'active',
      createdAt: at(4),
    }),
  );
  // suppressed, as the delivery side would
  await database.transaction(async (tx) => {
    const q = query(tx);
    await q.db
      .update(q.t.recipients)
      .set({ status: 'suppressed', suppressedAt: at(5), suppressedReason: 'replied STOP', suppressedFrom: 'active' })
      .where(eq(q.t.recipients.id, sms.recipient.id));
  });
  seen.counts = await subscriberCounts(database);
  seen.found = [
    await findSubscriber(database, TEST_KEYS, 'JANE@example.com'),
    await findSubscriber(database, TEST_KEYS, '+44 7911 123456'),
    await findSubscriber(database, TEST_KEYS, 'nobody@example.com'),
    await findSubscriber(database, TEST_KEYS, 'jane@'),
  ];
  seen.quarantine = await quarantine(database, TEST_KEYS);
  seen.lift = [
    await liftSuppression(database, sms.recipient.id, staff, at(6)),
    await liftSuppression(database, sms.recipient.id, staff, at(6)),
  ];
  seen.afterLift = (await database.read((r) => recipientById(r, sms.recipient.id)))?.status;
  const record = await viewSubscriber(database, TEST_KEYS, subscriberId, staff, at(7));
  seen.record = { ...record, createdAt: record?.createdAt.toISOString() };
  seen.missing = await viewSubscriber(database, TEST_KEYS, 999_999, staff, at(7));
  seen.exportRows = await auditExport(database, staff, at(8));
  let csv = '';
  for await (const chunk of subscribersCsv(database, TEST_KEYS, 2)) csv += chunk;
  seen.csv = csv;

  // Removing the SMS subscriber's two addresses one by one removes the subscriber with the last.
  seen.removeFirst = (await removeRecipient(database, sms.recipient.id, 'unsubscribed', new Date()))?.id === sms.recipient.id;
  seen.subscriberAfterFirst = (await viewSubscriber(database, TEST_KEYS, smsSubscriber, staff, at(9)))?.channels.length;
  seen.removeLast = (await removeRecipient(database, second.id, 'unsubscribed', new Date()))?.id === second.id;
  seen.removeAgain = await removeRecipient(database, second.id, 'unsubscribed', new Date());
  seen.subscriberAfterLast = await viewSubscriber(database, TEST_KEYS, smsSubscriber, staff, at(9));
  seen.removed = [
    await removeSubscriber(database, hook.recipient.subscriberId ?? 0, staff, at(10)),
    await removeSubscriber(database, hook.recipient.subscriberId ?? 0, staff, at(10)),
  ];
  seen.audit = await auditActions(database);

  // The purge: a pending sign-up older than a week goes, with its subscriber; a confirmed one stays.
  await signUp(database, TEST_KEYS, { channel: 'email', address: 'old@example.com', status: 'pending' }, choices(), at(-8 * 24 * 60));
  await signUp(database, TEST_KEYS, { channel: 'email', address: 'new@example.com', status: 'pending' }, choices(), at(-60));
  seen.purged = await purgeUnconfirmed(database, at(0));
  seen.afterPurge = [
    await findSubscriber(database, TEST_KEYS, 'old@example.com'),
    (await findSubscriber(database, TEST_KEYS, 'new@example.com')) !== null,
    (await findSubscriber(database, TEST_KEYS, 'jane@example.com')) !== null,
  ];
  seen.erased = await deleteSubscriber(database, subscriberId, 'erased', new Date());
  seen.counts2 = await counts(database);

  // "Add to Slack" states: taken once, never after expiry.
  await database.transaction(async (tx) => {
    await insertSlackState(tx, { id: 's1', choices: { topics: ['incidents'] }, createdAt: at(0), expiresAt: at(10) });
    await insertSlackState(tx, { id: 's2', choices: { topics: ['docs'] }, createdAt: at(0), expiresAt: at(10) });
  });
  seen.states = await database.transaction(async (tx) => [
    await takeSlackState(tx, 's1', at(5)),
    await takeSlackState(tx, 's1', at(5)),
    await takeSlackState(tx, 's2', at(10)),
    await takeSlackState(tx, 'nope', at(5)),
  ]);
  return seen;
}

const expectedCsvLines = (csv: string) => csv.trim().split('\r\n');

function checkSequence(seen: Record<string, unknown>): void {
  expect(seen.signUps).toEqual({ created: [true, false], same: true });
  expect(seen.opened).toBe('jane@example.com');
  expect(seen.topics).toEqual([
    { topic: 'incidents', component: 'api' },
    { topic: 'incidents', component: 'web' },
    { topic: 'maintenance', component: 'api' },
    { topic: 'maintenance', component: 'web' },
  ]);
  expect(seen.topicsAfter).toEqual([
    { topic: 'docs', component: '' },
    { topic: 'incidents', component: 'api' },
  ]);
  expect(seen.confirm).toEqual([true, false]);
  expect(seen.secret).toBe('whsec_abc');
  expect(seen.counts).toEqual({
    byChannel: [
      { channel: 'email', status: 'active', n: 1 },
      { channel: 'slack', status: 'active', n: 1 },
      { channel: 'sms', status: 'suppressed', n: 1 },
      { channel: 'webhook', status: 'active', n: 1 },
    ],
    byTopic: [
      { topic: 'docs', n: 1 },
      { topic: 'incidents', n: 2 },
      { topic: 'subprocessors', n: 1 },
    ],
    subscribers: 3,
  });
  const found = seen.found as unknown[];
  expect(found[0]).toEqual({ subscriberId: expect.any(Number) });
  expect(found[1]).toEqual({ subscriberId: expect.any(Number) });
  expect(found[2]).toBeNull();
  expect(found[3]).toEqual({ error: expect.stringContaining('is not a valid email address') });
  expect(seen.quarantine).toEqual([
    expect.objectContaining({ channel: 'sms', address: '+44 …3456', reason: 'replied STOP', since: at(5) }),
  ]);
  expect(seen.lift).toEqual([{ ok: true }, { ok: false, message: 'That address is not suppressed.' }]);
  expect(seen.afterLift).toBe('active');
  expect(seen.record).toMatchObject({
    organisation: 'Acme Ltd',
    createdAt: at(0).toISOString(),
    channels: [{ channel: 'email', address: 'jane@example.com', status: 'active', suppressedReason: null, suppressedAt: null }],
    topics: [
      { topic: 'docs', component: '' },
      { topic: 'incidents', component: 'api' },
    ],
    deliveries: [],
    // confirmed through the store directly, not a flow: no consent record (the flows write it: subscriber-import.test.ts)
    consents: [],
  });
  expect(seen.missing).toBeNull();
  expect(seen.exportRows).toBe(4);
  const lines = expectedCsvLines(seen.csv as string);
  expect(lines[0]).toBe(
    'subscriber_id,organisation,channel,address,status,topics,subscribed_at,consent_source,consent_method,opted_in_at,opted_in_via',
  );
  expect(lines.slice(1).map((l) => l.split(',').slice(1, 6))).toEqual([
    ['Acme Ltd', 'email', 'jane@example.com', 'active', 'docs incidents:api'],
    // a leading + is defused like a formula (src/core/text/csv.ts)
    ['', 'sms', "'+447911123456", 'active', 'incidents'],
    ['', 'slack', 'C0SLACK', 'active', 'incidents'],
    ['', 'webhook', 'https://hooks.example/in', 'active', 'subprocessors'],
  ]);
  expect(seen.removeFirst).toBe(true);
  expect(seen.subscriberAfterFirst).toBe(1);
  expect(seen.removeLast).toBe(true);
  expect(seen.removeAgain).toBeUndefined();
  expect(seen.subscriberAfterLast).toBeNull();
  expect(seen.removed).toEqual([{ ok: true }, { ok: false, message: 'That subscriber was already removed.' }]);
  expect((seen.audit as { action: string }[]).map((a) => a.action)).toEqual([
    'subscribers.unsuppressed',
    'subscribers.viewed',
    'subscribers.exported',
    'subscribers.viewed',
    'subscribers.removed',
  ]);
  expect(seen.purged).toBe(1);
  expect(seen.afterPurge).toEqual([null, true, true]);
  expect(seen.erased).toEqual({ channels: 1 });
  // left: the recent pending sign-up, its subscriber and topic
  expect(seen.counts2).toEqual({ subscribers: 1, recipients: 1, topics: 1 });
  expect(seen.states).toEqual([{ topics: ['incidents'] }, undefined, undefined, undefined]);
}

describe('subscriber store on SQLite', () => {
  let engine: Database;
  beforeAll(() => {
    engine = bindAuditKeys(tempSqliteEngine(), KEYRING);
  });
  afterAll(async () => {
    await engine.close();
  });

  it('signs up, confirms, lists, exports, removes and purges', async () => {
    checkSequence(await sequence(engine));
  });

  it('erasure leaves no trace keyed by the address', async () => {
    const made = await signUp(engine, TEST_KEYS, { channel: 'email', address: 'trace@example.com', status: 'active' }, choices(), T0);
    const hash = addressHash(TEST_KEYS, 'email', 'trace@example.com');
    await engine.transaction(async (tx) => {
      const q = query(tx);
      await q.db.insert(q.t.rateLimits).values({ bucket: 'subscribe:address', key: hash, windowStart: T0, count: 1, trustCenterId: 1 });
    });
    await deleteSubscriber(engine, made.recipient.subscriberId ?? 0, 'erased', new Date());
    const left = await engine.read(async (r) => {
      const q = reading(r);
      return Number(await q.db.$count(q.t.rateLimits, undefined));
    });
    expect(left).toBe(0);
    expect(await engine.read((r) => recipientByHash(r, 'email', hash))).toBeUndefined();
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('subscriber store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
    bindAuditKeys(engines.postgres, KEYRING);
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives what SQLite gives, as the application role under row-level security', async () => {
    checkSequence(await sequence(engines.postgres));
  });

  it('ten concurrent sign-ups of one address make one subscriber', async () => {
    const pg = engines.postgres;
    const before = await counts(pg);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        signUp(pg, TEST_KEYS, { channel: 'email', address: 'Race@Example.com', status: 'pending' }, choices({ organisation: `n${i}` }), T0),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.recipient.id)).size).toBe(1);
    const after = await counts(pg);
    expect(after.subscribers - before.subscribers).toBe(1);
    expect(after.recipients - before.recipients).toBe(1);
    expect(after.topics - before.topics).toBe(1);
  });

  it('ten concurrent email sign-ups of one address: one subscriber, three messages (the per-address limit), one live link', async () => {
    const pg = engines.postgres;
    const ctx: SubscriptionContext = {
      database: pg,
      keys: TEST_KEYS,
      now: T0,
      publicUrl: new URL('https://trust.example.com/'),
      organisation: 'Example',
      componentIds: [],
      webhookPolicy: { allowHosts: [] },
      ip: '198.51.100.7',
      log: () => {},
    };
    const answers = await Promise.all(Array.from({ length: 10 }, () => subscribeEmail(ctx, 'Crowd@Example.com', choices())));
    expect(answers.every((a) => a.ok)).toBe(true);
    const hash = addressHash(TEST_KEYS, 'email', 'crowd@example.com');
    const seen = await pg.read(async (r) => {
      const q = reading(r);
      const recipient = await recipientByHash(r, 'email', hash);
      const id = recipient?.id ?? 0;
      const { deliveries: d, subscriptionChallenges: c, subscribers: sub } = q.t;
      return {
        subscribers: await q.db.$count(sub, undefined),
        messages: await q.db.$count(d, eq(d.recipientId, id)),
        liveLinks: await q.db.$count(c, and(eq(c.recipientId, id), isNull(c.usedAt))),
      };
    });
    expect(seen).toEqual({ subscribers: expect.any(Number), messages: 3, liveLinks: 1 });
    expect(await findSubscriber(pg, TEST_KEYS, 'crowd@example.com')).toEqual({ subscriberId: expect.any(Number) });
  });

  it('of concurrent confirmations, Slack callbacks and lifts, exactly one wins', async () => {
    const pg = engines.postgres;
    const made = await signUp(pg, TEST_KEYS, { channel: 'sms', address: '+447911000111', status: 'pending' }, choices(), T0);
    const confirmed = await Promise.all(Array.from({ length: 6 }, () => pg.transaction((tx) => activateRecipient(tx, made.recipient.id))));
    expect(confirmed.filter(Boolean)).toHaveLength(1);
    await pg.transaction((tx) => insertSlackState(tx, { id: 'race', choices: { topics: ['docs'] }, createdAt: T0, expiresAt: at(10) }));
    const taken = await Promise.all(Array.from({ length: 6 }, () => pg.transaction((tx) => takeSlackState(tx, 'race', at(1)))));
    expect(taken.filter((t) => t !== undefined)).toEqual([{ topics: ['docs'] }]);
    await pg.transaction(async (tx) => {
      const q = query(tx);
      await q.db
        .update(q.t.recipients)
        .set({ status: 'suppressed', suppressedAt: T0, suppressedReason: 'bounced', suppressedFrom: 'active' })
        .where(eq(q.t.recipients.id, made.recipient.id));
    });
    const lifted = await Promise.all(Array.from({ length: 6 }, () => liftSuppression(pg, made.recipient.id, staff, at(2))));
    expect(lifted.filter((l) => l.ok)).toHaveLength(1);
    const audits = (await auditActions(pg)).filter((a) => a.target === `recipient:${made.recipient.id}`);
    expect(audits).toHaveLength(1);
  });

  it('a sign-up of a known address and the erasure of its subscriber at once both succeed, in some order', async () => {
    const pg = engines.postgres;
    for (let round = 0; round < 5; round++) {
      const address = `again${round}@example.com`;
      const made = await signUp(pg, TEST_KEYS, { channel: 'email', address, status: 'pending' }, choices(), T0);
      const subscriberId = made.recipient.subscriberId ?? 0;
      // as subscribeEmail does for an unconfirmed address: found (locked), new topics
      const again = pg.transaction(async (tx) => {
        const { recipient, created } = await signUpIn(tx, TEST_KEYS, { channel: 'email', address, status: 'pending' }, choices(), T0);
        if (!created && recipient.subscriberId) await setTopicsIn(tx, recipient.subscriberId, choices({ topics: ['docs'] }));
        return created;
      });
      const [created, erased] = await Promise.all([again, deleteSubscriber(pg, subscriberId, 'erased', new Date())]);
      const found = await findSubscriber(pg, TEST_KEYS, address);
      // erased first: signed up anew; signed up first: erased with it
      if (created) expect(found).toEqual({ subscriberId: expect.any(Number) });
      else expect(found).toBeNull();
      expect(erased).toEqual({ channels: 1 });
    }
  });

  it('two concurrent removals of a subscriber’s last two addresses leave no subscriber behind', async () => {
    const pg = engines.postgres;
    for (let round = 0; round < 5; round++) {
      const made = await signUp(pg, TEST_KEYS, { channel: 'email', address: `pair${round}@example.com`, status: 'active' }, choices(), T0);
      const subscriberId = made.recipient.subscriberId ?? 0;
      const other = await pg.transaction((tx) =>
        insertRecipient(tx, {
          subscriberId,
          channel: 'slack',
          address: 'sealed',
          addressHash: `hash:pair${round}`,
          domainHash: null,
          secret: null,
          status: 'active',
          createdAt: T0,
        }),
      );
      const removed = await Promise.all([
        removeRecipient(pg, made.recipient.id, 'unsubscribed', new Date()),
        removeRecipient(pg, other.id, 'unsubscribed', new Date()),
      ]);
      expect(removed.map((r) => r?.id)).toEqual([made.recipient.id, other.id]);
      expect(await viewSubscriber(pg, TEST_KEYS, subscriberId, staff, T0)).toBeNull();
    }
  });
});
