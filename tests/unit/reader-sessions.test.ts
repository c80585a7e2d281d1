/**
 * Customers' reader sessions (src/core/access/reader-sessions.ts) apart from staff sessions: their own
 * cookie, scoped to /documents (so it never reaches /console), Secure and `__Secure-` over https; a
 * session ends 12 hours after it opened or 2 hours after its last activity, whichever comes first.
 */
import { describe, expect, it } from 'vitest';
import { READER_SESSION, readerCookie, readerSessionEnd } from '../../src/core/access/reader-sessions.ts';
import { sessionCookie } from '../../src/core/auth/session.ts';

const HOUR = 3_600_000;

describe('reader sessions', () => {
  it('have their own cookie, scoped to /documents, never the staff one', () => {
    expect(readerCookie(false)).toEqual({ name: 'candor_reader', secure: false, path: '/documents' });
    expect(readerCookie(true)).toEqual({ name: '__Secure-candor_reader', secure: true, path: '/documents' });
    for (const https of [false, true]) expect(readerCookie(https).name).not.toBe(sessionCookie(https).name);
  });

  it('end after 2 hours idle or 12 hours in all, whichever is first', () => {
    expect(READER_SESSION).toEqual({ absoluteMs: 12 * HOUR, idleMs: 2 * HOUR });
    const opened = new Date('2026-12-03T08:00:00Z');
    const expiresAt = new Date(opened.getTime() + READER_SESSION.absoluteMs);
    expect(readerSessionEnd({ expiresAt, lastActiveAt: opened })).toEqual(new Date('2026-12-03T10:00:00Z'));
    expect(readerSessionEnd({ expiresAt, lastActiveAt: new Date('2026-12-03T15:00:00Z') })).toEqual(new Date('2026-12-03T17:00:00Z'));
    expect(readerSessionEnd({ expiresAt, lastActiveAt: new Date('2026-12-03T19:30:00Z') })).toEqual(expiresAt);
  });
});
