/**
 * The console's security flows (src/core/auth/console-auth.ts) against an
 * in-memory database with an injected clock: one-time links, sign-in and
 * its limits, password and staff changes, and what each leaves in the audit
 * log (and never leaves there: see auth-world.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { changePassword, changeRole, completeLink, inviteStaff, setStaffEnabled } from '../../src/core/auth/console-auth.ts';
import { checkLink as checkLinkIn } from '../../src/core/auth/links.ts';
import { validateSessionToken } from '../../src/core/auth/session.ts';
import { sessionsOf } from '../../src/stores/sessions.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { GENERIC, HOUR, MINUTE, ok, PASSWORD, SECOND, tokenOf, useWorlds } from './auth-world.ts';

const checkLink = (database: Database, token: string, now: Date) => database.read((r) => checkLinkIn(r, token, now));

describe.each(enginesUnderTest())('on $name', (engine) => {
  const fresh = useWorlds(engine);

  describe('first owner and one-time links', () => {
    it('sets a password once, through a link, and refuses weak or mismatched ones', async () => {
      const w = await fresh();
      const invite = ok(await inviteStaff(w.ctx(), null, ' Owner@Lumenwork.example ', 'owner'));
      w.remember(invite.token);
      expect(invite.member).toMatchObject({ email: 'owner@lumenwork.example', role: 'owner', status: 'invited', passwordHash: null });

      for (const [password, confirm, message] of [
        ['password1234', 'password1234', /commonly used/],
        ['Password123!', 'Password123!', /commonly used/],
        ['short', 'short', /at least 12/],
        ['my owner@ password', 'my owner@ password', /email/],
        [PASSWORD, `${PASSWORD}!`, /do not match/],
      ] as const) {
        const result = await completeLink(w.ctx(), invite.token, password, confirm);
        expect(result.ok, password).toBe(false);
        if (!result.ok) expect(result.message).toMatch(message);
      }
      expect((await checkLink(w.database, invite.token, w.now)).ok).toBe(true);
      expect((await w.member(invite.member.id)).status).toBe('invited');

      const done = ok(await completeLink(w.ctx(), invite.token, PASSWORD, PASSWORD));
      w.remember(done.token);
      expect(done.next).toBe('enrol');
      const { staff } = await w.auth(done.token);
      expect(staff).toMatchObject({ id: invite.member.id, status: 'active' });
      expect(staff.passwordHash?.startsWith('$argon2id$')).toBe(true);

      const again = await completeLink(w.ctx(), invite.token, 'another good passphrase', 'another good passphrase');
      expect(again).toEqual({ ok: false, message: expect.stringContaining('already been used') });
      expect((await w.audit()).map((r) => r.action)).toEqual(['staff.created', 'auth.link.used', 'auth.password.set']);
      expect((await w.audit('staff.created'))[0]).toMatchObject({ actor_type: 'system', target: `staff:${staff.id}`, ip: '203.0.113.9' });
      expect((await w.audit('auth.link.used'))[0]).toMatchObject({ actor_id: staff.id, summary: { purpose: 'setup' } });
    });

    it('refuses an expired or forged link, and a second account for the same address', async () => {
      const w = await fresh();
      const invite = ok(await inviteStaff(w.ctx(), null, 'owner@lumenwork.example', 'owner'));
      w.remember(invite.token);
      const [id] = invite.token.split('.');
      const forged = await completeLink(w.ctx(), `${id}.${'a'.repeat(24)}`, PASSWORD, PASSWORD);
      expect(forged).toEqual({ ok: false, message: expect.stringContaining('not valid') });
      w.advance(24 * HOUR);
      const late = await completeLink(w.ctx(), invite.token, PASSWORD, PASSWORD);
      expect(late).toEqual({ ok: false, message: expect.stringContaining('expired') });

      const reissued = ok(await inviteStaff(w.ctx(), null, 'owner@lumenwork.example', 'owner'));
      w.remember(reissued.token);
      const { member } = reissued;
      ok(await completeLink(w.ctx(), reissued.token, PASSWORD, PASSWORD));
      expect(await inviteStaff(w.ctx(), await w.member(member.id), 'OWNER@lumenwork.example', 'viewer')).toEqual({
        ok: false,
        message: 'owner@lumenwork.example already has an account.',
      });
      expect((await inviteStaff(w.ctx(), null, 'not an address', 'owner')).ok).toBe(false);
    });
  });

  describe('signing in', () => {
    it('answers a wrong password and an unknown address identically', async () => {
      const w = await fresh();
      const { member } = await w.activeStaff('owner@lumenwork.example', 'owner');
      expect(await w.signIn('owner@lumenwork.example', 'tangerine oxbow lamplight 43')).toEqual(GENERIC);
      expect(await w.signIn('nobody@lumenwork.example', PASSWORD)).toEqual(GENERIC);
      expect(await w.signIn('not-an-address', PASSWORD)).toEqual(GENERIC);
      const good = await w.signIn('  OWNER@Lumenwork.Example ');
      expect(good).toMatchObject({ ok: true, next: 'enrol' });

      const failed = await w.audit('auth.sign_in.failed');
      expect(failed.map((r) => [r.target, r.summary.reason])).toEqual([
        [`staff:${member.id}`, 'password'],
        [null, 'unknown account'],
        [null, 'unknown account'],
      ]);
      expect(failed.every((r) => r.actor_type === 'anonymous')).toBe(true);
      expect(JSON.stringify(await w.audit('auth.sign_in.failed'))).not.toContain('nobody');
      expect(await w.audit('auth.sign_in.succeeded')).toMatchObject([{ actor_id: member.id, summary: { next: 'enrol' } }]);
    });

    it('answers an address holding a broken character like any unknown one, and records it', async () => {
      // A lone UTF-16 surrogate, as a script can send: PostgreSQL's jsonb refused it in the entry's summary.
      const w = await fresh();
      expect(await w.signIn('nobody@lumen\udc00work.example', PASSWORD)).toEqual(GENERIC);
      expect(await w.audit('auth.sign_in.failed')).toMatchObject([
        { target: null, summary: { reason: 'unknown account', emailDomain: 'lumen\ufffdwork.example' } },
      ]);
    });

    it('refuses invited and disabled accounts with the same message', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const viewer = await w.activeStaff('viewer@lumenwork.example', 'viewer', owner.member);
      expect(await w.signIn('viewer@lumenwork.example')).toMatchObject({ ok: true, next: 'console' });
      w.remember(ok(await inviteStaff(w.ctx(), owner.member, 'invited@lumenwork.example', 'viewer')).token);
      expect(await w.signIn('invited@lumenwork.example')).toEqual(GENERIC);
      ok(await setStaffEnabled(w.ctx(), owner.member, viewer.member.id, false));
      expect(await w.signIn('viewer@lumenwork.example')).toEqual(GENERIC);
    });

    it('locks an account from an address after five failures there for fifteen minutes, even for the right password', async () => {
      const w = await fresh();
      const { member } = await w.activeStaff('owner@lumenwork.example', 'owner');
      await w.activeStaff('other@lumenwork.example', 'viewer', member);
      for (let i = 0; i < 5; i++) {
        expect(await w.signIn('owner@lumenwork.example', `wrong guess number ${i}`)).toEqual(GENERIC);
        w.advance(10 * SECOND);
      }
      const locked = await w.signIn('owner@lumenwork.example', 'wrong guess again');
      expect(locked).toEqual({ ok: false, message: 'Too many attempts. Try again in 15 minutes.' });
      expect(await w.signIn('owner@lumenwork.example')).toEqual(locked);
      // Only that account: another one from the same address still signs in.
      expect(await w.signIn('other@lumenwork.example')).toMatchObject({ ok: true });
      w.advance(10 * MINUTE);
      expect(await w.signIn('owner@lumenwork.example')).toEqual({ ok: false, message: 'Too many attempts. Try again in 5 minutes.' });
      w.advance(5 * MINUTE - 50 * SECOND);
      expect(await w.signIn('owner@lumenwork.example')).toMatchObject({ ok: true });
      // one entry; the repeats within its window are counted (audit/repeats.ts)
      expect(await w.audit('auth.sign_in.locked')).toMatchObject([{ target: `staff:${member.id}`, summary: { reason: 'account and ip' } }]);
      expect(await w.times('auth.sign_in.locked')).toBe(3);
    });

    it('locks an unknown address the same way, so the lock reveals nothing', async () => {
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      for (let i = 0; i < 5; i++) await w.signIn('nobody@lumenwork.example', `guess ${i} of many`);
      expect(await w.signIn('nobody@lumenwork.example')).toEqual({ ok: false, message: 'Too many attempts. Try again in 15 minutes.' });
    });

    it('does not let parallel guesses slip past the account limit', async () => {
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => w.signIn('owner@lumenwork.example', `parallel guess ${i}`)));
      expect(results.filter((r) => !r.ok && r.message === GENERIC.message)).toHaveLength(5);
      expect(results.filter((r) => !r.ok && r.message.startsWith('Too many attempts'))).toHaveLength(7);
    });

    it('limits attempts per address across accounts', async () => {
      const w = await fresh();
      await w.activeStaff('owner@lumenwork.example', 'owner');
      for (let i = 0; i < 30; i++) expect(await w.signIn(`person${i % 10}@lumenwork.example`, `guess ${i} of many`)).toEqual(GENERIC);
      expect(await w.signIn('owner@lumenwork.example')).toEqual({ ok: false, message: 'Too many attempts. Try again in 15 minutes.' });
      expect((await w.audit('auth.sign_in.locked')).at(-1)?.summary).toEqual({ reason: 'ip' });
      expect(await w.signIn('owner@lumenwork.example', PASSWORD, { ip: '198.51.100.7' })).toMatchObject({ ok: true });
    });
  });

  describe('account and staff changes', () => {
    it('a password change ends the other sessions and keeps this one', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const others = [tokenOf(await w.signIn('owner@lumenwork.example')), tokenOf(await w.signIn('owner@lumenwork.example'))];
      const { session, staff } = await w.auth(owner.token);
      const next = 'marmalade harbour quietly 7';
      w.remember(next);
      expect(await changePassword(w.ctx(), staff, session, 'not my password at all', next, next)).toEqual({
        ok: false,
        message: 'Your current password is not correct.',
      });
      expect((await changePassword(w.ctx(), staff, session, PASSWORD, next, `${next}.`)).ok).toBe(false);
      expect(await changePassword(w.ctx(), staff, session, PASSWORD, 'Password2024!', 'Password2024!')).toMatchObject({
        ok: false,
        message: /commonly/,
      });
      expect(await changePassword(w.ctx(), staff, session, PASSWORD, next, next)).toEqual({ ok: true, endedSessions: 2 });
      expect((await w.auth(owner.token)).session.id).toBe(session.id);
      for (const other of others) expect(await validateSessionToken(w.database, other, w.ctx().policy, w.now)).toBeNull();
      expect(await w.signIn('owner@lumenwork.example')).toEqual(GENERIC);
      expect(await w.signIn('owner@lumenwork.example', next)).toMatchObject({ ok: true });
      expect(await w.audit('auth.password.changed')).toMatchObject([{ actor_id: staff.id, summary: { otherSessionsEnded: 2 } }]);
    });

    it('keeps at least one owner', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      expect(await changeRole(w.ctx(), owner.member, owner.member.id, 'admin')).toEqual({
        ok: false,
        message: 'This is the only active owner; make someone else an owner first.',
      });
      const second = await w.activeStaff('second@lumenwork.example', 'admin', owner.member);
      expect(await changeRole(w.ctx(), owner.member, second.member.id, 'owner')).toEqual({ ok: true });
      expect(await validateSessionToken(w.database, second.token, w.ctx().policy, w.now)).toBeNull();
      expect(await changeRole(w.ctx(), owner.member, owner.member.id, 'admin')).toEqual({ ok: true });
      expect((await w.member(owner.member.id)).role).toBe('admin');
      expect((await changeRole(w.ctx(), await w.member(owner.member.id), second.member.id, 'viewer')).ok).toBe(false);
      expect((await setStaffEnabled(w.ctx(), await w.member(owner.member.id), second.member.id, false)).ok).toBe(false);
      expect((await w.audit('staff.role_changed')).map((r) => r.summary)).toEqual([
        { before: { role: 'admin' }, after: { role: 'owner' }, sessionsEnded: 1 },
        { before: { role: 'owner' }, after: { role: 'admin' }, sessionsEnded: 1 },
      ]);
    });

    it('disabling ends the sessions of the one disabled, and nobody disables themselves', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const viewer = await w.activeStaff('viewer@lumenwork.example', 'viewer', owner.member);
      await w.signIn('viewer@lumenwork.example');
      expect(await setStaffEnabled(w.ctx(), owner.member, owner.member.id, false)).toEqual({
        ok: false,
        message: 'You cannot disable your own account.',
      });
      expect(await setStaffEnabled(w.ctx(), owner.member, viewer.member.id, false)).toEqual({ ok: true });
      expect(await validateSessionToken(w.database, viewer.token, w.ctx().policy, w.now)).toBeNull();
      expect(await w.database.read((r) => sessionsOf(r, viewer.member.id))).toEqual([]);
      expect((await w.auth(owner.token)).staff.id).toBe(owner.member.id);
      expect(await setStaffEnabled(w.ctx(), owner.member, viewer.member.id, true)).toEqual({ ok: true });
      expect((await w.member(viewer.member.id)).status).toBe('active');
      expect(await w.audit('staff.disabled')).toMatchObject([
        { actor_id: owner.member.id, target: `staff:${viewer.member.id}`, summary: { after: { status: 'disabled' }, sessionsEnded: 2 } },
      ]);
      expect(await w.audit('staff.enabled')).toMatchObject([{ summary: { before: { status: 'disabled' }, after: { status: 'active' } } }]);
      expect(await w.audit('staff.invited')).toMatchObject([
        { actor_id: owner.member.id, summary: { email: 'viewer@lumenwork.example', role: 'viewer' } },
      ]);
    });
  });
});
