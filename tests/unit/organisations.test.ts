/**
 * Who a targeted audience selects, straight against the core: only what
 * Candor verified (an active email address in exactly one of the
 * organisation's domains, or an address staff placed in it), never the
 * company a subscriber typed; and the domain index behind it. On each engine
 * (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, as the
 * application role under row-level security): one database per engine,
 * emptied of organisations, subscribers and notifications before each case,
 * seeded and inspected through the product's code and the builder.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { Database, Reader, Tx } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { type Audience, countAudience, enqueueNotification, organisationBreakdown } from '../../src/core/notify/outbox.ts';
import { addRecipient, indexEmailDomains, suppressRecipient, unsuppressRecipient } from '../../src/core/notify/recipients.ts';
import { checkDomain, domainHash, emailDomainHash } from '../../src/core/organisations/domains.ts';
import { assignMembers, createOrganisation, removeDomain, subscriberMemberships } from '../../src/core/organisations/organisations.ts';
import { deleteSubscriber } from '../../src/core/subscriptions/subscribers.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';

const channels = ['email', 'sms', 'slack', 'webhook'] as const;

/** One transaction of either engine, with the product's code in it. */
function inTransaction<T>(database: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.transaction((tx) => fn(tx)) : database.transaction((tx) => fn(tx));
}

/** One read of either engine. */
function inRead<T>(database: Database, fn: (r: Reader) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.read((r) => fn(r)) : database.read((r) => fn(r));
}

const audienceOf = (organisations: number[]) => ({ kind: 'topic' as const, topic: 'incidents', organisations });

