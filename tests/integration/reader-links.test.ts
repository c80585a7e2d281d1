/**
 * Customers' one-time links (src/core/access/reader-links.ts) on both engines: a link checks without being
 * used, is consumed once, and a new link replaces only what it should. A sign-in link retires the
 * address's earlier sign-in links; a verify link retires only its own request's earlier links, so a
 * stranger's request for the same address never voids the link of the request its owner made.
 */
import { expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { checkReaderLink, consumeReaderLink, issueReaderLink } from '../../src/core/access/reader-links.ts';
import { customerOn, requestOn } from '../helpers/access-fixtures.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const T0 = new Date('2026-12-01T10:00:00Z');
const later = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

async function scenario(database: Database): Promise<void> {
  const owner = await customerOn(database, 'dave@acme.example');
  const request = (status: 'unverified') =>
    requestOn(database, { recipientId: owner, name: 'Dave', company: 'Acme', documents: ['soc-2'], status, createdAt: T0 });
  const own = await request('unverified');
  const strangers = await request('unverified');
  const issue = (purpose: 'verify' | 'sign_in', requestId: number | null, at: Date) =>
    database.transaction((tx) => issueReaderLink(tx, owner, purpose, requestId, at));
  const check = (token: string, purpose: 'verify' | 'sign_in', at: Date) => database.read((r) => checkReaderLink(r, token, purpose, at));

  const ownLink = await issue('verify', own, T0);
  const strangersLink = await issue('verify', strangers, later(1));
  expect((await check(ownLink, 'verify', later(2))).ok).toBe(true);
  expect((await check(strangersLink, 'verify', later(2))).ok).toBe(true);
  // a new link for the same request replaces its earlier one
  const ownAgain = await issue('verify', own, later(3));
  expect(await check(ownLink, 'verify', later(4))).toEqual({ ok: false, reason: 'used' });
  expect((await check(ownAgain, 'verify', later(4))).ok).toBe(true);
  // a verify link is not a sign-in link
  expect(await check(ownAgain, 'sign_in', later(4))).toEqual({ ok: false, reason: 'invalid' });

  // sign-in links: the newest one works, the earlier ones are retired
  const first = await issue('sign_in', null, later(5));
  const second = await issue('sign_in', null, later(6));
  expect(await check(first, 'sign_in', later(7))).toEqual({ ok: false, reason: 'used' });
  expect((await check(second, 'sign_in', later(7))).ok).toBe(true);
  // consumed once; after 30 minutes expired
  const third = await issue('sign_in', null, later(8));
  expect((await database.transaction((tx) => consumeReaderLink(tx, third, 'sign_in', later(9)))).ok).toBe(true);
  expect(await database.transaction((tx) => consumeReaderLink(tx, third, 'sign_in', later(9)))).toEqual({ ok: false, reason: 'used' });
  const fourth = await issue('sign_in', null, later(10));
  expect(await check(fourth, 'sign_in', later(40))).toEqual({ ok: false, reason: 'expired' });
  // the verify links of both requests are untouched by sign-in links
  expect((await check(strangersLink, 'verify', later(11))).ok).toBe(true);
}

it.each(enginesUnderTest())('customers’ one-time links, on $name', async (engine) => {
  const { database, close } = await engine.open();
  try {
    await scenario(database);
  } finally {
    await close();
  }
});
