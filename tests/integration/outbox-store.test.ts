/**
 * The outbox on the stores, on each engine: a fan-out writes one pending delivery per recipient its
 * audience selects, in the caller's transaction (rolled back with it); the composer's counts come
 * from the same definition; a targeted audience selects only what Candor verified; recipients are
 * added once under concurrent callers; staff messages reach active staff once each.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { Database, Tx } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { type Audience, countAudience, enqueueNotification, organisationBreakdown } from '../../src/core/notify/outbox.ts';
import {
  addRecipient,
  ensureRecipient,
  findRecipient,
  indexEmailDomains,
  openRecipient,
  suppressRecipient,
  unsuppressRecipient,
} from '../../src/core/notify/recipients.ts';
import { notifyStaff } from '../../src/core/notify/staff-recipients.ts';
import { sendTestMessage } from '../../src/core/notify/test-send.ts';
import type { NotificationContent } from '../../src/core/notify/types.ts';
import { domainHash } from '../../src/core/organisations/domains.ts';
import { audienceReach } from '../../src/core/organisations/reach.ts';
import { insertDomain, insertMember, insertOrganisation } from '../../src/stores/organisations.ts';
import { emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const NOW = new Date('2026-12-03T09:00:00.000Z');
const ALL: ChannelName[] = ['email', 'sms', 'slack', 'webhook'];
const content = { ...emailContent(), sms: { body: 'x', link: 'https://t.example/i/1' }, slack: { text: 'x', blocks: [] } };

/** A subscriber following `topic` (narrowed to `component` when given), with one address. */
async function person(
  tx: Tx,
  channel: ChannelName,
  address: string,
  options: { topic?: string; component?: string; status?: 'active' | 'pending'; company?: string } = {},
): Promise<number> {
  const q = query(tx);
  const [s] = await q.db
    .insert(q.t.subscribers)
    .values({ organisation: options.company ?? null, createdAt: NOW, trustCenterId: q.trustCenter })
    .returning({ id: q.t.subscribers.id });
  if (!s) throw new Error('no subscriber');
  await q.db
    .insert(q.t.subscriberTopics)
    .values({ subscriberId: s.id, topic: options.topic ?? 'incidents', component: options.component ?? '', trustCenterId: q.trustCenter });
  return (await addRecipient(tx, TEST_KEYS, { channel, address, subscriberId: s.id, status: options.status ?? 'active' }, NOW)).id;
}

/** Who follows what, and which organisation they belong to. */
async function world(tx: Tx) {
  const ids = {
    member: await person(tx, 'email', 'Jane@AcmeBank.example'),
    subdomain: await person(tx, 'email', 'mallory@mail.acmebank.example', { company: 'Acme Bank' }),
    lookalike: await person(tx, 'email', 'mallory@acmebank.example.evil.example', { company: 'Acme Bank' }),
    pending: await person(tx, 'email', 'eve@acmebank.example', { status: 'pending' }),
    typedOnly: await person(tx, 'email', 'mallory@freemail.example', { company: 'Acme Bank' }),
    assignedSms: await person(tx, 'sms', '+447911123402'),
    api: await person(tx, 'email', 'api@x.example', { component: 'public-api' }),
    web: await person(tx, 'email', 'web@x.example', { component: 'web-app' }),
    suppressedApi: await person(tx, 'email', 'api2@x.example', { component: 'public-api' }),
    subprocessors: await person(tx, 'email', 'sub@x.example', { topic: 'subprocessors' }),
    webhook: await person(tx, 'webhook', 'https://hooks.example/candor'),
  };
  await suppressRecipient(tx, ids.suppressedApi, 'bounced', NOW);
  const acme = await insertOrganisation(tx, 'Acme Bank', { at: NOW, by: 1 });
  const initech = await insertOrganisation(tx, 'Initech', { at: NOW, by: 1 });
  await insertDomain(tx, acme, 'acmebank.example', domainHash(TEST_KEYS.secret, 'acmebank.example'), { at: NOW, by: 1 });
  await insertMember(tx, { organisationId: acme, recipientId: ids.assignedSms, basis: 'assigned' }, { at: NOW, by: 1 });
  // On two bases: by domain and placed by staff; counted once.
  await insertMember(tx, { organisationId: acme, recipientId: ids.member, basis: 'assigned' }, { at: NOW, by: 1 });
  return { ids, acme, initech };
}

