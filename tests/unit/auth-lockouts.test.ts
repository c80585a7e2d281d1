/**
 * Lock-outs of the console (src/core/auth/lockouts.ts): guesses are limited
 * per account and source address, per source across accounts, and per
 * account across every source under a much higher ceiling, so that a
 * stranger who knows a staff address cannot lock that person out from one
 * address. Owners see who is limited and may clear it (audited).
 */
import { describe, expect, it } from 'vitest';
import { clearLockout, verifySecondFactor } from '../../src/core/auth/console-auth.ts';
import { lockoutOf, sourceOf } from '../../src/core/auth/lockouts.ts';
import { authLimits } from '../../src/core/auth/rate-limit.ts';
import { GENERIC, MINUTE, ok, PASSWORD, SECOND, tokenOf, useWorlds } from './auth-world.ts';

const fresh = useWorlds();
const TOO_MANY = /^Too many attempts\. Try again in \d+ minutes?\.$/;
const address = (i: number) => `198.51.100.${i}`;

describe('signing in from many addresses', () => {
  it('one address failing again and again does not stop the person signing in from theirs', async () => {
    const w = fresh();
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
    expect(w.times('auth.sign_in.failed')).toBe(5);
    expect(w.audit('auth.sign_in.failed').every((r) => r.target === `staff:${member.id}`)).toBe(true);
    const locked = w.audit('auth.sign_in.locked');
    expect(locked.length).toBeGreaterThan(0);
    expect(locked.every((r) => r.summary.reason === 'account and ip' && r.target === `staff:${member.id}`)).toBe(true);
  });

  it('a guesser spread over many addresses reaches the account ceiling, which holds even for the right password', async () => {
    const w = fresh();
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
    expect(w.audit('auth.sign_in.locked').at(-1)).toMatchObject({ target: `staff:${member.id}`, summary: { reason: 'account' } });
    // The ceiling is per account: someone else signs in from the same addresses.
    await w.activeStaff('other@lumenwork.example', 'viewer', member);
    expect(await w.signIn('other@lumenwork.example', PASSWORD, { ip: address(1) })).toMatchObject({ ok: true });
    w.advance(15 * MINUTE);
    expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '203.0.113.50' })).toMatchObject({ ok: true });
  });

  it('parallel guesses from many addresses do not slip past the ceiling', async () => {
    const w = fresh();
    await w.activeStaff('owner@lumenwork.example', 'owner');
    const { max } = authLimits.signInPerAccount;
    const results = await Promise.all(
      Array.from({ length: max + 20 }, (_, i) => w.signIn('owner@lumenwork.example', `parallel ${i}`, { ip: address(1 + (i % 40)) })),
    );
    expect(results.filter((r) => !r.ok && r.message === GENERIC.message)).toHaveLength(max);
    expect(results.filter((r) => !r.ok && TOO_MANY.test(r.message))).toHaveLength(20);
  });

  it('counts an IPv6 client by its /64, so one network cannot pose as many addresses', async () => {
    expect(sourceOf('2001:db8:1:2::5')).toBe(sourceOf('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(sourceOf('2001:db8:1:2::5')).not.toBe(sourceOf('2001:db8:1:3::5'));
    expect(sourceOf('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(sourceOf('198.51.100.7')).toBe('198.51.100.7');
    expect(sourceOf(null)).toBe('unknown');
    const w = fresh();
    await w.activeStaff('owner@lumenwork.example', 'owner');
    for (let i = 1; i <= 5; i++) await w.signIn('owner@lumenwork.example', `v6 guess ${i}`, { ip: `2001:db8:1:2::${i.toString(16)}` });
    expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '2001:db8:1:2:abcd::1' })).toMatchObject({ ok: false });
    expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '2001:db8:9:9::1' })).toMatchObject({ ok: true });
  });
});