describe.each(enginesUnderTest())('on $name', (engine) => {
  let opened: OpenedEngine;
  let database: Database;
  beforeAll(async () => {
    opened = await engine.open();
    database = bindAuditKeys(opened.database, auditKeyring(TEST_KEYS.secret));
  });
  afterAll(() => opened?.close());
  // Each case builds its world from nobody: what the previous one wrote is deleted.
  beforeEach(async () => {
    await writeRows(database, async (q) => {
      await q.db.delete(q.t.deliveries);
      await q.db.delete(q.t.notifications);
      await q.db.delete(q.t.organisationMembers);
      await q.db.delete(q.t.organisationDomains);
      await q.db.delete(q.t.customerOrganisations);
      await q.db.delete(q.t.recipients);
      await q.db.delete(q.t.subscriberTopics);
      await q.db.delete(q.t.subscribers);
    });
  });

  const ctx = () => ({
    database,
    keys: TEST_KEYS,
    now: new Date(),
    actor: { id: 1, label: 'admin@lumenwork.example' },
    ip: null,
    userAgent: null,
  });
  const count = (audience: Audience) => inRead(database, (r) => countAudience(r, audience, channels));
  const suppress = (recipientId: number, reason: string) =>
    inTransaction(database, (tx) => suppressRecipient(tx, recipientId, reason, new Date()));
  const statusOf = async (recipientId: number) =>
    (
      await readRows(database, (q) =>
        q.db.select({ status: q.t.recipients.status }).from(q.t.recipients).where(eq(q.t.recipients.id, recipientId)),
      )
    )[0];

  /** A subscriber following incidents, with one address on the channel, who typed `company`. */
  function person(channel: (typeof channels)[number], address: string, company: string | null, status: 'active' | 'pending' = 'active') {
    return inTransaction(database, async (tx) => {
      const q = query(tx);
      const [s] = await q.db
        .insert(q.t.subscribers)
        .values({ organisation: company, createdAt: new Date(), trustCenterId: q.trustCenter })
        .returning({ id: q.t.subscribers.id });
      if (!s) throw new Error('no subscriber');
      await q.db
        .insert(q.t.subscriberTopics)
        .values({ subscriberId: s.id, topic: 'incidents', component: '', trustCenterId: q.trustCenter });
      const r = await addRecipient(tx, TEST_KEYS, { channel, address, subscriberId: s.id, status }, new Date());
      return { subscriberId: s.id, recipientId: r.id };
    });
  }

  async function world() {
    const made = await createOrganisation(ctx(), 'Acme Bank', 'acmebank.example');
    if (!made.ok) throw new Error(made.message);
    const people = {
      member: await person('email', 'Jane@AcmeBank.example', null),
      subdomain: await person('email', 'mallory@mail.acmebank.example', 'Acme Bank'),
      lookalike: await person('email', 'mallory@acmebank.example.evil.example', 'Acme Bank'),
      pending: await person('email', 'eve@acmebank.example', 'Acme Bank', 'pending'),
      typedOnly: await person('email', 'mallory@freemail.example', 'Acme Bank'),
      typedSms: await person('sms', '+447911123401', 'acme bank'),
      assignedSms: await person('sms', '+447911123402', null),
      assignedSlack: await person('slack', 'https://hooks.slack.com/services/T/B/acme', null),
    };
    for (const p of [people.assignedSms, people.assignedSlack]) {
      const assigned = await assignMembers(ctx(), {
        subscriberId: p.subscriberId,
        organisationId: made.id,
        recipientId: 'all',
        basis: 'assigned',
      });
      if (!assigned.ok) throw new Error(assigned.message);
    }
    return { acme: made.id, people };
  }

  describe('a targeted audience', () => {
    it('selects active addresses in exactly the domain and addresses staff placed, never a typed company', async () => {
      const { acme, people } = await world();
      const content = { ...emailContent(), sms: { body: 'x', link: 'https://t.example/i/1' }, slack: { text: 'x', blocks: [] } };
      const sent = await inTransaction(database, (tx) =>
        enqueueNotification(tx, { kind: 'test', title: 't', content, audience: audienceOf([acme]) }, new Date()),
      );
      const reached = (
        await readRows(database, (q) => {
          const d = q.t.deliveries;
          return q.db
            .select({ recipientId: d.recipientId })
            .from(d)
            .where(eq(d.notificationId, sent.notificationId))
            .orderBy(d.recipientId);
        })
      ).map((r) => r.recipientId);
      expect(reached).toEqual([people.member.recipientId, people.assignedSms.recipientId, people.assignedSlack.recipientId]);
      expect(await count(audienceOf([acme]))).toEqual({ email: 1, sms: 1, slack: 1 });
    });

    it('reaches no one when addressed to no organisation, or to one without members', async () => {
      await world();
      const empty = await createOrganisation(ctx(), 'Initech', 'initech.example');
      if (!empty.ok) throw new Error(empty.message);
      expect(await count(audienceOf([]))).toEqual({});
      expect(await count(audienceOf([empty.id]))).toEqual({});
    });

    it('breaks the figures down per organisation, channel and basis, counting an address on two bases once', async () => {
      const { acme, people } = await world();
      const both = await assignMembers(ctx(), {
        subscriberId: people.member.subscriberId,
        organisationId: acme,
        recipientId: 'all',
        basis: 'assigned',
      });
      expect(both.ok).toBe(true);
      expect(await inRead(database, (r) => organisationBreakdown(r, audienceOf([acme]), channels))).toEqual([
        {
          organisationId: acme,
          byChannel: { email: 1, sms: 1, slack: 1 },
          bases: [
            { basis: 'domain', domain: 'acmebank.example', byChannel: { email: 1 } },
            { basis: 'assigned', domain: null, byChannel: { email: 1, sms: 1, slack: 1 } },
          ],
        },
      ]);
    });

    it('stops at once when the domain goes, and skips suppressed members', async () => {
      const { acme, people } = await world();
      await suppress(people.assignedSlack.recipientId, 'revoked');
      expect((await removeDomain(ctx(), acme, 'acmebank.example')).ok).toBe(true);
      expect(await count(audienceOf([acme]))).toEqual({ sms: 1 });
    });

    it('an unconfirmed address that bounced stays unconfirmed when its suppression is lifted: never a member by domain', async () => {
      const { acme, people } = await world();
      const before = await count(audienceOf([acme]));
      await suppress(people.pending.recipientId, 'email bounced');
      await inTransaction(database, (tx) => unsuppressRecipient(tx, people.pending.recipientId));
      expect(await statusOf(people.pending.recipientId)).toEqual({ status: 'pending' });
      expect(await count(audienceOf([acme]))).toEqual(before);
      // a confirmed one goes back to active
      await suppress(people.member.recipientId, 'email bounced');
      await inTransaction(database, (tx) => unsuppressRecipient(tx, people.member.recipientId));
      expect(await statusOf(people.member.recipientId)).toEqual({ status: 'active' });
    });

    it('loses a member with their erasure', async () => {
      const { people } = await world();
      expect(await inRead(database, (r) => subscriberMemberships(r, people.assignedSms.subscriberId))).toHaveLength(1);
      await deleteSubscriber(database, people.assignedSms.subscriberId, 'erased', new Date());
      const members = await readRows(database, (q) =>
        q.db.$count(q.t.organisationMembers, eq(q.t.organisationMembers.recipientId, people.assignedSms.recipientId)),
      );
      expect(members).toBe(0);
    });
  });

  describe('organisation domains', () => {
    it('are matched through a blind index of the address’s domain, filled for rows that lack it', async () => {
      const r = await inTransaction(database, (tx) =>
        addRecipient(tx, TEST_KEYS, { channel: 'email', address: 'jane@acmebank.example' }, new Date()),
      );
      expect(r.domainHash).toBe(domainHash(TEST_KEYS.secret, 'acmebank.example'));
      expect(r.domainHash).not.toContain('acmebank');
      expect(emailDomainHash(TEST_KEYS.secret, 'JANE@ACMEBANK.EXAMPLE')).toBe(r.domainHash);
      const sms = await inTransaction(database, (tx) =>
        addRecipient(tx, TEST_KEYS, { channel: 'sms', address: '+447911123403' }, new Date()),
      );
      expect(sms.domainHash).toBeNull();
      // as rows stored before the index existed
      await writeRows(database, (q) => q.db.update(q.t.recipients).set({ domainHash: null }));
      expect(await indexEmailDomains(database, TEST_KEYS)).toBe(1);
      expect(await indexEmailDomains(database, TEST_KEYS)).toBe(0);
      const stored = await readRows(database, (q) =>
        q.db.select({ domain_hash: q.t.recipients.domainHash }).from(q.t.recipients).where(eq(q.t.recipients.id, r.id)),
      );
      expect(stored[0]).toEqual({ domain_hash: r.domainHash });
    });
  });
});

