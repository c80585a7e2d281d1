/**
 * What a browser shows when a route refuses: the site's own page (its
 * layout, its stylesheet, a sentence saying what is wrong), never an empty
 * body or a line of plain text that the browser dresses as its own error.
 * Machines keep their plain or JSON answers: a calendar app, a feed reader,
 * a mail provider's one-click unsubscribe, a script exporting the audit log.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * when CANDOR_TEST_POSTGRES_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { recipientToken } from '../../src/core/notify/links.ts';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { expectNoStackTrace, expectSecurityHeaders, type HttpAnswer, pageText, send } from '../helpers/security.ts';
import type { RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

/** What Chromium sends when a person follows a link. */
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const FORGED = 'a1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** The site's public page: its layout and stylesheet around a heading and the message. */
function expectStyled(answer: HttpAnswer, status: number, says: RegExp | string, where: string): void {
  expect(answer.status, where).toBe(status);
  expect(answer.headers.get('content-type'), where).toMatch(/^text\/html/);
  expect(answer.body, where).toMatch(/<link rel="stylesheet" href="\/_astro\/[^"]+\.css">/);
  expect(answer.body, where).toContain('<h1>');
  expect(answer.body, where).toMatch(/<nav class="site-nav"|<nav class="console-nav"|class="brand"/);
  expectSecurityHeaders(answer, where);
  expectNoStackTrace(answer.body, where);
  const text = pageText(answer.body);
  if (typeof says === 'string') expect(text, where).toContain(says);
  else expect(text, where).toMatch(says);
}

/** A page reached with a token in its URL, refused or not: never cached, never sent on in a Referer. */
function expectPersonal(answer: HttpAnswer, where: string): void {
  expect(answer.headers.get('cache-control'), where).toBe('no-store');
  expect(answer.headers.get('referrer-policy'), where).toBe('same-origin');
}