describe('second factor from many addresses', () => {
  it('wrong codes from one address leave the person their own; spread over many they reach the ceiling', async () => {
    const w = fresh();
    const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
    const { key } = await w.enrol(owner.token);
    w.advance(30 * SECOND);
    const { session, staff } = w.auth(tokenOf(await w.signIn('owner@lumenwork.example')));
    const wrong = () => w.code(key, 5);
    const check = (ip: string, code: string) => verifySecondFactor(w.ctx({ ip }), w.member(staff.id), session, code);
    for (let i = 0; i < 8; i++) check('192.0.2.66', wrong());
    expect(check('192.0.2.66', w.code(key))).toMatchObject({ ok: false, message: TOO_MANY });
    expect(check('203.0.113.50', w.code(key))).toEqual({ ok: true });

    w.advance(30 * SECOND);
    const { max } = authLimits.mfaPerAccount;
    const perAddress = authLimits.mfaPerAccountAndIp.max;
    expect(max).toBeGreaterThan(perAddress);
    const second = w.auth(tokenOf(await w.signIn('owner@lumenwork.example'))).session;
    // The five from the first address count towards the ceiling too: a success does not reset it for the guesser.
    for (let i = perAddress; i < max; i++) {
      const answer = verifySecondFactor(w.ctx({ ip: address(1 + Math.floor(i / perAddress)) }), w.member(staff.id), second, wrong());
      expect(answer).toMatchObject({ ok: false, message: /not valid/ });
    }
    expect(verifySecondFactor(w.ctx({ ip: '203.0.113.77' }), w.member(staff.id), second, w.code(key))).toMatchObject({
      ok: false,
      message: TOO_MANY,
    });
    expect(w.audit('auth.sign_in.locked').at(-1)?.summary).toEqual({ reason: 'second factor for account' });
  });
});

describe('what owners see and clear', () => {
  it('names the addresses, the time and the ceiling; clearing is audited and lets the person in', async () => {
    const w = fresh();
    const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
    const { member } = await w.activeStaff('viewer@lumenwork.example', 'viewer', owner.member);
    expect(lockoutOf(w.db, member, w.now)).toBeNull();
    for (let i = 0; i < 5; i++) await w.signIn('viewer@lumenwork.example', `guess ${i}`, { ip: address(1) });
    for (let i = 0; i < 5; i++) await w.signIn('viewer@lumenwork.example', `guess ${i}`, { ip: address(2) });
    const start = w.now;
    expect(lockoutOf(w.db, member, w.now)).toEqual({
      signIn: { addresses: 2, until: new Date(start.getTime() + 15 * MINUTE), ceilingUntil: null },
      secondFactor: { addresses: 0, until: null, ceilingUntil: null },
    });

    const { max } = authLimits.signInPerAccount;
    for (let i = 10; i < max; i++) await w.signIn('viewer@lumenwork.example', `guess ${i}`, { ip: address(1 + Math.floor(i / 5)) });
    const locked = lockoutOf(w.db, member, w.now);
    expect(locked?.signIn).toEqual({
      addresses: max / 5,
      until: new Date(start.getTime() + 15 * MINUTE),
      ceilingUntil: new Date(start.getTime() + 15 * MINUTE),
    });
    expect(await w.signIn('viewer@lumenwork.example', PASSWORD, { ip: '203.0.113.50' })).toMatchObject({ ok: false });

    // Only those who manage staff clear a lock-out, and not one that is not there.
    expect(clearLockout(w.ctx(), owner.member, owner.member.id)).toEqual({
      ok: false,
      message: 'owner@lumenwork.example is not locked out.',
    });
    const cleared = ok(clearLockout(w.ctx({ ip: '203.0.113.1' }), owner.member, member.id));
    expect(cleared).toMatchObject({ ok: true });
    expect(lockoutOf(w.db, member, w.now)).toBeNull();
    expect(await w.signIn('viewer@lumenwork.example', PASSWORD, { ip: '203.0.113.50' })).toMatchObject({ ok: true });
    expect(w.audit('staff.lockout_cleared')).toMatchObject([
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
    const w = fresh();
    const { member } = await w.activeStaff('owner@lumenwork.example', 'owner');
    for (let i = 0; i < 5; i++) await w.signIn('owner@lumenwork.example', `guess ${i}`, { ip: address(1) });
    expect(lockoutOf(w.db, member, w.now)?.signIn.addresses).toBe(1);
    w.advance(15 * MINUTE);
    expect(lockoutOf(w.db, member, w.now)).toBeNull();
  });
});
