/**
 * Lock-outs of the console (src/core/auth/lockouts.ts): guesses are limited
 * per account and source address, per source across accounts, and per
 * account across every source under a much higher ceiling, so that a
 * stranger who knows a staff address cannot lock that person out from one
 * address. Owners see who is limited and may clear it (audited).
 */
import { describe, expect, it } from 'vitest';
import {
  changePassword,
  clearLockout,
  completeLink,
  resetStaffSignIn,
  revokeAllSessionsOf,
  setStaffEnabled,
  verifySecondFactor,
} from '../../src/core/auth/console-auth.ts';
import { DEVICE_TTL_MS, recognisedDevice } from '../../src/core/auth/devices.ts';
import { type Lockout, lockoutsOf, sourceOf } from '../../src/core/auth/lockouts.ts';
import { authLimits, peekLimitNow } from '../../src/core/auth/rate-limit.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { GENERIC, MINUTE, must, ok, PASSWORD, SECOND, tokenOf, useWorlds, type World } from './auth-world.ts';

describe.each(enginesUnderTest())('on $name', (engine) => {
  const fresh = useWorlds(engine);
  const TOO_MANY = /^Too many attempts\. Try again in \d+ minutes?\.$/;
  const address = (i: number) => `198.51.100.${i}`;
  /** An address in the i-th of many IPv6 /48s: what one attacker with a few allocations has. */
  const network = (i: number) => `2001:db8:${(0x100 + i).toString(16)}:${(i % 7).toString(16)}::1`;

  describe('signing in from many addresses', () => {
    it('one address failing again and again does not stop the person signing in from theirs', async () => {
      const w = await fresh();
      const { member } = await w.activeStaff('owner@lumenwork.example', 'owner');
      const attacker = { ip: '192.0.2.66' };
      for (let i = 0; i < 5; i++) expect(await w.signIn('owner@lumenwork.example', `guess ${i}`, attacker)).toEqual(GENERIC);
      for (let i = 0; i < 40; i++) {
        const refused = await w.signIn('owner@lumenwork.example', `guess ${i}`, attacker);
        expect(refused.ok).toBe(false);
        if (!refused.ok) expect(refused.message).toMatch(TOO_MANY);
      }
      // Even the right password from that address is refused until the window passes...
      expect(await w.signIn('owner@lumenwork.example', PASSWORD, attacker)).toMatchObject({ ok: false, message: TOO_MANY });
      // ...but the owner, from their own address, signs in: refused guesses never reached the account's ceiling.
      expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '203.0.113.50' })).toMatchObject({ ok: true });
      // five failures (identical ones are one entry and a count: src/core/audit/repeats.ts), all for this account
      expect(await w.times('auth.sign_in.failed')).toBe(5);
      expect((await w.audit('auth.sign_in.failed')).every((r) => r.target === `staff:${member.id}`)).toBe(true);
      const locked = await w.audit('auth.sign_in.locked');
      expect(locked.length).toBeGreaterThan(0);
      expect(locked.every((r) => r.summary.reason === 'account and ip' && r.target === `staff:${member.id}`)).toBe(true);
    });

    it('a guesser spread over many addresses reaches the account ceiling, which holds even for the right password', async () => {
      const w = await fresh();
      const { member } = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { max } = authLimits.signInPerAccount;
      const perAddress = authLimits.signInPerAccountAndIp.max;
      expect(max).toBeGreaterThanOrEqual(8 * perAddress);
      for (let i = 0; i < max; i++) {
        expect(await w.signIn('owner@lumenwork.example', `spread guess ${i}`, { ip: address(1 + Math.floor(i / perAddress)) })).toEqual(
          GENERIC,
        );
      }
      const fresher = await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '203.0.113.50' });
      expect(fresher).toEqual({ ok: false, message: 'Too many attempts. Try again in 15 minutes.' });
      expect((await w.audit('auth.sign_in.locked')).at(-1)).toMatchObject({ target: `staff:${member.id}`, summary: { reason: 'account' } });
      // The ceiling is per account: someone else signs in from the same addresses.
      await w.activeStaff('other@lumenwork.example', 'viewer', member);
      expect(await w.signIn('other@lumenwork.example', PASSWORD, { ip: address(1) })).toMatchObject({ ok: true });
      w.advance(15 * MINUTE);
      expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '203.0.113.50' })).toMatchObject({ ok: true });
    });

    it('parallel guesses from many addresses do not slip past the ceiling', async () => {
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      const { max } = authLimits.signInPerAccount;
      const results = await Promise.all(
        Array.from({ length: max + 20 }, (_, i) => w.signIn('owner@lumenwork.example', `parallel ${i}`, { ip: address(1 + (i % 40)) })),
      );
      expect(results.filter((r) => !r.ok && r.message === GENERIC.message)).toHaveLength(max);
      expect(results.filter((r) => !r.ok && TOO_MANY.test(r.message))).toHaveLength(20);
    });

    it('counts an IPv6 client by its /48, so one ordinary allocation cannot pose as thousands of sources', async () => {
      // two /64s of one /48, written every way an address may be written
      expect(sourceOf('2001:db8:1:2::5')).toBe(sourceOf('2001:db8:1:3::5'));
      expect(sourceOf('2001:db8:1:2::5')).toBe(sourceOf('2001:0DB8:0001:ffff:ffff:ffff:ffff:ffff'));
      expect(sourceOf('2001:db8:1::')).toBe(sourceOf('2001:db8:1:abcd:1:2:3:4%eth0'));
      expect(sourceOf('2001:db8:1:2::5')).toBe('2001:db8:1::/48');
      // other /48s are other sources
      expect(sourceOf('2001:db8:1:2::5')).not.toBe(sourceOf('2001:db8:2:2::5'));
      expect(sourceOf('2001:db8::1')).not.toBe(sourceOf('2001:db9::1'));
      // IPv4, mapped or not, stays one address
      expect(sourceOf('::ffff:198.51.100.7')).toBe('198.51.100.7');
      expect(sourceOf('::FFFF:198.51.100.7')).toBe('198.51.100.7');
      expect(sourceOf('198.51.100.7')).toBe('198.51.100.7');
      // an IPv4 address carried in IPv6, whatever the spelling, is that IPv4 address, not one /48 for all of them
      for (const spelling of [
        '::ffff:c633:6407',
        '0:0:0:0:0:ffff:198.51.100.7',
        '::FFFF:C633:6407',
        '64:ff9b::198.51.100.7',
        '64:ff9b::c633:6407',
        '::198.51.100.7',
      ]) {
        expect(sourceOf(spelling), spelling).toBe('198.51.100.7');
      }
      expect(sourceOf('64:ff9b::203.0.113.9')).not.toBe(sourceOf('64:ff9b::198.51.100.7'));
      expect(sourceOf('::1')).toBe('::1');
      expect(sourceOf('::')).toBe('::');
      expect(sourceOf('::1')).not.toBe(sourceOf('::ffff:1.2.3.4'));
      expect(sourceOf('198.51.100.7')).not.toBe(sourceOf('198.51.100.8'));
      expect(sourceOf(null)).toBe('unknown');
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      // five guesses, each from another /64 of one /48: that /48 is refused, even from a /64 it never used
      for (let i = 1; i <= 5; i++) await w.signIn('owner@lumenwork.example', `v6 guess ${i}`, { ip: `2001:db8:1:${i.toString(16)}::1` });
      expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '2001:db8:1:abcd::1' })).toMatchObject({
        ok: false,
        message: TOO_MANY,
      });
      expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '2001:db8:9:9::1' })).toMatchObject({ ok: true });
    });
  });

  describe('recognised devices', () => {
    const EMAIL = 'responder@lumenwork.example';
    const CEILING = { ok: false, message: 'Too many attempts. Try again in 15 minutes.' };

    /** A guesser spreads wrong passwords over /48s, five from each, until the account's ceiling is reached (the member's own attempts count too). */
    async function reachCeiling(w: World, email: string, from = 1): Promise<void> {
      const { max } = authLimits.signInPerAccount;
      const perAddress = authLimits.signInPerAccountAndIp.max;
      const made = (await peekLimitNow(w.database, authLimits.signInPerAccount, email, w.now)).count;
      for (let i = 0; i < max - made; i++)
        expect(await w.signIn(email, `spread guess ${i}`, { ip: network(from + Math.floor(i / perAddress)) })).toEqual(GENERIC);
    }

    /** A member signed in once from their laptop: their recognised-device cookie. */
    async function memberWithDevice(w: World, email = EMAIL): Promise<{ id: number; device: string }> {
      const { member } = await w.activeStaff(email, 'responder', await w.member(1));
      const first = ok(await w.signIn(email, PASSWORD, { ip: '203.0.113.50' }));
      expect(first.next).toBe('console');
      return { id: member.id, device: must(first.device, 'a device cookie') };
    }

    it('a guesser spread over many /48s closes the account, but not to the member on a recognised device', async () => {
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      const { id, device } = await memberWithDevice(w);
      await reachCeiling(w, EMAIL);
      // from a new network without the cookie: refused, even the right password
      expect(await w.signIn(EMAIL, PASSWORD, { ip: '2001:db8:ffff::1' })).toEqual(CEILING);
      expect((await w.audit('auth.sign_in.locked')).at(-1)).toMatchObject({ target: `staff:${id}`, summary: { reason: 'account' } });
      // from another new network with it: in, and the cookie is renewed for the same device
      const back = ok(await w.signIn(EMAIL, PASSWORD, { ip: '2001:db8:fffe::1' }, device));
      expect(back.next).toBe('console');
      expect((await w.auth(back.token)).staff.id).toBe(id);
      const renewed = must(back.device, 'a renewed cookie');
      expect(renewed.split('.')[3]).toBe(device.split('.')[3]);
      expect((await w.audit('auth.sign_in.succeeded')).at(-1)?.summary).toEqual({ next: 'console', device: 'recognised' });
      // the cookie spares the ceiling, not the per-address counts: a /48 the guesser used up is refused
      expect(await w.signIn(EMAIL, PASSWORD, { ip: network(1) }, device)).toEqual(CEILING);
      expect((await w.audit('auth.sign_in.locked')).at(-1)?.summary).toEqual({ reason: 'account and ip', device: 'recognised' });
      // and the wrong password is wrong with it too
      expect(await w.signIn(EMAIL, 'not it', { ip: '2001:db8:fffd::1' }, device)).toEqual(GENERIC);
      expect((await w.audit('auth.sign_in.failed')).at(-1)?.summary).toMatchObject({ reason: 'password', device: 'recognised' });
    });

    it('refuses, at the ceiling, a cookie that is altered, forged, someone else’s or expired', async () => {
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      const { device } = await memberWithDevice(w);
      const other = await memberWithDevice(w, 'other@lumenwork.example');
      const parts = device.split('.');
      const mac = parts[5] ?? '';
      const flipped = `${mac.slice(0, -2)}${mac.at(-2) === 'A' ? 'B' : 'A'}${mac.at(-1)}`;
      const presented = {
        'altered signature': [...parts.slice(0, 5), flipped].join('.'),
        'another device id': [...parts.slice(0, 3), 'a'.repeat(24), ...parts.slice(4)].join('.'),
        'a later expiry': [...parts.slice(0, 4), (Number.parseInt(parts[4] ?? '0', 36) + DEVICE_TTL_MS).toString(36), mac].join('.'),
        'no signature': parts.slice(0, 5).join('.'),
        'another member’s': other.device,
        garbage: 'd1.2.0.aaaaaaaaaaaaaaaaaaaaaaaa.zz.AAAA',
      };
      await reachCeiling(w, EMAIL);
      let n = 0;
      for (const [what, cookie] of Object.entries(presented)) {
        expect(await w.signIn(EMAIL, PASSWORD, { ip: `2001:db8:ff${(n++).toString(16)}::1` }, cookie), what).toEqual(CEILING);
        // nothing said about it, and no device recorded
        expect((await w.audit('auth.sign_in.locked')).at(-1)?.summary, what).toEqual({ reason: 'account' });
      }
      // the other member's own cookie opens only their account
      expect(await w.signIn('other@lumenwork.example', PASSWORD, { ip: '2001:db8:fe00::1' }, other.device)).toMatchObject({ ok: true });
      expect(await w.signIn(EMAIL, PASSWORD, { ip: '2001:db8:fe01::1' }, device)).toMatchObject({ ok: true });

      // 90 days on, the cookie has expired: the ceiling holds against it
      w.advance(DEVICE_TTL_MS + MINUTE);
      await reachCeiling(w, EMAIL, 100);
      expect(await w.signIn(EMAIL, PASSWORD, { ip: '2001:db8:fe02::1' }, device)).toEqual(CEILING);
    });

    it('a stolen cookie is worth five guesses, not a way around the ceiling', async () => {
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      const { device } = await memberWithDevice(w);
      await reachCeiling(w, EMAIL);
      for (let i = 0; i < authLimits.signInPerDevice.max; i++)
        expect(await w.signIn(EMAIL, `thief ${i}`, { ip: network(200 + i) }, device)).toEqual(GENERIC);
      expect(await w.signIn(EMAIL, PASSWORD, { ip: network(300) }, device)).toEqual(CEILING);
      expect((await w.audit('auth.sign_in.locked')).at(-1)?.summary).toEqual({ reason: 'account', device: 'recognised' });
    });

    it('the second factor: a recognised device passes it when the account’s ceiling is reached; another browser does not', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { key } = await w.enrol(owner.token);
      w.advance(30 * SECOND);
      // the password alone completes nothing: no cookie yet
      const half = ok(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '203.0.113.50' }));
      expect(half).toMatchObject({ next: 'mfa', device: null });
      const laptop = await w.auth(half.token);
      const device = ok(
        await verifySecondFactor(w.ctx({ ip: '203.0.113.50' }), await w.member(owner.member.id), laptop.session, w.code(key)),
      ).device;
      w.rememberDevice(device);

      // someone who has the password spreads wrong codes over many /48s, then wrong passwords
      const theirs = await w.auth(tokenOf(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: network(90) })));
      const { max } = authLimits.mfaPerAccount;
      const perAddress = authLimits.mfaPerAccountAndIp.max;
      for (let i = 0; i < max; i++) {
        const answer = await verifySecondFactor(
          w.ctx({ ip: network(1 + Math.floor(i / perAddress)) }),
          await w.member(owner.member.id),
          theirs.session,
          w.code(key, 5),
        );
        expect(answer).toMatchObject({ ok: false, message: /not valid/ });
      }
      await reachCeiling(w, 'owner@lumenwork.example', 10);

      // a new browser: refused at the password
      expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '2001:db8:ffff::1' })).toEqual(CEILING);
      // the laptop, on another network: the password, then the second factor
      w.advance(30 * SECOND);
      const again = ok(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '2001:db8:fffe::1' }, device));
      expect(again).toMatchObject({ next: 'mfa', device: null });
      const session = (await w.auth(again.token)).session;
      // the same session without the cookie (a copied session token) is refused at the second factor's ceiling
      const without = await verifySecondFactor(w.ctx({ ip: '2001:db8:fffe::1' }), await w.member(owner.member.id), session, w.code(key));
      expect(without).toEqual({ ok: false, message: 'Too many attempts. Try again in 15 minutes.' });
      expect((await w.audit('auth.sign_in.locked')).at(-1)?.summary).toEqual({ reason: 'second factor for account' });
      const passed = await verifySecondFactor(
        w.ctx({ ip: '2001:db8:fffe::1' }, device),
        await w.member(owner.member.id),
        session,
        w.code(key),
      );
      expect(passed).toEqual({ ok: true, device: expect.any(String) });
      w.rememberDevice(passed.ok ? passed.device : null);
      expect((await w.auth(again.token)).session.mfaVerifiedAt).toEqual(w.now);
      expect((await w.audit('auth.mfa.verified')).at(-1)?.summary).toEqual({ device: 'recognised' });
    });

    it('an owner’s sign-in reset, disabling, a password change and signing out everywhere each forget every device', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { id, device } = await memberWithDevice(w);
      const recognised = async (cookie: string) => recognisedDevice(w.ctx().secret, cookie, await w.member(id), w.now) !== null;
      expect(await recognised(device)).toBe(true);
      const cookie = async () => must(ok(await w.signIn(EMAIL, PASSWORD, { ip: '203.0.113.50' })).device, 'a cookie');

      // signing out everywhere (by the member, keeping this session, or by an owner)
      const mine = await w.auth(tokenOf(await w.signIn(EMAIL, PASSWORD, { ip: '203.0.113.50' })));
      await revokeAllSessionsOf(w.ctx(), mine.staff, mine.staff, mine.session.id);
      expect(await recognised(device)).toBe(false);
      const second = await cookie();
      await revokeAllSessionsOf(w.ctx(), owner.member, await w.member(id));
      expect(await recognised(second)).toBe(false);

      // a password change
      const third = await cookie();
      const now = await w.auth(tokenOf(await w.signIn(EMAIL, PASSWORD, { ip: '203.0.113.50' })));
      ok(await changePassword(w.ctx(), now.staff, now.session, PASSWORD, `${PASSWORD} again`, `${PASSWORD} again`));
      expect(await recognised(third)).toBe(false);
      ok(await changePassword(w.ctx(), await w.member(id), now.session, `${PASSWORD} again`, PASSWORD, PASSWORD));

      // disabling (and enabling again does not bring them back)
      const fourth = await cookie();
      ok(await setStaffEnabled(w.ctx(), owner.member, id, false));
      ok(await setStaffEnabled(w.ctx(), owner.member, id, true));
      expect(await recognised(fourth)).toBe(false);

      // an owner's sign-in reset: the old cookie is refused at the ceiling, the one from setting the new password is not
      const fifth = await cookie();
      const reset = ok(await resetStaffSignIn(w.ctx(), owner.member, EMAIL));
      w.remember(reset.token);
      expect(await recognised(fifth)).toBe(false);
      const relinked = ok(await completeLink(w.ctx({ ip: '203.0.113.51' }), reset.token, PASSWORD, PASSWORD));
      w.remember(relinked.token);
      w.rememberDevice(relinked.device);
      await reachCeiling(w, EMAIL);
      expect(await w.signIn(EMAIL, PASSWORD, { ip: '2001:db8:ffff::1' }, fifth)).toEqual(CEILING);
      expect(await w.signIn(EMAIL, PASSWORD, { ip: '2001:db8:fffe::1' }, must(relinked.device, 'a cookie'))).toMatchObject({ ok: true });
    });
  });

  describe('second factor from many addresses', () => {
    it('wrong codes from one address leave the person their own; spread over many they reach the ceiling', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { key } = await w.enrol(owner.token);
      w.advance(30 * SECOND);
      const { session, staff } = await w.auth(tokenOf(await w.signIn('owner@lumenwork.example')));
      const wrong = () => w.code(key, 5);
      const check = async (ip: string, code: string) => verifySecondFactor(w.ctx({ ip }), await w.member(staff.id), session, code);
      for (let i = 0; i < 8; i++) await check('192.0.2.66', wrong());
      expect(await check('192.0.2.66', w.code(key))).toMatchObject({ ok: false, message: TOO_MANY });
      expect(await check('203.0.113.50', w.code(key))).toEqual({ ok: true, device: expect.any(String) });

      w.advance(30 * SECOND);
      const { max } = authLimits.mfaPerAccount;
      const perAddress = authLimits.mfaPerAccountAndIp.max;
      expect(max).toBeGreaterThan(perAddress);
      const second = (await w.auth(tokenOf(await w.signIn('owner@lumenwork.example')))).session;
      // The five from the first address count towards the ceiling too: a success does not reset it for the guesser.
      for (let i = perAddress; i < max; i++) {
        const answer = await verifySecondFactor(
          w.ctx({ ip: address(1 + Math.floor(i / perAddress)) }),
          await w.member(staff.id),
          second,
          wrong(),
        );
        expect(answer).toMatchObject({ ok: false, message: /not valid/ });
      }
      expect(await verifySecondFactor(w.ctx({ ip: '203.0.113.77' }), await w.member(staff.id), second, w.code(key))).toMatchObject({
        ok: false,
        message: TOO_MANY,
      });
      expect((await w.audit('auth.sign_in.locked')).at(-1)?.summary).toEqual({ reason: 'second factor for account' });
    });
  });

  describe('what owners see and clear', () => {
    /** The member's lock-out as the staff page reads it (one read of the connection's async handle). */
    const lockoutOf = async (w: World, member: { id: number; email: string }): Promise<Lockout | null> =>
      (await lockoutsOf(w.database, [member], w.now)).get(member.id) ?? null;

    it('names the addresses, the time and the ceiling; clearing is audited and lets the person in', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { member } = await w.activeStaff('viewer@lumenwork.example', 'viewer', owner.member);
      expect(await lockoutOf(w, member)).toBeNull();
      for (let i = 0; i < 5; i++) await w.signIn('viewer@lumenwork.example', `guess ${i}`, { ip: address(1) });
      for (let i = 0; i < 5; i++) await w.signIn('viewer@lumenwork.example', `guess ${i}`, { ip: address(2) });
      const start = w.now;
      expect(await lockoutOf(w, member)).toEqual({
        signIn: { addresses: 2, until: new Date(start.getTime() + 15 * MINUTE), ceilingUntil: null },
        secondFactor: { addresses: 0, until: null, ceilingUntil: null },
      });

      const { max } = authLimits.signInPerAccount;
      for (let i = 10; i < max; i++) await w.signIn('viewer@lumenwork.example', `guess ${i}`, { ip: address(1 + Math.floor(i / 5)) });
      const locked = await lockoutOf(w, member);
      expect(locked?.signIn).toEqual({
        addresses: max / 5,
        until: new Date(start.getTime() + 15 * MINUTE),
        ceilingUntil: new Date(start.getTime() + 15 * MINUTE),
      });
      expect(await w.signIn('viewer@lumenwork.example', PASSWORD, { ip: '203.0.113.50' })).toMatchObject({ ok: false });

      // Only those who manage staff clear a lock-out, and not one that is not there.
      expect(await clearLockout(w.ctx(), owner.member, owner.member.id)).toEqual({
        ok: false,
        message: 'owner@lumenwork.example is not locked out.',
      });
      const cleared = ok(await clearLockout(w.ctx({ ip: '203.0.113.1' }), owner.member, member.id));
      expect(cleared).toMatchObject({ ok: true });
      expect(await lockoutOf(w, member)).toBeNull();
      expect(await w.signIn('viewer@lumenwork.example', PASSWORD, { ip: '203.0.113.50' })).toMatchObject({ ok: true });
      expect(await w.audit('staff.lockout_cleared')).toMatchObject([
        {
          actor_type: 'staff',
          actor_id: owner.member.id,
          target: `staff:${member.id}`,
          ip: '203.0.113.1',
          summary: { email: 'viewer@lumenwork.example', signInAddresses: max / 5, accountCeiling: true, secondFactorAddresses: 0 },
        },
      ]);
    });

    it('forgets a lock-out whose window has passed', async () => {
      const w = await fresh();
      const { member } = await w.activeStaff('owner@lumenwork.example', 'owner');
      for (let i = 0; i < 5; i++) await w.signIn('owner@lumenwork.example', `guess ${i}`, { ip: address(1) });
      expect((await lockoutOf(w, member))?.signIn.addresses).toBe(1);
      w.advance(15 * MINUTE);
      expect(await lockoutOf(w, member)).toBeNull();
    });
  });
});