describe('organisation domains', () => {
  it('are exact host names; addresses, wildcards, single labels, IP addresses and public providers are refused with a reason', () => {
    expect(checkDomain(' AcmeBank.Example. ')).toEqual({ ok: true, domain: 'acmebank.example' });
    expect(checkDomain('@acmebank.example')).toEqual({ ok: true, domain: 'acmebank.example' });
    expect(checkDomain('bücher.example')).toEqual({ ok: true, domain: 'xn--bcher-kva.example' });
    const refused = (raw: string) => {
      const r = checkDomain(raw);
      return r.ok ? 'accepted' : r.message;
    };
    expect(refused('jane@acmebank.example')).toMatch(/is an address: give the domain only/);
    expect(refused('*.acmebank.example')).toMatch(/is not a domain/);
    expect(refused('localhost')).toMatch(/is not a domain/);
    expect(refused('10.0.0.1')).toMatch(/is not a domain/);
    expect(refused('-bad-.example')).toMatch(/is not a domain/);
    expect(refused('')).toMatch(/Enter a domain/);
    for (const provider of ['gmail.com', 'Outlook.com', 'hotmail.co.uk', 'yahoo.fr', 'proton.me'])
      expect(refused(provider), provider).toMatch(/public email provider/);
    // a company's own subdomain named like a provider is its own
    expect(checkDomain('outlook.acmebank.example').ok).toBe(true);
  });
});
