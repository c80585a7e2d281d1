/**
 * A customer's record of gated documents (request, grant, NDA acceptance, views) outlives their
 * subscription to status updates at the same address: forgetting an unconfirmed sign-up, unsubscribing
 * and erasing a subscriber detach the address from the subscriber and keep the access rows, which would
 * otherwise go with the address by foreign key. Someone who signs a victim's address up and never
 * confirms cannot wipe the victim's access a week later; a reader cannot erase the trail of their
 * downloads by unsubscribing. On each engine (tests/helpers/postgres.ts enginesUnderTest).
 */
import { expect, it } from 'vitest';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { findRecipient } from '../../src/core/notify/recipients.ts';
import type { Choices } from '../../src/core/subscriptions/context.ts';
import { deleteSubscriber, purgeUnconfirmed, signUp } from '../../src/core/subscriptions/subscribers.ts';
import { acceptanceOn, grantOn, ndaTextOn, requestOn, viewOn } from '../helpers/access-fixtures.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const T0 = new Date('2026-11-30T09:00:00Z');
const days = (n: number) => new Date(T0.getTime() + n * 86_400_000);
const choices: Choices = { topics: ['incidents'], components: [], organisation: null };

async function accessRows(database: Database): Promise<Record<string, number>> {
  return database.read(async (r) => {
    const q = reading(r);
    const n = async (t: 'accessRequests' | 'accessGrants' | 'ndaAcceptances' | 'documentViews' | 'subscribers') =>
      Number(await q.db.$count(q.t[t], undefined));
    return {
      requests: await n('accessRequests'),
      grants: await n('accessGrants'),
      acceptances: await n('ndaAcceptances'),
      views: await n('documentViews'),
      subscribers: await n('subscribers'),
    };
  });
}

/** A customer with a full record at `email`: request, grant, acceptance, a download. */
async function customerWithRecord(database: Database, recipientId: number): Promise<void> {
  const requestId = await requestOn(database, {
    recipientId,
    name: 'Carol',
    company: 'Acme',
    documents: ['soc-2'],
    status: 'approved',
    createdAt: T0,
  });
  const grantId = await grantOn(database, {
    recipientId,
    requestId,
    name: 'Carol',
    company: 'Acme',
    documents: ['soc-2'],
    createdAt: T0,
    expiresAt: days(90),
  });
  const ndaHash = await ndaTextOn(database, 'Mutual NDA', `NDA text ${recipientId}`);
  await acceptanceOn(database, { ndaHash, recipientId, grantId, fullName: 'Carol', company: 'Acme', acceptedAt: T0 });
  await viewOn(database, { grantId, recipientId, document: 'soc-2', kind: 'download', at: T0 });
}

async function scenario(database: Database): Promise<void> {
  // Someone signs carol@ up and never confirms; Carol then asks for documents and reads one.
  const carol = (await signUp(database, TEST_KEYS, { channel: 'email', address: 'carol@acme.example', status: 'pending' }, choices, T0))
    .recipient.id;
  await customerWithRecord(database, carol);
  // An unconfirmed sign-up of someone who is no customer, as old.
  await signUp(database, TEST_KEYS, { channel: 'email', address: 'stranger@elsewhere.example', status: 'pending' }, choices, T0);
  const before = await accessRows(database);
  expect(before).toEqual({ requests: 1, grants: 1, acceptances: 1, views: 1, subscribers: 2 });

  // A week later the unconfirmed sign-ups are forgotten: both subscriptions go, Carol's record stays.
  expect(await purgeUnconfirmed(database, days(8))).toBe(2);
  expect(await accessRows(database)).toEqual({ ...before, subscribers: 0 });
  const kept = await database.read((r) => findRecipient(r, TEST_KEYS, 'email', 'carol@acme.example'));
  expect(kept?.id).toBe(carol);
  expect(kept?.subscriberId).toBeNull();
  expect(await database.read((r) => findRecipient(r, TEST_KEYS, 'email', 'stranger@elsewhere.example'))).toBeUndefined();
  // a later purge finds nothing more to do
  expect(await purgeUnconfirmed(database, days(30))).toBe(0);

  // A confirmed subscriber who is also a customer erases their subscription: the same.
  const daveSignUp = await signUp(database, TEST_KEYS, { channel: 'email', address: 'dave@acme.example', status: 'active' }, choices, T0);
  const daveAddress = daveSignUp.recipient.id;
  const dave = daveSignUp.recipient.subscriberId ?? 0;
  await customerWithRecord(database, daveAddress);
  expect(await deleteSubscriber(database, dave, 'erased', new Date())).toEqual({ channels: 1 });
  expect(await accessRows(database)).toEqual({ requests: 2, grants: 2, acceptances: 2, views: 2, subscribers: 0 });
  expect((await database.read((r) => findRecipient(r, TEST_KEYS, 'email', 'dave@acme.example')))?.subscriberId).toBeNull();
}

it.each(enginesUnderTest())('a customer’s access record outlives their subscription, on $name', async (engine) => {
  const { database, close } = await engine.open();
  try {
    await scenario(database);
  } finally {
    await close();
  }
});
