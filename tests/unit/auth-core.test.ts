/**
 * The staff console's security primitives, checked the way a reviewer
 * would: password policy and hashing, sealing values at rest, TOTP and
 * recovery codes (sessions, links and rate limits: auth-sessions.test.ts).
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { generateHOTP, generateTOTP } from '@oslojs/otp';
import { describe, expect, it, vi } from 'vitest';
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN, passwordProblem, verifyPassword } from '../../src/core/auth/password.ts';
import {
  generateRecoveryCodes,
  generateTotpKey,
  hashRecoveryCode as hashRecoveryCodeWith,
  matchTotp,
  totpCounter,
  totpKeyText,
  totpKeyUri,
} from '../../src/core/auth/totp.ts';
import { keyId, seal, unseal } from '../../src/core/crypto/seal.ts';

const T0 = new Date('2026-03-02T09:00:10.000Z');
const SECOND = 1000;
const at = (ms: number) => new Date(T0.getTime() + ms);

describe('password policy', () => {
  it.each([
    ['too short', 'Tz9#kq!mw2', /at least 12/],
    ['too long', 'tangerine oxbow lamplight '.repeat(10).slice(0, PASSWORD_MAX + 1), /at most 256/],
    ['a common password', 'password1234', /commonly used/],
    ['a common password with capital and symbols', 'Password123!', /commonly used/],
    ['a keyboard walk with digits', 'qwertyuiop12', /commonly used/],
    ['a common password in upper case', 'LETMEIN12345', /commonly used/],
    ['a common password with leading decoration', '2024!!iloveyou', /commonly used/],
    ['too few different characters', 'xyzxyzxyzxyzxyz', /different characters/],
  ])('refuses %s', (_what, password, message) => {
    expect(passwordProblem(password)).toMatch(message);
  });

  it('refuses the email local part inside the password, whatever its case', () => {
    expect(passwordProblem('my name is JANE.DOE ok', 'Jane.Doe@lumenwork.example')).toMatch(/email/);
    expect(passwordProblem('my name is jane.doe ok')).toBeNull();
  });

  it('accepts a good passphrase at the limits', () => {
    expect(passwordProblem('tangerine oxbow lamplight 42', 'jane.doe@lumenwork.example')).toBeNull();
    expect(passwordProblem('vivid-orca-17')).toBeNull();
    expect(PASSWORD_MIN).toBe(12);
    expect(passwordProblem('Tz9#kq!mw2vL')).toBeNull();
    expect(passwordProblem('tangerine oxbow lamplight '.repeat(10).slice(0, PASSWORD_MAX))).toBeNull();
  });

  it('hashes with argon2id at OWASP parameters and verifies', async () => {
    const password = 'tangerine oxbow lamplight 42';
    const hash = await hashPassword(password);
    expect(hash.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(hash).not.toContain(password);
    expect(await hashPassword(password)).not.toBe(hash);
    expect(await verifyPassword(hash, password)).toBe(true);
    expect(await verifyPassword(hash, 'tangerine oxbow lamplight 43')).toBe(false);
    expect(await verifyPassword('not a hash', password)).toBe(false);
  });
});

describe('sealing values at rest', () => {
  const key = randomBytes(32);
  const context = 'staff:4:totp';

  it('round-trips, with a fresh IV and the key named', () => {
    const sealed = seal(key, 'JBSWY3DPEHPK3PXP', context);
    expect(sealed).toMatch(/^v1\.[0-9a-f]{8}\.[\w-]+\.[\w-]+$/);
    expect(sealed.split('.')[1]).toBe(keyId(key));
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(seal(key, 'JBSWY3DPEHPK3PXP', context)).not.toBe(sealed);
    expect(unseal([key], sealed, context)).toBe('JBSWY3DPEHPK3PXP');
  });

  it('refuses another context', () => {
    const sealed = seal(key, 'secret', context);
    expect(() => unseal([key], sealed, 'staff:5:totp')).toThrow();
  });

  it('refuses a tampered ciphertext, IV or tag', () => {
    const sealed = seal(key, 'a value worth protecting', context);
    const [v, kid, iv, body] = sealed.split('.');
    if (!v || !kid || !iv || !body) throw new Error('bad sealed format');
    const flip = (part: string, index: number) => {
      const bytes = Buffer.from(part, 'base64url');
      bytes[index] = (bytes[index] ?? 0) ^ 1;
      return bytes.toString('base64url');
    };
    expect(() => unseal([key], [v, kid, iv, flip(body, 0)].join('.'), context)).toThrow();
    expect(() => unseal([key], [v, kid, iv, flip(body, Buffer.from(body, 'base64url').length - 1)].join('.'), context)).toThrow();
    expect(() => unseal([key], [v, kid, flip(iv, 0), body].join('.'), context)).toThrow();
    expect(() => unseal([key], 'v1.abc', context)).toThrow(/malformed/);
    expect(() => unseal([key], sealed.replace(/^v1/, 'v2'), context)).toThrow(/malformed/);
  });

  it('refuses a truncated authentication tag', () => {
    // GCM tags are prefixes of one another: a 4-byte tag over an empty plaintext is
    // valid GCM, and must not be accepted, or a forgery needs only 2^32 tries.
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(context));
    cipher.final();
    const shortTag = cipher.getAuthTag().subarray(0, 4);
    const forged = ['v1', keyId(key), iv.toString('base64url'), shortTag.toString('base64url')].join('.');
    expect(() => unseal([key], forged, context)).toThrow();
  });

  it('names an unknown key and opens values sealed under a rotated-out key', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealed = seal(oldKey, 'kept across rotation', context);
    expect(() => unseal([newKey], sealed, context)).toThrow(keyId(oldKey));
    expect(unseal([newKey, oldKey], sealed, context)).toBe('kept across rotation');
    const resealed = seal(newKey, unseal([newKey, oldKey], sealed, context), context);
    expect(resealed.split('.')[1]).toBe(keyId(newKey));
    expect(unseal([newKey], resealed, context)).toBe('kept across rotation');
  });
});

describe('TOTP', () => {
  const key = generateTotpKey();
  const now = T0;
  const step = totpCounter(now);
  const code = (offset: number) => generateHOTP(key, BigInt(step + offset), 6);

  it('uses 20-byte keys and the RFC 6238 time steps', () => {
    expect(key).toHaveLength(20);
    expect(generateTotpKey()).not.toEqual(key);
    // RFC 6238 appendix B (SHA-1), last six digits of the eight-digit values.
    const rfcKey = new TextEncoder().encode('12345678901234567890');
    expect(matchTotp(rfcKey, '287082', new Date(59 * SECOND), null)).toBe(1);
    expect(matchTotp(rfcKey, '081804', new Date(1111111109 * SECOND), null)).toBe(37037036);
    expect(matchTotp(rfcKey, '005924', new Date(1234567890 * SECOND), null)).toBe(41152263);
    expect(matchTotp(rfcKey, '279037', new Date(2000000000 * SECOND), null)).toBe(66666666);
  });

  it('agrees with an authenticator computing the code from the clock', () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(now);
      expect(matchTotp(key, generateTOTP(key, 30, 6), now, null)).toBe(step);
    } finally {
      vi.useRealTimers();
    }
  });

  it('accepts the current step and one either side, not two', () => {
    expect(matchTotp(key, code(0), now, null)).toBe(step);
    expect(matchTotp(key, code(-1), now, null)).toBe(step - 1);
    expect(matchTotp(key, code(1), now, null)).toBe(step + 1);
    expect(matchTotp(key, code(-2), now, null)).toBeNull();
    expect(matchTotp(key, code(2), now, null)).toBeNull();
    expect(matchTotp(key, code(0), at(2 * 30 * SECOND), null)).toBeNull();
  });

  it('never accepts a step at or before the last one used', () => {
    expect(matchTotp(key, code(0), now, step)).toBeNull();
    expect(matchTotp(key, code(-1), now, step)).toBeNull();
    expect(matchTotp(key, code(1), now, step)).toBe(step + 1);
    expect(matchTotp(key, code(0), now, step + 1)).toBeNull();
    expect(matchTotp(key, code(1), now, step + 1)).toBeNull();
  });

  it('takes six digits, spaces allowed, and nothing else', () => {
    const good = code(0);
    expect(matchTotp(key, ` ${good.slice(0, 3)} ${good.slice(3)} `, now, null)).toBe(step);
    for (const bad of ['', '12345', '1234567', '12345a', 'abcdef', `${good}0`, `-${good.slice(1)}`, '１２３４５６']) {
      expect(matchTotp(key, bad, now, null)).toBeNull();
    }
  });

  it('shows the key as grouped base32 and in an otpauth URI', () => {
    const text = totpKeyText(key);
    expect(text).toMatch(/^([A-Z2-7]{4} )+[A-Z2-7]{4}$/);
    expect(decodeBase32IgnorePadding(text.replace(/ /g, ''))).toEqual(key);
    const uri = new URL(totpKeyUri('Lumenwork', 'jane@lumenwork.example', key));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(text.replace(/ /g, ''));
    expect(uri.searchParams.get('issuer')).toBe('Lumenwork');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(uri.searchParams.get('digits')).toBe('6');
  });
});

describe('recovery codes', () => {
  it('are ten distinct xxxxx-xxxxx codes from an unambiguous alphabet', () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[a-hjkmnp-z2-9]{5}-[a-hjkmnp-z2-9]{5}$/);
  });

  it('hash the same however they are typed, keyed by the server secret', () => {
    const [code, other] = generateRecoveryCodes(2);
    if (!code || !other) throw new Error('expected two codes');
    const key = 'k'.repeat(40);
    const hashRecoveryCode = (c: string, secret = key) => hashRecoveryCodeWith(c, secret);
    const hash = hashRecoveryCode(code);
    expect(hashRecoveryCode(code, 'another secret of forty characters......')).not.toBe(hash);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(code.replace('-', ''));
    expect(hashRecoveryCode(code.toUpperCase())).toBe(hash);
    expect(hashRecoveryCode(code.replace('-', ''))).toBe(hash);
    expect(hashRecoveryCode(` ${code.toUpperCase().replace('-', ' ')} `)).toBe(hash);
    expect(hashRecoveryCode(other)).not.toBe(hash);
  });
});
