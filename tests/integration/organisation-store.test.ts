import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database, Reader, Tx } from '../../db/engine/types.ts';
import { domainHash, emailDomainHash } from '../../src/core/organisations/domains.ts';
import {
  activeMemberCounts,
  allDomains,
  deleteDomain,
  deleteMembership,
  deleteOrganisationRow,
  domainDetails,
  domainOwner,
  domainsOf,
  insertDomain,
  insertMember,
  insertOrganisation,
  memberRows,
  membershipById,
  namesOf,
  openIncidentsFor,
  organisationDetail,
  organisationRows,
  recipientsOf,
  renameOrganisationRow,
  staffMemberCount,
  subscriberRow,
} from '../../src/stores/organisations.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const T0 = new Date('2026-11-30T09:15:00.123Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
const stamp = (minutes: number) => ({ at: at(minutes), by: 7 });

/** A subscriber with these addresses (stored as typed: the store never opens them). */
async function subscriber(
  tx: Tx,
  company: string | null,
  addresses: { channel: 'email' | 'sms'; address: string; status: 'active' | 'pending' }[],
) {
  const q = query(tx);
  const [made] = await q.db
    .insert(q.t.subscribers)
    .values({ organisation: company, createdAt: T0, trustCenterId: q.trustCenter })
    .returning();
  if (!made) throw new Error('no subscriber');
  const ids: number[] = [];
  for (const a of addresses) {
    const [r] = await q.db
      .insert(q.t.recipients)
      .values({
        subscriberId: made.id,
        channel: a.channel,
        address: a.address,
        addressHash: `hash:${a.address}`,
        domainHash: a.channel === 'email' ? emailDomainHash(TEST_KEYS.secret, a.address) : null,
        status: a.status,
        createdAt: T0,
        trustCenterId: q.trustCenter,
      })
      .returning({ id: q.t.recipients.id });
    if (!r) throw new Error('no recipient');
    ids.push(r.id);
  }
  return { id: made.id, recipients: ids };
}