describe.each(enginesUnderTest())('the outbox on $name', (engine) => {
  let database: Database;
  let close: () => Promise<void>;
  let ids: Awaited<ReturnType<typeof world>>['ids'];
  let acme: number;
  let initech: number;

  beforeAll(async () => {
    ({ database, close } = await engine.open());
    ({ ids, acme, initech } = await database.transaction(world));
  }, 60_000);
  afterAll(() => close());

  const enqueue = (audience: Audience, channels: NotificationContent = content) =>
    database.transaction((tx) => enqueueNotification(tx, { kind: 'test', title: 't', content: channels, audience }, NOW));
  const recipientsOf = (notificationId: number) =>
    database.read(async (r) => {
      const q = query(r as Tx);
      const d = q.t.deliveries;
      const rows = await q.db
        .select({ id: d.recipientId, status: d.status, due: d.nextAttemptAt })
        .from(d)
        .where(eq(d.notificationId, notificationId));
      return rows.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
    });

  it('writes one pending delivery per active recipient of the topic, on the channels the message has, and counts them as the composer does', async () => {
    const topic: Audience = { kind: 'topic', topic: 'incidents' };
    const emailOnly = await enqueue(topic, emailContent());
    const active = [ids.member, ids.subdomain, ids.lookalike, ids.typedOnly, ids.api, ids.web];
    expect(emailOnly.byChannel).toEqual({ email: active.length });
    expect((await recipientsOf(emailOnly.notificationId)).map((d) => d.id)).toEqual(active.sort((a, b) => a - b));
    for (const d of await recipientsOf(emailOnly.notificationId)) expect([d.status, d.due.getTime()]).toEqual(['pending', NOW.getTime()]);

    const every = await enqueue(topic);
    expect(every.byChannel).toEqual({ email: 6, sms: 1 });
    expect(every.deliveries).toBe(7);
    expect(await database.read((r) => countAudience(r, topic, ['email', 'sms', 'slack']))).toEqual(every.byChannel);
    const written = await database.read(async (r) => {
      const q = query(r as Tx);
      return (
        await q.db
          .select({ n: q.t.notifications.recipientCount })
          .from(q.t.notifications)
          .where(eq(q.t.notifications.id, every.notificationId))
      )[0];
    });
    expect(written).toEqual({ n: 7 });
  });

  it('narrows to components, several topics and named recipients, skipping suppressed and pending addresses', async () => {
    const api = await enqueue({ kind: 'topic', topic: 'incidents', components: ['public-api'] }, emailContent());
    // the API follower (the other one is suppressed) and the four who follow every component
    expect((await recipientsOf(api.notificationId)).map((d) => d.id)).toEqual(
      [ids.member, ids.subdomain, ids.lookalike, ids.typedOnly, ids.api].sort((a, b) => a - b),
    );
    const topics = await enqueue({ kind: 'topics', topics: ['incidents', 'subprocessors'] }, emailContent());
    expect(topics.deliveries).toBe(7);
    const named = await enqueue(
      { kind: 'recipients', ids: [ids.pending, ids.webhook, ids.suppressedApi] },
      { ...emailContent(), webhook: { type: 'test', data: {} } },
    );
    expect((await recipientsOf(named.notificationId)).map((d) => d.id)).toEqual([ids.webhook]);
    const confirming = await enqueue({ kind: 'recipients', ids: [ids.pending], includePending: true }, emailContent());
    expect(confirming.deliveries).toBe(1);
  });

  it('targets only what Candor verified: the exact domain and addresses staff placed, never a typed company', async () => {
    const targeted: Audience = { kind: 'topic', topic: 'incidents', organisations: [acme] };
    const sent = await enqueue(targeted);
    expect((await recipientsOf(sent.notificationId)).map((d) => d.id)).toEqual([ids.member, ids.assignedSms].sort((a, b) => a - b));
    expect(await database.read((r) => countAudience(r, targeted, ALL))).toEqual({ email: 1, sms: 1 });
    expect(await database.read((r) => countAudience(r, { ...targeted, organisations: [] }, ALL))).toEqual({});
    expect(await database.read((r) => countAudience(r, { ...targeted, organisations: [initech] }, ALL))).toEqual({});
    expect(await database.read((r) => organisationBreakdown(r, { ...targeted, organisations: [acme, initech] }, ALL))).toEqual([
      {
        organisationId: acme,
        byChannel: { email: 1, sms: 1 },
        bases: [
          { basis: 'domain', domain: 'acmebank.example', byChannel: { email: 1 } },
          { basis: 'assigned', domain: null, byChannel: { email: 1, sms: 1 } },
        ],
      },
      { organisationId: initech, byChannel: {}, bases: [] },
    ]);
  });

  it('writes nothing when the transaction it is part of fails', async () => {
    const count = () =>
      database.read(async (r) => {
        const q = query(r as Tx);
        return [await q.db.$count(q.t.notifications), await q.db.$count(q.t.deliveries)];
      });
    const before = await count();
    await expect(
      database.transaction(async (tx) => {
        await enqueueNotification(tx, { kind: 'test', title: 't', content, audience: { kind: 'topic', topic: 'incidents' } }, NOW);
        throw new Error('the change it announced failed');
      }),
    ).rejects.toThrow('the change it announced failed');
    await expect(
      database.transaction((tx) =>
        enqueueNotification(tx, { kind: 't', title: 't', content: {}, audience: { kind: 'recipients', ids: [] } }, NOW),
      ),
    ).rejects.toThrow(/at least one channel/);
    expect(await count()).toEqual(before);
  });

  it('lifts a suppression back to the status the address had: an unconfirmed one stays unconfirmed', async () => {
    const statusOf = (id: number) =>
      database.read(async (r) => {
        const q = query(r as Tx);
        return (await q.db.select({ status: q.t.recipients.status }).from(q.t.recipients).where(eq(q.t.recipients.id, id)))[0]?.status;
      });
    await database.transaction((tx) => suppressRecipient(tx, ids.pending, 'email bounced', NOW));
    expect(await statusOf(ids.pending)).toBe('suppressed');
    await database.transaction((tx) => unsuppressRecipient(tx, ids.pending));
    expect(await statusOf(ids.pending)).toBe('pending');
    await database.transaction((tx) => suppressRecipient(tx, ids.webhook, 'gone', NOW));
    await database.transaction((tx) => unsuppressRecipient(tx, ids.webhook));
    expect(await statusOf(ids.webhook)).toBe('active');
  });

  it('adds an address once when ten callers add it at the same time, and finds it by its blind index', async () => {
    const made = await Promise.all(
      Array.from({ length: 10 }, () =>
        database.transaction((tx) => ensureRecipient(tx, TEST_KEYS, { channel: 'email', address: ' Racer@Example.com ' }, NOW)),
      ),
    );
    expect(new Set(made.map((r) => r.id)).size).toBe(1);
    const found = await database.read((r) => findRecipient(r, TEST_KEYS, 'email', 'racer@example.com'));
    expect(found?.id).toBe(made[0]?.id);
    expect(found && openRecipient(TEST_KEYS, found).address).toBe('racer@example.com');
  });

  it('fills the domain index of addresses stored without it, once', async () => {
    await database.transaction(async (tx) => {
      const q = query(tx);
      await q.db.update(q.t.recipients).set({ domainHash: null }).where(eq(q.t.recipients.id, ids.subdomain));
    });
    expect(await indexEmailDomains(database, TEST_KEYS)).toBe(1);
    expect(await indexEmailDomains(database, TEST_KEYS)).toBe(0);
  });

  it('tells each active owner, admin and responder and the staff Slack channel once, however often it is told', async () => {
    await database.transaction(async (tx) => {
      const q = query(tx);
      const staff = (email: string, role: 'owner' | 'admin' | 'responder' | 'viewer', status: 'active' | 'invited' | 'disabled') => ({
        email,
        name: email,
        role,
        status,
        createdAt: NOW,
        updatedAt: NOW,
        trustCenterId: q.trustCenter,
      });
      await q.db
        .insert(q.t.staff)
        .values([
          staff('owner@lumenwork.example', 'owner', 'active'),
          staff('oncall@lumenwork.example', 'responder', 'active'),
          staff('viewer@lumenwork.example', 'viewer', 'active'),
          staff('gone@lumenwork.example', 'admin', 'disabled'),
        ]);
    });
    const deps = { keys: TEST_KEYS, staffSlack: { channel: 'C0STAFF', token: 'xoxb-test' } };
    const message = { kind: 'staff-reminder', subject: 'Update due', text: 'An update is due.' };
    const first = await database.transaction((tx) => notifyStaff(tx, deps, message, NOW));
    const second = await database.transaction((tx) => notifyStaff(tx, deps, message, NOW));
    expect(first.byChannel).toEqual({ email: 2, slack: 1 });
    expect((await recipientsOf(second.notificationId)).map((d) => d.id)).toEqual(
      (await recipientsOf(first.notificationId)).map((d) => d.id),
    );
  });

  it('test messages: concurrent tests to one new webhook add it once and show its secret once; a test lifts a suppression', async () => {
    const send = (channel: ChannelName, address: string) =>
      sendTestMessage(database, TEST_KEYS, { allowHosts: [] }, channel, address, 'Lumenwork', new URL('https://trust.example/'), NOW);
    const results = await Promise.all(Array.from({ length: 4 }, () => send('webhook', 'https://hooks.example/test-send')));
    const sent = results.map((r) => (r.ok ? r : null));
    expect(sent.every((r) => r !== null)).toBe(true);
    const recipientIds = new Set(sent.map((r) => r?.recipientId));
    expect(recipientIds.size).toBe(1);
    const shown = sent.filter((r) => r?.webhookSecret);
    expect(shown).toHaveLength(1);
    const stored = await database.read((r) => findRecipient(r, TEST_KEYS, 'webhook', 'https://hooks.example/test-send'));
    if (!stored) throw new Error('the webhook was not added');
    expect(openRecipient(TEST_KEYS, stored).secret).toBe(shown[0]?.webhookSecret);
    for (const r of sent) expect((await recipientsOf(r?.notificationId ?? 0)).map((d) => d.id)).toEqual([stored.id]);
    // Suppressed after a bounce: a test to it is someone checking it works again.
    const again = await send('email', 'api2@x.example');
    expect(again).toMatchObject({ ok: true, recipientId: ids.suppressedApi, webhookSecret: null });
    expect((await database.read((r) => findRecipient(r, TEST_KEYS, 'email', 'api2@x.example')))?.status).toBe('active');
    expect(await send('email', 'not an address')).toEqual({ ok: false, message: 'Enter a valid email address.' });
  });

  it('the reach of a targeted audience is what the outbox counts, per organisation', async () => {
    const audience: Audience = { kind: 'topic', topic: 'incidents', organisations: [acme, initech] };
    const reach = await database.read((r) => audienceReach(r, audience));
    const counts = await database.read((r) => countAudience(r, audience, ALL));
    expect(reach.total).toEqual({ email: counts.email ?? 0, sms: counts.sms ?? 0, slack: 0, webhook: 0, teams: 0, discord: 0 });
    expect(reach.targeted).toBe(true);
    expect(reach.reachesNoOne).toBe(false);
    expect(reach.organisations.map((o) => [o.name, o.byChannel.email + o.byChannel.sms])).toEqual([
      ['Acme Bank', (counts.email ?? 0) + (counts.sms ?? 0)],
      ['Initech', 0],
    ]);
    const initechOnly = await database.read((r) => audienceReach(r, { kind: 'topic', topic: 'incidents', organisations: [initech] }));
    expect(initechOnly.reachesNoOne).toBe(true);
  });
});
