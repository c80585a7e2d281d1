/**
 * The second factor through the console flows: enrolment, TOTP and
 * recovery codes at sign-in, replay, lock-out, and replacing the factor.
 */
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { changePassword, completeEnrolment, startEnrolment, verifySecondFactor } from '../../src/core/auth/console-auth.ts';
import { hashRecoveryCode, totpCounter } from '../../src/core/auth/totp.ts';
import { staffById } from '../../src/stores/staff.ts';
import { readRows } from '../helpers/engine-server.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { MINUTE, must, ok, PASSWORD, SECOND, tokenOf, useWorlds } from './auth-world.ts';

describe.each(enginesUnderTest())('on $name', (engine) => {
  const fresh = useWorlds(engine);

  describe('second factor', () => {
    it('enrols with a code from the key shown, keeping the key sealed and the recovery codes hashed', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { session, staff } = await w.auth(owner.token);
      const challenge = await startEnrolment(w.ctx(), staff, session);
      expect(challenge.keyText).toMatch(/^([A-Z2-7]{4} )+[A-Z2-7]{4}$/);
      expect(challenge.qrSvg.startsWith('<svg')).toBe(true);
      const key = decodeBase32IgnorePadding(challenge.keyText.replace(/ /g, ''));
      const base32 = challenge.keyText.replace(/ /g, '');
      w.remember(base32, Buffer.from(key).toString('base64'));
      expect(challenge.pending).not.toContain(base32);
      expect((await startEnrolment(w.ctx(), staff, session, challenge.pending)).keyText).toBe(challenge.keyText);

      // The pending key is bound to its session.
      const otherAuth = await w.auth(tokenOf(await w.signIn('owner@lumenwork.example')));
      expect((await completeEnrolment(w.ctx(), otherAuth.staff, otherAuth.session, challenge.pending, w.code(key))).ok).toBe(false);
      expect(await completeEnrolment(w.ctx(), staff, session, challenge.pending, w.code(key, 3))).toMatchObject({ ok: false });

      const done = ok(await completeEnrolment(w.ctx(), staff, session, challenge.pending, w.code(key)));
      w.remember(...done.recoveryCodes);
      expect(done.recoveryCodes).toHaveLength(10);
      for (const code of done.recoveryCodes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);

      const row = must(await w.database.read((r) => staffById(r, staff.id)), 'the staff row');
      const sealed = String(row.totpSecret);
      expect(sealed).toMatch(/^v1\./);
      for (const form of [base32, base32.toLowerCase(), Buffer.from(key).toString('base64'), Buffer.from(key).toString('hex')]) {
        expect(sealed).not.toContain(form);
      }
      expect(row.totpEnrolledAt).toEqual(w.now);
      expect(row.totpLastCounter).toBe(totpCounter(w.now));
      const stored = await readRows(w.database, (q) =>
        q.db.select({ codeHash: q.t.recoveryCodes.codeHash }).from(q.t.recoveryCodes).where(eq(q.t.recoveryCodes.staffId, staff.id)),
      );
      expect(stored.map((r) => r.codeHash).sort()).toEqual(done.recoveryCodes.map((c) => hashRecoveryCode(c, w.ctx().secret)).sort());
      expect((await w.auth(owner.token)).session.mfaVerifiedAt).toEqual(w.now);
      expect(await w.audit('auth.mfa.enrolled')).toMatchObject([{ actor_id: staff.id, summary: { backupCount: 10 } }]);
    });

    it('accepts a TOTP code once, a recovery code once, and nothing replayed', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { key, codes } = await w.enrol(owner.token);
      const signedIn = await w.signIn('owner@lumenwork.example');
      expect(signedIn).toMatchObject({ ok: true, next: 'mfa' });
      const token = tokenOf(signedIn);
      const { session, staff } = await w.auth(token);
      expect(session.mfaVerifiedAt).toBeNull();

      // The code used to enrol belongs to a step already used.
      expect((await verifySecondFactor(w.ctx(), staff, session, w.code(key))).ok).toBe(false);
      w.advance(30 * SECOND);
      const code = w.code(key);
      expect(await verifySecondFactor(w.ctx(), staff, session, code)).toEqual({ ok: true, device: expect.any(String) });
      expect((await w.auth(token)).session.mfaVerifiedAt).toEqual(w.now);
      // Replayed, whether the member is read again or the caller still holds the one read before the first use.
      expect((await verifySecondFactor(w.ctx(), await w.member(staff.id), session, code)).ok).toBe(false);
      expect((await verifySecondFactor(w.ctx(), staff, session, code)).ok).toBe(false);

      const [recovery] = codes;
      if (!recovery) throw new Error('no recovery code');
      const typed = recovery.toUpperCase().replace('-', ' ');
      expect(await verifySecondFactor(w.ctx(), await w.member(staff.id), session, typed)).toEqual({ ok: true, device: expect.any(String) });
      expect((await verifySecondFactor(w.ctx(), await w.member(staff.id), session, recovery)).ok).toBe(false);
      expect(await w.audit('auth.mfa.recovery_code_used')).toMatchObject([{ actor_id: staff.id, summary: { unusedLeft: 9 } }]);
      expect(await w.times('auth.mfa.failed')).toBe(4);
    });

    it('locks after five wrong codes, even for a right one', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { key } = await w.enrol(owner.token);
      w.advance(30 * SECOND);
      const { session, staff } = await w.auth(owner.token);
      const wrong = w.code(key, 5);
      for (let i = 0; i < 5; i++)
        expect(await verifySecondFactor(w.ctx(), staff, session, wrong)).toMatchObject({ ok: false, message: /not valid/ });
      expect(await verifySecondFactor(w.ctx(), staff, session, w.code(key))).toEqual({
        ok: false,
        message: 'Too many attempts. Try again in 15 minutes.',
      });
      expect(await w.times('auth.mfa.failed')).toBe(5);
      expect(await w.audit('auth.sign_in.locked')).toMatchObject([{ target: `staff:${staff.id}`, summary: { reason: 'second factor' } }]);
      w.advance(15 * MINUTE);
      expect(await verifySecondFactor(w.ctx(), await w.member(staff.id), session, w.code(key))).toEqual({
        ok: true,
        device: expect.any(String),
      });
    });

    it('does not let parallel wrong codes slip past the limit', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { key } = await w.enrol(owner.token);
      w.advance(30 * SECOND);
      const { session, staff } = await w.auth(owner.token);
      const wrong = w.code(key, 5);
      // The check, the code and the count are one transaction each: twelve at once are taken one after the other.
      const answers = await Promise.all(Array.from({ length: 12 }, () => verifySecondFactor(w.ctx(), staff, session, wrong)));
      expect(answers.filter((a) => !a.ok && /not valid/.test(a.message))).toHaveLength(5);
      expect(answers.filter((a) => !a.ok && a.message === 'Too many attempts. Try again in 15 minutes.')).toHaveLength(7);
      expect(await w.times('auth.mfa.failed')).toBe(5);
    });

    it('cannot be replaced by someone who has only the password', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { key, keyText } = await w.enrol(owner.token);
      const sealedBefore = (await w.member(owner.member.id)).totpSecret;

      const intruder = tokenOf(await w.signIn('owner@lumenwork.example'));
      const { session, staff } = await w.auth(intruder);
      const challenge = await startEnrolment(w.ctx(), staff, session);
      w.remember(challenge.keyText.replace(/ /g, ''));
      const theirs = decodeBase32IgnorePadding(challenge.keyText.replace(/ /g, ''));
      expect((await completeEnrolment(w.ctx(), staff, session, challenge.pending, w.code(theirs))).ok).toBe(false);
      expect((await w.member(owner.member.id)).totpSecret).toBe(sealedBefore);
      expect((await w.auth(intruder)).session.mfaVerifiedAt).toBeNull();

      // With the second factor given, a new phone can be enrolled.
      w.advance(30 * SECOND);
      ok(await verifySecondFactor(w.ctx(), staff, session, w.code(key)));
      const verified = await w.auth(intruder);
      const again = await startEnrolment(w.ctx(), verified.staff, verified.session);
      w.remember(again.keyText.replace(/ /g, ''));
      expect(again.keyText).not.toBe(keyText);
      const newKey = decodeBase32IgnorePadding(again.keyText.replace(/ /g, ''));
      const done = ok(await completeEnrolment(w.ctx(), verified.staff, verified.session, again.pending, w.code(newKey)));
      w.remember(...done.recoveryCodes);
      expect((await w.member(owner.member.id)).totpSecret).not.toBe(sealedBefore);
    });

    it('leaves no password, key, recovery code or token in the audit log over a whole journey', async () => {
      const w = await fresh();
      const owner = await w.activeStaff('owner@lumenwork.example', 'owner');
      const { key, codes } = await w.enrol(owner.token);
      w.advance(30 * SECOND);
      const token = tokenOf(await w.signIn('owner@lumenwork.example'));
      const first = await w.auth(token);
      ok(await verifySecondFactor(w.ctx(), first.staff, first.session, w.code(key)));
      const second = await w.auth(tokenOf(await w.signIn('owner@lumenwork.example')));
      ok(await verifySecondFactor(w.ctx(), second.staff, second.session, codes[3] ?? ''));
      expect((await verifySecondFactor(w.ctx(), await w.member(second.staff.id), second.session, 'not-a-code')).ok).toBe(false);
      await w.signIn('owner@lumenwork.example', 'a wrong password guess');
      const next = 'marmalade harbour quietly 7';
      w.remember(next);
      ok(await changePassword(w.ctx(), await w.member(first.staff.id), first.session, PASSWORD, next, next));

      const json = (await w.auditText()).toLowerCase();
      expect(json).toContain('owner@lumenwork.example');
      expect((await w.audit()).map((r) => r.action)).toEqual([
        'staff.created',
        'auth.link.used',
        'auth.password.set',
        'auth.mfa.enrolled',
        'auth.sign_in.succeeded',
        'auth.mfa.verified',
        'auth.sign_in.succeeded',
        'auth.mfa.recovery_code_used',
        'auth.mfa.failed',
        'auth.sign_in.failed',
        'auth.password.changed',
      ]);
      // the password, both forms of the key, ten codes with and without their dash, link and session tokens
      expect(w.secrets.size).toBeGreaterThan(25);
      for (const secret of w.secrets) expect(json, secret).not.toContain(secret.toLowerCase());
    });
  });
});