function expectPlain(answer: HttpAnswer, status: number, where: string): void {
  expect(answer.status, where).toBe(status);
  expect(answer.headers.get('content-type'), where).toMatch(/^(text\/plain|application\/json)/);
  expect(answer.body, where).not.toContain('<html');
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;

  beforeAll(async () => {
    running = await engine.start({
      env: { CANDOR_SECRET: TEST_KEYS.secret, CANDOR_ENCRYPTION_KEY: (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex') },
    });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
  });

  const browse = (path: string, from = '127.0.0.1', headers: Record<string, string> = {}) =>
    send(`${server.url}${path}`, { from, headers: { accept: BROWSER, ...headers } });

  describe('public routes, to a browser', () => {
    it('an unknown incident is the styled 404 page, also when answered again from memory', async () => {
      for (let i = 0; i < 2; i++) expectStyled(await browse('/incidents/999999'), 404, 'Page not found', `/incidents/999999 #${i + 1}`);
      // and an unknown route, as before
      expectStyled(await browse('/no-such-page'), 404, 'Page not found', '/no-such-page');
    });

    it('an unknown maintenance calendar and feed: styled for a browser, plain for a calendar app or a feed reader', async () => {
      expectStyled(await browse('/incidents/999999.ics'), 404, 'No scheduled maintenance here', '.ics, browser');
      expectPlain(await send(`${server.url}/incidents/999999.ics`, { headers: { accept: 'text/calendar' } }), 404, '.ics, calendar');
      expectPlain(await send(`${server.url}/incidents/999999.ics`), 404, '.ics, no Accept');
      expectStyled(await browse('/feeds/nope.xml'), 404, 'Page not found', 'feed, browser');
      expectPlain(await send(`${server.url}/feeds/nope.xml`, { headers: { accept: 'application/rss+xml, */*' } }), 404, 'feed reader');
    });

    it('a forged subscription link: styled 404 for a browser, plain for the data export fetched by a script', async () => {
      expectStyled(await browse(`/subscription/${FORGED}/export.json`, '127.0.60.1'), 404, 'This link is not valid any more', 'export');
      expectPlain(await send(`${server.url}/subscription/${FORGED}/export.json`, { from: '127.0.60.1' }), 404, 'export, script');
      expectStyled(await browse(`/subscription/${FORGED}`, '127.0.60.1'), 404, 'This link is not valid any more', 'manage');
      expectStyled(await browse(`/unsubscribe/${FORGED}`, '127.0.60.1'), 404, 'not valid', 'unsubscribe');
      expectStyled(await browse(`/objections/1.${FORGED}`, '127.0.60.1'), 404, 'This objection link is not valid', 'objection');
    });

    it('an unsubscribe form posted after the address was removed: styled for the browser, plain for a one-click POST', async () => {
      const [id = 0] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'gone@customer.example' });
      const token = recipientToken(TEST_KEYS.secret, 'unsubscribe', id);
      const form = { 'content-type': 'application/x-www-form-urlencoded', origin: server.url, 'sec-fetch-site': 'same-origin' };
      const first = await send(`${server.url}/unsubscribe/${token}`, {
        from: '127.0.61.1',
        method: 'POST',
        headers: { ...form, accept: BROWSER },
        body: '',
      });
      expect(first.status).toBe(200);
      const again = await send(`${server.url}/unsubscribe/${token}`, {
        from: '127.0.61.1',
        method: 'POST',
        headers: { ...form, accept: BROWSER },
        body: '',
      });
      expectStyled(again, 404, 'not valid', 'second form POST');
      const oneClick = await send(`${server.url}/unsubscribe/${token}`, {
        from: '127.0.61.1',
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
      });
      expectPlain(oneClick, 404, 'one-click POST');
    });

    it('an address locked out for forged links gets the styled 429 page in a browser, plain text elsewhere', async () => {
      const from = '127.0.62.1';
      for (let i = 0; i < 20; i++) await send(`${server.url}/subscription/${FORGED.slice(0, -2)}${String(i).padStart(2, 'A')}`, { from });
      const locked = /Too many invalid links from your network\. Try again in \d+ minutes\./;
      for (const [path, where] of [
        [`/subscription/${FORGED}`, 'manage page'],
        [`/subscription/${FORGED}/export.json`, 'export in a browser'],
        [`/unsubscribe/${FORGED}`, 'unsubscribe page'],
        [`/objections/1.${FORGED}`, 'objection page'],
      ] as const) {
        const answer = await browse(path, from);
        expectStyled(answer, 429, locked, where);
        expectPersonal(answer, where);
      }
      expectPlain(await send(`${server.url}/subscription/${FORGED}/export.json`, { from }), 429, 'export by a script');
      const oneClick = await send(`${server.url}/unsubscribe/${FORGED}`, {
        from,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
      });
      expectPlain(oneClick, 429, 'one-click POST');
    });
  });

  describe('console routes, to a browser', () => {
    it('an unknown incident, delivery, subscriber or objection is a 404 page in the console', async () => {
      const { token } = await signedInStaffOn(db, 'owner');
      for (const [path, says] of [
        ['/console/incidents/999999', 'There is no incident 999999.'],
        ['/console/deliveries/999999', 'There is no notification 999999.'],
        ['/console/subscribers/999999', 'There is no subscriber 999999.'],
        ['/console/objections/999999', 'There is no objection 999999.'],
      ] as const) {
        const answer = await browse(path, '127.0.0.1', { cookie: `candor_session=${token}` });
        expectStyled(answer, 404, says, path);
        expect(answer.headers.get('cache-control'), path).toBe('no-store');
        expect(answer.body, path).toContain('class="console-nav"');
      }
    });

    it('an audit export asked wrongly: a 400 page for a browser, plain text for a script', async () => {
      const { token } = await signedInStaffOn(db, 'admin');
      const cookie = `candor_session=${token}`;
      expectStyled(await browse('/console/audit/export?format=xml', '127.0.0.1', { cookie }), 400, 'format must be csv or json', 'format');
      expectStyled(
        await browse('/console/audit/export?format=csv&from=yesterday', '127.0.0.1', { cookie }),
        400,
        'From must be a date (YYYY-MM-DD).',
        'filter',
      );
      expectPlain(await send(`${server.url}/console/audit/export?format=xml`, { headers: { cookie } }), 400, 'format, script');
    });
  });
});