/** Everything a store user can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const read = <T>(fn: (r: Reader) => Promise<T>) => database.read(fn);

  const made = await database.transaction(async (tx) => {
    const jane = await subscriber(tx, null, [
      { channel: 'email', address: 'jane@acmebank.example', status: 'active' },
      { channel: 'email', address: 'eve@acmebank.example', status: 'pending' },
    ]);
    const mallory = await subscriber(tx, 'Acme Bank', [
      { channel: 'email', address: 'mallory@mail.acmebank.example', status: 'active' },
      { channel: 'sms', address: '+447911123402', status: 'active' },
    ]);
    const acme = await insertOrganisation(tx, 'acme Bank', stamp(0));
    const globex = await insertOrganisation(tx, 'Globex', stamp(1));
    const zeta = await insertOrganisation(tx, 'Zeta', stamp(1));
    for (const [id, domain] of [
      [acme, 'acmebank.example'],
      [acme, 'acme.example'],
      [globex, 'globex.example'],
    ] as const)
      await insertDomain(tx, id, domain, domainHash(TEST_KEYS.secret, domain), stamp(2));
    return { jane, mallory, acme, globex, zeta };
  });
  seen.made = made;

  seen.owners = await read(async (r) => [await domainOwner(r, 'acmebank.example'), await domainOwner(r, 'mail.acmebank.example')]);
  seen.assigned = await database.transaction(async (tx) => {
    const [sms, mail] = await recipientsOf(tx, made.mallory.id).then((rs) => [rs[1], rs[0]]);
    if (!sms || !mail) throw new Error('no recipients');
    return [
      await insertMember(tx, { organisationId: made.acme, recipientId: sms.id, basis: 'claim' }, stamp(3)),
      await insertMember(tx, { organisationId: made.acme, recipientId: sms.id, basis: 'assigned' }, stamp(4)),
      await insertMember(tx, { organisationId: made.globex, recipientId: mail.id, basis: 'assigned' }, stamp(4)),
      await insertMember(tx, { organisationId: made.acme, recipientId: made.jane.recipients[0] ?? 0, basis: 'assigned' }, stamp(5)),
    ];
  });
  // An open incident addressed to Acme, a resolved one to Globex.
  await database.transaction(async (tx) => {
    const q = query(tx);
    const incident = {
      kind: 'breach',
      severity: 'major',
      public: false,
      startedAt: T0,
      createdAt: T0,
      trustCenterId: q.trustCenter,
    } as const;
    await q.db.insert(q.t.incidents).values([
      { ...incident, title: 'Open', status: 'investigating', audienceOrganisationIds: [made.zeta, made.acme] },
      { ...incident, title: 'Done', status: 'resolved', audienceOrganisationIds: [made.globex] },
      { ...incident, title: 'Everyone', status: 'investigating', audienceOrganisationIds: null },
    ]);
  });

  const snapshot = () =>
    read(async (r) => ({
      rows: await organisationRows(r),
      domains: Object.fromEntries(await allDomains(r)),
      counts: Object.fromEntries(await activeMemberCounts(r)),
      ofJane: await memberRows(r, { subscriberId: made.jane.id }),
      ofMallory: await memberRows(r, { subscriberId: made.mallory.id }),
      ofAcme: await memberRows(r, { organisationId: made.acme }),
      detail: await organisationDetail(r, made.acme),
      domainDetails: await domainDetails(r, made.acme),
      names: Object.fromEntries(await namesOf(r, [made.acme, made.zeta, 999])),
      staffMembers: await staffMemberCount(r, made.acme),
      openFor: [await openIncidentsFor(r, made.acme), await openIncidentsFor(r, made.globex)],
      subscriber: await subscriberRow(r, made.mallory.id),
    }));
  seen.before = await snapshot();

  seen.removed = await database.transaction(async (tx) => {
    const membership = (await memberRows(tx, { subscriberId: made.jane.id })).find((m) => m.membershipId !== null);
    const header = membership?.membershipId ? await membershipById(tx, membership.membershipId) : undefined;
    return {
      header,
      membership: membership?.membershipId ? await deleteMembership(tx, membership.membershipId) : -1,
      again: membership?.membershipId ? await deleteMembership(tx, membership.membershipId) : -1,
      domain: await deleteDomain(tx, made.acme, 'acme.example'),
      missingDomain: await deleteDomain(tx, made.acme, 'acme.example'),
      renamed: await renameOrganisationRow(tx, made.globex, 'Globex Corp', stamp(9)),
      deleted: await deleteOrganisationRow(tx, made.zeta),
    };
  });
  seen.after = await snapshot();
  seen.acmeDomains = await read((r) => domainsOf(r, made.acme));
  // A rollback after an await undoes the organisation.
  await expect(
    database.transaction(async (tx) => {
      await insertOrganisation(tx, 'Rolled back', stamp(10));
      throw new Error('undo');
    }),
  ).rejects.toThrow('undo');
  seen.afterRollback = (await read((r) => organisationRows(r))).map((o) => o.name);

  // Another trust center sees none of it, and changes none of it.
  const other = { trustCenter: 2 };
  seen.otherTrustCenter = {
    read: await database.read(
      async (r) => ({
        rows: await organisationRows(r),
        owner: await domainOwner(r, 'acmebank.example'),
        domains: (await allDomains(r)).size,
        counts: (await activeMemberCounts(r)).size,
        members: await memberRows(r, { organisationId: made.acme }),
        names: (await namesOf(r, [made.acme])).size,
        detail: await organisationDetail(r, made.acme),
        subscriber: await subscriberRow(r, made.mallory.id),
      }),
      other,
    ),
    changed: await database.transaction(
      async (tx) => [
        await renameOrganisationRow(tx, made.acme, 'Hijacked', stamp(11)),
        await deleteDomain(tx, made.acme, 'acmebank.example'),
        await deleteOrganisationRow(tx, made.acme),
      ],
      other,
    ),
  };
  seen.stillThere = await read((r) => organisationRows(r));
  return seen;
}

const expectedMade = { jane: { id: 1, recipients: [1, 2] }, mallory: { id: 2, recipients: [3, 4] }, acme: 1, globex: 2, zeta: 3 };
const janeByDomain = {
  organisationId: 1,
  organisation: 'acme Bank',
  recipientId: 1,
  subscriberId: 1,
  channel: 'email',
  status: 'active',
  address: 'jane@acmebank.example',
  basis: 'domain',
  domain: 'acmebank.example',
  membershipId: null,
  since: null,
  by: null,
};

const expected = {
  made: expectedMade,
  owners: [{ id: 1, name: 'acme Bank' }, undefined],
  // the same recipient twice in one organisation is refused, whatever the basis
  assigned: [true, false, true, true],
  before: {
    rows: [
      { id: 1, name: 'acme Bank' },
      { id: 2, name: 'Globex' },
      { id: 3, name: 'Zeta' },
    ],
    domains: { 1: ['acme.example', 'acmebank.example'], 2: ['globex.example'] },
    // the pending address and the subdomain are never members by domain
    counts: { 1: { domain: 1, staff: 2 }, 2: { domain: 0, staff: 1 } },
    // ordered by organisation, subscriber, address, then basis (assigned, claim, domain)
    ofJane: [expect.objectContaining({ recipientId: 1, basis: 'assigned', membershipId: 4, since: at(5), by: null }), janeByDomain],
    ofMallory: [
      expect.objectContaining({ organisationId: 1, recipientId: 4, basis: 'claim', membershipId: 1, since: at(3) }),
      expect.objectContaining({ organisationId: 2, recipientId: 3, basis: 'assigned', channel: 'email' }),
    ],
    ofAcme: [
      expect.objectContaining({ recipientId: 1, basis: 'assigned' }),
      janeByDomain,
      expect.objectContaining({ recipientId: 4, basis: 'claim', channel: 'sms' }),
    ],
    detail: { id: 1, name: 'acme Bank', createdAt: at(0), createdBy: null, updatedAt: at(0), updatedBy: null },
    domainDetails: [
      { domain: 'acme.example', addedAt: at(2), addedBy: null },
      { domain: 'acmebank.example', addedAt: at(2), addedBy: null },
    ],
    names: { 1: 'acme Bank', 3: 'Zeta' },
    staffMembers: 2,
    openFor: [[{ id: 1, title: 'Open' }], []],
    subscriber: { id: 2, organisation: 'Acme Bank' },
  },
  removed: {
    header: { organisationId: 1, organisation: 'acme Bank', recipientId: 1, basis: 'assigned', channel: 'email', subscriberId: 1 },
    membership: 1,
    again: 0,
    domain: 1,
    missingDomain: 0,
    renamed: 1,
    deleted: 1,
  },
  after: {
    rows: [
      { id: 1, name: 'acme Bank' },
      { id: 2, name: 'Globex Corp' },
    ],
    domains: { 1: ['acmebank.example'], 2: ['globex.example'] },
    counts: { 1: { domain: 1, staff: 1 }, 2: { domain: 0, staff: 1 } },
    ofJane: [janeByDomain],
    names: { 1: 'acme Bank' },
    staffMembers: 1,
  },
  acmeDomains: ['acmebank.example'],
  afterRollback: ['acme Bank', 'Globex Corp'],
  otherTrustCenter: {
    read: { rows: [], owner: undefined, domains: 0, counts: 0, members: [], names: 0, detail: undefined, subscriber: undefined },
    changed: [0, 0, 0],
  },
  stillThere: [
    { id: 1, name: 'acme Bank' },
    { id: 2, name: 'Globex Corp' },
  ],
};

describe('customer organisations store on SQLite', () => {
  let engine: SqliteEngine;
  beforeAll(() => {
    engine = tempSqliteEngine();
  });
  afterAll(async () => {
    await engine.close();
  });

  it('create, add domains, place members, list and remove', async () => {
    const seen = await sequence(engine);
    expect(seen).toMatchObject(expected);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('customer organisations store on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('gives exactly what SQLite gives, as the application role under row-level security', async () => {
    const onPostgres = await sequence(engines.postgres);
    expect(onPostgres).toMatchObject(expected);
    expect(onPostgres).toEqual(await sequence(engines.sqlite));
  });
});
