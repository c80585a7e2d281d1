/**
 * Who a targeted audience selects, straight against the core: only what
 * Candor verified (an active email address in exactly one of the
 * organisation's domains, or an address staff placed in it), never the
 * company a subscriber typed; and the domain index behind it.
 */
import { describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { unsuppressRecipient } from '../../src/core/notify/recipients.ts';
import { checkDomain, domainHash, emailDomainHash } from '../../src/core/organisations/domains.ts';
import { assignMembers, createOrganisation, removeDomain, subscriberMemberships } from '../../src/core/organisations/organisations.ts';
import { deleteSubscriber } from '../../src/core/subscriptions/subscribers.ts';
import { emailContent, TEST_KEYS } from '../helpers/notify.ts';
import {
  addRecipient,
  countAudience,
  enqueueNotification,
  indexEmailDomains,
  organisationBreakdown,
  suppressRecipient,
} from '../helpers/outbox-on-connection.ts';

const channels = ['email', 'sms', 'slack', 'webhook'] as const;
const ctx = (db: Db) => ({
  database: databaseOf(db),
  keys: TEST_KEYS,
  now: new Date(),
  actor: { id: 1, label: 'admin@lumenwork.example' },
  ip: null,
  userAgent: null,
});

/** A subscriber following incidents, with one address on the channel, who typed `company`. */
async function person(
  db: Db,
  channel: (typeof channels)[number],
  address: string,
  company: string | null,
  status: 'active' | 'pending' = 'active',
) {
  const { id: subscriberId } = db.$client
    .prepare('INSERT INTO subscribers (organisation, created_at) VALUES (?, ?) RETURNING id')
    .get(company, Date.now()) as { id: number };
  db.$client.prepare(`INSERT INTO subscriber_topics (subscriber_id, topic, component) VALUES (?, 'incidents', '')`).run(subscriberId);
  const r = await addRecipient(db, TEST_KEYS, { channel, address, subscriberId, status }, new Date());
  return { subscriberId, recipientId: r.id };
}

async function world() {
  const db = bindAuditKeys(openDatabase(':memory:'), auditKeyring(TEST_KEYS.secret));
  const made = await createOrganisation(ctx(db), 'Acme Bank', 'acmebank.example');
  if (!made.ok) throw new Error(made.message);
  const people = {
    member: await person(db, 'email', 'Jane@AcmeBank.example', null),
    subdomain: await person(db, 'email', 'mallory@mail.acmebank.example', 'Acme Bank'),
    lookalike: await person(db, 'email', 'mallory@acmebank.example.evil.example', 'Acme Bank'),
    pending: await person(db, 'email', 'eve@acmebank.example', 'Acme Bank', 'pending'),
    typedOnly: await person(db, 'email', 'mallory@freemail.example', 'Acme Bank'),
    typedSms: await person(db, 'sms', '+447911123401', 'acme bank'),
    assignedSms: await person(db, 'sms', '+447911123402', null),
    assignedSlack: await person(db, 'slack', 'https://hooks.slack.com/services/T/B/acme', null),
  };
  for (const p of [people.assignedSms, people.assignedSlack]) {
    const assigned = await assignMembers(ctx(db), {
      subscriberId: p.subscriberId,
      organisationId: made.id,
      recipientId: 'all',
      basis: 'assigned',
    });
    if (!assigned.ok) throw new Error(assigned.message);
  }
  return { db, acme: made.id, people };
}

const audienceOf = (organisations: number[]) => ({ kind: 'topic' as const, topic: 'incidents', organisations });

describe('a targeted audience', () => {
  it('selects active addresses in exactly the domain and addresses staff placed, never a typed company', async () => {
    const { db, acme, people } = await world();
    const content = { ...emailContent(), sms: { body: 'x', link: 'https://t.example/i/1' }, slack: { text: 'x', blocks: [] } };
    const sent = await enqueueNotification(db, { kind: 'test', title: 't', content, audience: audienceOf([acme]) }, new Date());
    const reached = (
      db.$client
        .prepare('SELECT recipient_id FROM deliveries WHERE notification_id = ? ORDER BY recipient_id')
        .all(sent.notificationId) as { recipient_id: number }[]
    ).map((r) => r.recipient_id);
    expect(reached).toEqual([people.member.recipientId, people.assignedSms.recipientId, people.assignedSlack.recipientId]);
    expect(await countAudience(db, audienceOf([acme]), channels)).toEqual({ email: 1, sms: 1, slack: 1 });
  });

  it('reaches no one when addressed to no organisation, or to one without members', async () => {
    const { db } = await world();
    const empty = await createOrganisation(ctx(db), 'Initech', 'initech.example');
    if (!empty.ok) throw new Error(empty.message);
    expect(await countAudience(db, audienceOf([]), channels)).toEqual({});
    expect(await countAudience(db, audienceOf([empty.id]), channels)).toEqual({});
  });

  it('breaks the figures down per organisation, channel and basis, counting an address on two bases once', async () => {
    const { db, acme, people } = await world();
    const both = await assignMembers(ctx(db), {
      subscriberId: people.member.subscriberId,
      organisationId: acme,
      recipientId: 'all',
      basis: 'assigned',
    });
    expect(both.ok).toBe(true);
    expect(await organisationBreakdown(db, audienceOf([acme]), channels)).toEqual([
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
    const { db, acme, people } = await world();
    await suppressRecipient(db, people.assignedSlack.recipientId, 'revoked', new Date());
    expect((await removeDomain(ctx(db), acme, 'acmebank.example')).ok).toBe(true);
    expect(await countAudience(db, audienceOf([acme]), channels)).toEqual({ sms: 1 });
  });

  it('an unconfirmed address that bounced stays unconfirmed when its suppression is lifted: never a member by domain', async () => {
    const { db, acme, people } = await world();
    const before = await countAudience(db, audienceOf([acme]), channels);
    await suppressRecipient(db, people.pending.recipientId, 'email bounced', new Date());
    await databaseOf(db).transaction((tx) => unsuppressRecipient(tx, people.pending.recipientId));
    expect(db.$client.prepare('SELECT status FROM recipients WHERE id = ?').get(people.pending.recipientId)).toEqual({ status: 'pending' });
    expect(await countAudience(db, audienceOf([acme]), channels)).toEqual(before);
    // a confirmed one goes back to active
    await suppressRecipient(db, people.member.recipientId, 'email bounced', new Date());
    await databaseOf(db).transaction((tx) => unsuppressRecipient(tx, people.member.recipientId));
    expect(db.$client.prepare('SELECT status FROM recipients WHERE id = ?').get(people.member.recipientId)).toEqual({ status: 'active' });
  });

  it('loses a member with their erasure', async () => {
    const { db, people } = await world();
    expect(await databaseOf(db).read((r) => subscriberMemberships(r, people.assignedSms.subscriberId))).toHaveLength(1);
    await deleteSubscriber(databaseOf(db), people.assignedSms.subscriberId);
    expect(
      db.$client.prepare('SELECT count(*) AS n FROM organisation_members WHERE recipient_id = ?').get(people.assignedSms.recipientId),
    ).toEqual({
      n: 0,
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

  it('are matched through a blind index of the address’s domain, filled for rows that lack it', async () => {
    const db = bindAuditKeys(openDatabase(':memory:'), auditKeyring(TEST_KEYS.secret));
    const r = await addRecipient(db, TEST_KEYS, { channel: 'email', address: 'jane@acmebank.example' }, new Date());
    expect(r.domainHash).toBe(domainHash(TEST_KEYS.secret, 'acmebank.example'));
    expect(r.domainHash).not.toContain('acmebank');
    expect(emailDomainHash(TEST_KEYS.secret, 'JANE@ACMEBANK.EXAMPLE')).toBe(r.domainHash);
    expect((await addRecipient(db, TEST_KEYS, { channel: 'sms', address: '+447911123403' }, new Date())).domainHash).toBeNull();
    // as rows stored before the index existed
    db.$client.prepare('UPDATE recipients SET domain_hash = NULL').run();
    expect(await indexEmailDomains(db, TEST_KEYS)).toBe(1);
    expect(await indexEmailDomains(db, TEST_KEYS)).toBe(0);
    expect(db.$client.prepare('SELECT domain_hash FROM recipients WHERE id = ?').get(r.id)).toEqual({ domain_hash: r.domainHash });
  });
});
