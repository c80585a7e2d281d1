/**
 * Guessing, as an attacker would spread it: many addresses against one
 * account, one address against many accounts, forged X-Forwarded-For; and
 * the other side of limits, locking someone out: one address failing on
 * purpose must not keep the person out from theirs.
 * Sign-in, TOTP, recovery codes, SMS codes and subscription links are each
 * limited, and every guess and lock-out is in the audit log (without the
 * guess). The single-address lock of sign-in is in
 * tests/integration/console-auth.test.ts, the core's limits in
 * tests/unit/auth-flows.test.ts and auth-mfa.test.ts.
 *
 * Each attacker speaks from its own loopback address (127.0.x.y): the
 * server sees them as different clients.
 */
import { and, eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { hashPassword } from '../../src/core/auth/password.ts';
import type { Role } from '../../src/core/auth/permissions.ts';
import { recipientToken } from '../../src/core/notify/links.ts';
import { updateStaffRow } from '../../src/stores/staff.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { auditRowsOn, Client, type HttpAnswer, leaked, pageText, serverSecrets, timesAuditedOn, until } from '../helpers/security.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn, totpFromKeyText } from '../helpers/staff.ts';

const PASSWORD = 'a long and unguessable passphrase 93';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
  let db: Database;
  let passwordHash = '';
  /** everything secret a test handles, looked for in the server's log at the end */
  const secrets = new Set<string>([PASSWORD]);

  beforeAll(async () => {
    twilio = await startFakeTwilio();
    const port = await freePort();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, twilio, testKeys: true }) });
    server = running.server;
    db = running.database;
    passwordHash = await hashPassword(PASSWORD);
  });
  afterAll(async () => {
    await running?.stop();
    await twilio?.close();
  });

  const text = (answer: HttpAnswer) => pageText(answer.body);
  const signIn = (from: string, email: string, password: string, headers: Record<string, string> = {}) =>
    new Client(server.url, from).post('/console/sign-in?_action=signIn', { email, password, next: '/console' }, headers);

  /** Gives the account the real hash of PASSWORD. */
  const withPassword = (staffId: number) =>
    db.engine === 'sqlite'
      ? db.transaction((tx) => updateStaffRow(tx, staffId, { passwordHash }, new Date()))
      : db.transaction((tx) => updateStaffRow(tx, staffId, { passwordHash }, new Date()));

  /** A staff member with a password; the session helper's password hash is not a real one. */
  async function member(role: Role): Promise<{ email: string; staffId: number }> {
    const { email, staffId } = await signedInStaffOn(db, role);
    await withPassword(staffId);
    return { email, staffId };
  }

  /** A responder who enrolled an authenticator through the console; returns their key and recovery codes. */
  async function memberWithSecondFactor(): Promise<{ email: string; staffId: number; keyText: string; recoveryCodes: string[] }> {
    const { email, staffId, token } = await signedInStaffOn(db, 'responder');
    await withPassword(staffId);
    const client = new Client(server.url).setCookie('candor_session', token);
    const page = await client.get('/console/mfa/enrol');
    const keyText = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)?.[1] ?? '';
    const pending = (/name="pending" value="([^"]+)"/.exec(page.body)?.[1] ?? '').replaceAll('&#43;', '+').replaceAll('&amp;', '&');
    const enrolled = await client.post('/console/mfa/enrol?_action=enrolMfa', { pending, code: totpFromKeyText(keyText) });
    const recoveryCodes = [...enrolled.body.matchAll(/<li>([a-z0-9]{5}-[a-z0-9]{5})<\/li>/g)].map((m) => m[1] ?? '');
    expect(recoveryCodes).toHaveLength(10);
    secrets.add(keyText.replace(/\s+/g, ''));
    for (const c of recoveryCodes) secrets.add(c);
    return { email, staffId, keyText, recoveryCodes };
  }

  /** Signs in with the password from `from`; the session then waits for its second factor. */
  async function halfSignedIn(email: string, from: string): Promise<Client> {
    const client = new Client(server.url, from);
    const res = await client.post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
    expect(res.headers.get('location')).toBe('/console/mfa');
    secrets.add(client.cookie('candor_session') ?? '');
    return client;
  }

  const summaries = async (action: string, target?: string) =>
    (await auditRowsOn(db, action))
      .filter((r) => target === undefined || r.target === target)
      .map((r) => ({ ip: r.ip, summary: JSON.parse(r.summary) as Record<string, unknown> }));

  describe('sign-in', () => {
    const TOO_MANY = /Too many attempts\. Try again in \d+ minutes?\./;
    const owner = async () => new Client(server.url, '127.0.1.250').setCookie('candor_session', (await signedInStaffOn(db, 'owner')).token);
    const staffRow = (page: HttpAnswer, email: string) =>
      pageText(new RegExp(`<tr data-staff="${email.replaceAll('.', '\\.')}"[\\s\\S]*?</tr>`).exec(page.body)?.[0] ?? '');

    it('a stranger failing again and again from one address does not lock the person out from theirs', async () => {
      const { email, staffId } = await member('viewer');
      for (let i = 1; i <= 5; i++)
        expect(text(await signIn('127.0.1.1', email, `wrong guess number ${i}`))).toContain('Email or password is incorrect.');
      for (let i = 6; i <= 40; i++) expect(text(await signIn('127.0.1.1', email, `wrong guess number ${i}`))).toMatch(TOO_MANY);
      // that address is refused even the right password...
      const there = await signIn('127.0.1.1', email, PASSWORD);
      expect(text(there)).toMatch(TOO_MANY);
      expect(there.headers.getSetCookie().join()).not.toContain('candor_session=');
      // ...the person, from their own, signs in
      const theirs = await signIn('127.0.1.2', email, PASSWORD);
      expect(theirs.status).toBe(303);
      expect(theirs.headers.getSetCookie().join()).toContain('candor_session=');
      // five failures, all from that address (identical ones are one entry and a count: src/core/audit/repeats.ts)
      expect(await timesAuditedOn(db, 'auth.sign_in.failed', (r) => r.target === `staff:${staffId}`)).toBe(5);
      expect(await timesAuditedOn(db, 'auth.sign_in.failed', (r) => r.target === `staff:${staffId}` && r.ip === '127.0.1.1')).toBe(5);
      const locked = await summaries('auth.sign_in.locked', `staff:${staffId}`);
      expect(locked.length).toBeGreaterThan(0);
      expect(locked.every((l) => l.ip === '127.0.1.1' && l.summary.reason === 'account and ip')).toBe(true);
    });

    it('the account’s ceiling stops a guesser spread over many addresses; owners see it and may clear it, audited', async () => {
      const { email, staffId } = await member('responder');
      // 5 guesses from each of 10 addresses: none of them is locked out on its own before the account is
      for (let a = 1; a <= 10; a++)
        for (let i = 1; i <= 5; i++)
          expect(text(await signIn(`127.0.10.${a}`, email, `spread guess ${a}.${i}`))).toContain('Email or password is incorrect.');
      const fresh = await signIn('127.0.10.200', email, PASSWORD);
      expect(text(fresh)).toMatch(TOO_MANY);
      expect(fresh.headers.getSetCookie().join()).not.toContain('candor_session=');
      expect(await summaries('auth.sign_in.locked', `staff:${staffId}`)).toEqual([{ ip: '127.0.10.200', summary: { reason: 'account' } }]);
      expect(new Set((await summaries('auth.sign_in.failed', `staff:${staffId}`)).map((f) => f.ip)).size).toBe(10);

      // an owner sees the lock-out on the Staff page, with the addresses, the time and the ceiling
      const page = await (await owner()).get('/console/staff');
      expect(page.status).toBe(200);
      expect(staffRow(page, email)).toMatch(
        /Sign-in is limited from 10 addresses until \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC; the account's ceiling is reached until \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC, so every address is refused except on their recognised devices\./,
      );
      // what an address is, and who the ceiling spares
      expect(text(page)).toContain('an IPv6 address counts by its /48 network');
      expect(text(page)).toContain("The account's ceiling never shuts a person out of a browser where they completed sign-in");
      // an admin sees it too, without the button to clear it
      const admin = await new Client(server.url, '127.0.1.251')
        .setCookie('candor_session', (await signedInStaffOn(db, 'admin')).token)
        .get('/console/staff');
      expect(staffRow(admin, email)).toContain('Sign-in is limited from 10 addresses');
      expect(admin.body).not.toContain('clearStaffLockout');

      const cleared = await (await owner()).post('/console/staff?_action=clearStaffLockout', { staffId: String(staffId) });
      expect(cleared.status).toBe(200);
      expect(text(cleared)).toContain(`The sign-in limits of ${email} are cleared`);
      expect(staffRow(cleared, email)).not.toContain('limited');
      expect((await auditRowsOn(db, 'staff.lockout_cleared')).map((r) => ({ target: r.target, summary: JSON.parse(r.summary) }))).toEqual([
        {
          target: `staff:${staffId}`,
          summary: { email, signInAddresses: 10, accountCeiling: true, secondFactorAddresses: 0, secondFactorCeiling: false },
        },
      ]);
      expect((await signIn('127.0.10.200', email, PASSWORD)).status).toBe(303);
    });

    it('locks an address spraying one password over many accounts, whatever X-Forwarded-For claims', async () => {
      const { email } = await member('viewer');
      for (let i = 0; i < 30; i++) {
        const res = await signIn('127.0.2.1', `sprayed${i}@lumenwork.example`, PASSWORD, { 'x-forwarded-for': `198.51.100.${i}` });
        expect(text(res)).toContain('Email or password is incorrect.');
      }
      const real = await signIn('127.0.2.1', email, PASSWORD, { 'x-forwarded-for': '203.0.113.250', 'x-real-ip': '203.0.113.251' });
      expect(text(real)).toMatch(/Too many attempts/);
      expect((await summaries('auth.sign_in.locked')).at(-1)).toEqual({ ip: '127.0.2.1', summary: { reason: 'ip' } });
      // the same person from elsewhere is not locked out by someone else's spraying
      expect((await signIn('127.0.2.2', email, PASSWORD)).status).toBe(303);
    });
  });

  describe('recognised devices at the account’s ceiling', () => {
    const DEVICE = 'candor_device';
    const TOO_MANY = /Too many attempts\. Try again in \d+ minutes?\./;
    const form = (email: string) => ({ email, password: PASSWORD, next: '/console' });
    const browser = (from: string, device?: string) => {
      const client = new Client(server.url, from);
      return device ? client.setCookie(DEVICE, device) : client;
    };
    const owner = async () => new Client(server.url, '127.0.1.250').setCookie('candor_session', (await signedInStaffOn(db, 'owner')).token);

    /** Wrong passwords, five from each of ten addresses (ten /48s, as far as the counts go), until the account's ceiling is reached. */
    async function reachCeiling(email: string, third: number): Promise<void> {
      for (let a = 1; a <= 10; a++)
        for (let i = 1; i <= 5; i++)
          expect(text(await signIn(`127.0.${third}.${a}`, email, `spread guess ${a}.${i}`))).toMatch(
            /Email or password is incorrect|Too many attempts/,
          );
      expect(text(await signIn(`127.0.${third}.100`, email, PASSWORD))).toMatch(TOO_MANY);
    }

    /** Signs in from a browser that completes sign-in and keeps the cookie; the cookie's value. */
    async function signedInOnce(email: string, from: string): Promise<string> {
      const laptop = browser(from);
      const res = await laptop.post('/console/sign-in?_action=signIn', form(email));
      expect(res.headers.get('location')).toBe('/console');
      const set = res.headers.getSetCookie().find((c) => c.startsWith(`${DEVICE}=`)) ?? '';
      const attributes = set
        .split(';')
        .slice(1)
        .map((a) => a.trim().toLowerCase());
      expect(attributes).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/', `max-age=${90 * 24 * 3600}`]));
      const device = laptop.cookie(DEVICE) ?? '';
      expect(device).not.toBe('');
      secrets.add(device);
      return device;
    }

    it('the member signs in on their recognised browser from a new address; nothing else gets past the ceiling', async () => {
      const { email, staffId } = await member('responder');
      const device = await signedInOnce(email, '127.0.30.1');
      const other = await member('responder');
      const othersDevice = await signedInOnce(other.email, '127.0.30.2');
      await reachCeiling(email, 31);

      // a new browser: refused, no session
      const stranger = await browser('127.0.30.10').post('/console/sign-in?_action=signIn', form(email));
      expect(text(stranger)).toMatch(TOO_MANY);
      expect(stranger.headers.getSetCookie().join()).not.toContain('candor_session=');
      // the member's browser, from a new address: in
      const laptop = browser('127.0.30.11', device);
      const theirs = await laptop.post('/console/sign-in?_action=signIn', form(email));
      expect(theirs.status).toBe(303);
      expect(theirs.headers.get('location')).toBe('/console');
      expect((await laptop.get('/console')).status).toBe(200);
      expect((await summaries('auth.sign_in.succeeded', `staff:${staffId}`)).at(-1)).toEqual({
        ip: '127.0.30.11',
        summary: { next: 'console', device: 'recognised' },
      });
      // an altered signature, another member's cookie, or one with a later expiry: as if none were presented
      const parts = device.split('.');
      const mac = parts[5] ?? '';
      const altered = [...parts.slice(0, 5), `${mac.slice(0, 10)}${mac[10] === 'A' ? 'B' : 'A'}${mac.slice(11)}`].join('.');
      const extended = [...parts.slice(0, 4), (Number.parseInt(parts[4] ?? '0', 36) + 86_400_000).toString(36), mac].join('.');
      for (const [n, cookie] of [altered, othersDevice, extended].entries()) {
        const res = await browser(`127.0.30.${20 + n}`, cookie).post('/console/sign-in?_action=signIn', form(email));
        expect(text(res), `cookie ${n}`).toMatch(TOO_MANY);
        expect(res.headers.getSetCookie().join()).not.toContain('candor_session=');
      }
      expect((await summaries('auth.sign_in.locked', `staff:${staffId}`)).filter((l) => l.ip?.startsWith('127.0.30.'))).toEqual([
        { ip: '127.0.30.10', summary: { reason: 'account' } },
        ...[20, 21, 22].map((n) => ({ ip: `127.0.30.${n}`, summary: { reason: 'account' } })),
      ]);
      // the other member's cookie still opens their own account
      expect((await browser('127.0.30.23', othersDevice).post('/console/sign-in?_action=signIn', form(other.email))).status).toBe(303);
    });

    it('with a second factor: the cookie comes with the code, and carries the member past both ceilings', async () => {
      const { email, staffId, recoveryCodes } = await memberWithSecondFactor();
      // the password alone sets no cookie; the code does
      const laptop = browser('127.0.33.1');
      const half = await laptop.post('/console/sign-in?_action=signIn', form(email));
      expect(half.headers.get('location')).toBe('/console/mfa');
      expect(half.headers.getSetCookie().join()).not.toContain(`${DEVICE}=`);
      const verified = await laptop.post('/console/mfa?_action=verifyMfa', { code: recoveryCodes[0] ?? '', next: '/console' });
      expect(verified.headers.get('location')).toBe('/console');
      const device = laptop.cookie(DEVICE) ?? '';
      expect(device).not.toBe('');
      secrets.add(device);

      // someone with the password spreads wrong codes, then wrong passwords, over many addresses
      const attacker = await halfSignedIn(email, '127.0.33.2');
      for (let a = 3; a <= 6; a++)
        for (let i = 1; i <= 5; i++)
          expect(
            text(
              await attacker
                .speakingFrom(`127.0.33.${a}`)
                .post('/console/mfa?_action=verifyMfa', { code: `2${a}000${i}`, next: '/console' }),
            ),
          ).toContain('That code is not valid');
      await reachCeiling(email, 34);

      expect(text(await browser('127.0.33.10').post('/console/sign-in?_action=signIn', form(email)))).toMatch(TOO_MANY);
      const away = laptop.speakingFrom('127.0.33.11');
      const signedIn = await away.post('/console/sign-in?_action=signIn', form(email));
      expect(signedIn.headers.get('location')).toBe('/console/mfa');
      // that session without the cookie is refused at the second factor's ceiling...
      const copied = new Client(server.url, '127.0.33.11').setCookie('candor_session', away.cookie('candor_session') ?? '');
      expect(text(await copied.post('/console/mfa?_action=verifyMfa', { code: recoveryCodes[1] ?? '', next: '/console' }))).toMatch(
        TOO_MANY,
      );
      // ...and with it, passes
      const passed = await away.post('/console/mfa?_action=verifyMfa', { code: recoveryCodes[1] ?? '', next: '/console' });
      expect(passed.headers.get('location')).toBe('/console');
      expect((await away.get('/console')).status).toBe(200);
      expect((await summaries('auth.mfa.recovery_code_used', `staff:${staffId}`)).at(-1)).toEqual({
        ip: '127.0.33.11',
        summary: { unusedLeft: 8, device: 'recognised' },
      });
    });

    it('a cookie from before an owner’s sign-in reset is refused; the one from the new password is not', async () => {
      const { email, staffId } = await member('responder');
      const before = await signedInOnce(email, '127.0.35.1');
      const reset = await (await owner()).post('/console/staff?_action=resetStaffSignIn', { staffId: String(staffId) });
      const token = /<code id="reset-link">[^<]*\/console\/link\/([^<]+)<\/code>/.exec(reset.body)?.[1] ?? '';
      expect(token).not.toBe('');
      secrets.add(token);
      const phone = browser('127.0.35.2');
      const set = await phone.post(`/console/link/${token}?_action=completeLink`, { token, password: PASSWORD, confirm: PASSWORD });
      expect(set.headers.get('location')).toBe('/console');
      const after = phone.cookie(DEVICE) ?? '';
      expect(after).not.toBe('');
      secrets.add(after);
      await reachCeiling(email, 36);

      expect(text(await browser('127.0.35.10', before).post('/console/sign-in?_action=signIn', form(email)))).toMatch(TOO_MANY);
      expect((await browser('127.0.35.11', after).post('/console/sign-in?_action=signIn', form(email))).status).toBe(303);
    });
  });

  describe('second factor', () => {
    it('TOTP guesses spread over many addresses reach the account’s ceiling; a valid recovery code is then refused too', async () => {
      const { email, staffId, recoveryCodes } = await memberWithSecondFactor();
      const session = await halfSignedIn(email, '127.0.3.1');
      // 5 wrong codes from one address lock that address only
      for (let i = 1; i <= 5; i++)
        expect(
          text(await session.speakingFrom('127.0.3.2').post('/console/mfa?_action=verifyMfa', { code: `00000${i}`, next: '/console' })),
        ).toContain('That code is not valid');
      expect(
        text(await session.speakingFrom('127.0.3.2').post('/console/mfa?_action=verifyMfa', { code: '000009', next: '/console' })),
      ).toMatch(/Too many attempts/);
      // 20 in all, from 4 addresses, and the account is closed to every address
      for (let a = 3; a <= 5; a++)
        for (let i = 1; i <= 5; i++) {
          const res = await session
            .speakingFrom(`127.0.3.${a}`)
            .post('/console/mfa?_action=verifyMfa', { code: `1${a}000${i}`, next: '/console' });
          expect(text(res)).toContain('That code is not valid');
        }
      const recovery = await session
        .speakingFrom('127.0.3.9')
        .post('/console/mfa?_action=verifyMfa', { code: recoveryCodes[0] ?? '', next: '/console' });
      expect(text(recovery)).toMatch(/Too many attempts\. Try again in \d+ minutes?\./);
      expect((await session.get('/console')).headers.get('location')).toBe('/console/mfa');
      expect(await timesAuditedOn(db, 'auth.mfa.failed', (r) => r.target === `staff:${staffId}`)).toBe(20);
      expect((await summaries('auth.sign_in.locked', `staff:${staffId}`)).at(-1)).toEqual({
        ip: '127.0.3.9',
        summary: { reason: 'second factor for account' },
      });
      // the recovery code was not spent by the refused attempt
      expect({
        n: await readRows(db, (q) =>
          q.db.$count(
            q.t.recoveryCodes,
            and(
              eq(q.t.recoveryCodes.trustCenterId, q.trustCenter),
              eq(q.t.recoveryCodes.staffId, staffId),
              isNull(q.t.recoveryCodes.usedAt),
            ),
          ),
        ),
      }).toEqual({
        n: 10,
      });
    });

    it('guessed recovery codes count against the same limit as TOTP codes', async () => {
      const { email, staffId, recoveryCodes } = await memberWithSecondFactor();
      const session = await halfSignedIn(email, '127.0.4.1');
      for (const guess of ['aaaaa-aaaaa', 'bbbbb-bbbbb', 'ccccc-ccccc', 'zzzzz-zzzzz', '22222-22222']) {
        expect(text(await session.post('/console/mfa?_action=verifyMfa', { code: guess, next: '/console' }))).toContain(
          'That code is not valid',
        );
      }
      const right = await session.post('/console/mfa?_action=verifyMfa', { code: recoveryCodes[1] ?? '', next: '/console' });
      expect(text(right)).toMatch(/Too many attempts/);
      // one address, one account: one entry and a count (audit/repeats.ts)
      expect(await timesAuditedOn(db, 'auth.mfa.failed', (r) => r.target === `staff:${staffId}`)).toBe(5);
    });

    it('one address guessing across many accounts is locked after 30 codes', async () => {
      const from = '127.0.5.1';
      const people = await Promise.all(Array.from({ length: 7 }, () => memberWithSecondFactor()));
      const sessions = await Promise.all(people.map((p) => halfSignedIn(p.email, from)));
      for (const session of sessions.slice(0, 6)) {
        for (let i = 0; i < 5; i++) await session.post('/console/mfa?_action=verifyMfa', { code: `12345${i}`, next: '/console' });
      }
      const last = people[6];
      const res = await sessions[6]?.post('/console/mfa?_action=verifyMfa', { code: last?.recoveryCodes[0] ?? '', next: '/console' });
      expect(text(res ?? { status: 0, headers: new Headers(), body: '' })).toMatch(/Too many attempts/);
    });
  });

  describe('SMS confirmation codes', () => {
    const subscribeSms = (from: string, number: string) =>
      new Client(server.url, from).post('/subscribe?_action=subscribe', { channel: 'sms', address: number, topics: 'incidents' });
    const confirm = (from: string, challengeId: string, code: string) =>
      new Client(server.url, from).post(`/subscribe?challenge=${challengeId}&_action=confirmSmsCode`, { challengeId, code });
    async function challengeFor(number: string, from: string): Promise<{ id: string; code: string }> {
      const asked = await subscribeSms(from, number);
      const id = /name="challengeId" value="([a-z0-9]+)"/.exec(asked.body)?.[1] ?? '';
      expect(id, pageText(asked.body)).not.toBe('');
      const e164 = number.replace(/\s+/g, '');
      await until(() => twilio.messagesTo(e164).length > 0, `the code SMS to ${e164}`);
      const code = /\b(\d{6})\b/.exec(twilio.messagesTo(e164).at(-1)?.body ?? '')?.[1] ?? '';
      secrets.add(code);
      return { id, code };
    }
    const wrong = (code: string) => (code === '000000' ? '111111' : '000000');

    it('a challenge takes 5 wrong codes, then not even the right one; each is audited', async () => {
      const before = (await auditRowsOn(db, 'subscriber.code_failed')).length;
      const { id, code } = await challengeFor('+44 7911 120001', '127.0.6.1');
      for (let i = 1; i <= 5; i++)
        expect(text(await confirm(`127.0.6.${i + 1}`, id, wrong(code)))).toMatch(/That code is not right|Too many wrong codes/);
      expect(text(await confirm('127.0.6.9', id, code))).toContain('Too many wrong codes. Ask for a new code.');
      expect(
        await readRows(db, (q) =>
          q.db
            .select({ status: q.t.recipients.status })
            .from(q.t.recipients)
            .where(
              and(eq(q.t.recipients.trustCenterId, q.trustCenter), eq(q.t.recipients.status, 'active'), eq(q.t.recipients.channel, 'sms')),
            ),
        ),
      ).toEqual([]);
      const failed = (await auditRowsOn(db, 'subscriber.code_failed')).slice(before);
      expect(failed.map((r) => r.ip)).toEqual(['127.0.6.2', '127.0.6.3', '127.0.6.4', '127.0.6.5', '127.0.6.6', '127.0.6.9']);
      expect(failed.every((r) => r.actor_type === 'anonymous' && !r.summary.includes(code))).toBe(true);
    });

    it('one address may try 20 codes an hour, across challenges; the lock-out is audited once', async () => {
      const from = '127.0.7.1';
      const challenges = await Promise.all(Array.from({ length: 5 }, (_, i) => challengeFor(`+44 7911 12010${i}`, `127.0.7.${10 + i}`)));
      for (const c of challenges.slice(0, 4)) for (let i = 0; i < 5; i++) await confirm(from, c.id, wrong(c.code));
      const fresh = challenges[4] ?? { id: '', code: '' };
      const refused = await confirm(from, fresh.id, fresh.code);
      expect(text(refused)).toContain('Too many sign-up attempts from your network');
      await confirm(from, fresh.id, fresh.code);
      expect((await summaries('subscriber.locked')).filter((l) => l.ip === from)).toEqual([
        { ip: from, summary: { reason: 'sms codes', limit: 20 } },
      ]);
      // the right code still works from the person's own network
      expect(text(await confirm('127.0.7.99', fresh.id, fresh.code))).toContain('Your number is confirmed.');
    });
  });

  describe('subscription links', () => {
    let manage = '';
    let unsubscribe = '';
    beforeAll(async () => {
      const [id] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'guarded@customer.example' });
      manage = recipientToken(TEST_KEYS.secret, 'manage', id ?? 0);
      unsubscribe = recipientToken(TEST_KEYS.secret, 'unsubscribe', id ?? 0);
      secrets.add(manage).add(unsubscribe).add('guarded@customer.example');
    });

    it('forged manage, unsubscribe and confirmation links are counted per address and audited; past 20, even a real one is refused', async () => {
      const from = '127.0.8.1';
      const before = (await auditRowsOn(db)).length;
      const attacker = new Client(server.url, from);
      const forged = (n: number) => `${manage.split('.')[0]}.${String(n).padStart(32, 'A')}`;
      const attempts: (() => Promise<HttpAnswer>)[] = [
        ...Array.from({ length: 5 }, (_, n) => () => attacker.get(`/subscription/${forged(n)}`)),
        ...Array.from({ length: 5 }, (_, n) => () => attacker.get(`/subscription/${forged(n + 5)}/export.json`)),
        ...Array.from({ length: 4 }, (_, n) => () => attacker.get(`/unsubscribe/${forged(n + 10)}`)),
        ...Array.from({ length: 2 }, (_, n) => () => attacker.post(`/unsubscribe/${forged(n + 14)}`, { 'List-Unsubscribe': 'One-Click' })),
        ...Array.from(
          { length: 2 },
          (_, n) => () => attacker.post(`/subscription/${manage}?_action=updateTopics`, { token: forged(n + 16), topics: 'incidents' }),
        ),
        ...Array.from(
          { length: 2 },
          (_, n) => () => attacker.post(`/subscribe/confirm/x?_action=confirmEmail`, { token: `${'a'.repeat(20)}.${n}` }),
        ),
      ];
      expect(attempts).toHaveLength(20);
      for (const attempt of attempts) expect((await attempt()).status).not.toBe(200);
      const locked = await attacker.get(`/subscription/${manage}`);
      expect(locked.status).toBe(429);
      expect(locked.body).toMatch(/Too many invalid links from your network\. Try again in \d+ minutes\./);
      expect((await attacker.get(`/subscription/${manage}/export.json`)).status).toBe(429);
      expect((await attacker.post(`/unsubscribe/${unsubscribe}`, { 'List-Unsubscribe': 'One-Click' })).status).toBe(429);
      // the subscriber, elsewhere, is not locked out, and was not unsubscribed
      expect((await new Client(server.url, '127.0.8.2').get(`/subscription/${manage}`)).status).toBe(200);

      const rows = (await auditRowsOn(db)).slice(before);
      const refused = rows.filter((r) => r.action === 'subscriber.link_refused');
      // identical refusals (one address, one purpose) are one entry and a count (audit/repeats.ts)
      expect(refused).toHaveLength(3);
      expect(await timesAuditedOn(db, 'subscriber.link_refused', (r) => r.ip === from)).toBe(20);
      expect(refused.every((r) => r.ip === from && r.actor_type === 'anonymous')).toBe(true);
      expect(new Set(refused.map((r) => (JSON.parse(r.summary) as { purpose: string }).purpose))).toEqual(
        new Set(['manage', 'unsubscribe', 'confirm']),
      );
      expect(rows.filter((r) => r.action === 'subscriber.locked').map((r) => ({ ip: r.ip, summary: JSON.parse(r.summary) }))).toEqual([
        { ip: from, summary: { reason: 'invalid links', limit: 20 } },
      ]);
      expect(JSON.stringify(rows)).not.toMatch(/AAAAAAAAAAAA|aaaaaaaaaaaa/);
    });

    it('a link we signed whose address is gone is not counted as a guess', async () => {
      const [id] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'leaving@customer.example' });
      const token = recipientToken(TEST_KEYS.secret, 'unsubscribe', id ?? 0);
      const person = new Client(server.url, '127.0.9.1');
      expect((await person.post(`/unsubscribe/${token}`, { 'List-Unsubscribe': 'One-Click' })).status).toBe(200);
      const before = (await auditRowsOn(db, 'subscriber.link_refused')).length;
      for (let i = 0; i < 25; i++) expect((await person.get(`/unsubscribe/${token}`)).status).toBe(404);
      expect(await auditRowsOn(db, 'subscriber.link_refused')).toHaveLength(before);
    });
  });

  describe('what the guessing left behind', () => {
    it('no password, code, key, token or address in the server’s log', () => {
      const output = server.output();
      expect(output).toContain('serving ');
      expect(leaked(output, [...secrets, ...serverSecrets(server.dataDir)])).toEqual([]);
    });

    it('no guess or secret in the audit log', async () => {
      const all = JSON.stringify(await auditRowsOn(db));
      expect(leaked(all, [...secrets, ...serverSecrets(server.dataDir)])).toEqual([]);
      expect(all).not.toMatch(/wrong guess number|sprayed\d+@/);
    });
  });
});
