/**
 * The console's sign-in, second factor, sessions and audit trail, over HTTP
 * against the built server, as a browser would use them. On each engine
 * (tests/helpers/engine-server.ts): SQLite, and PostgreSQL under row-level
 * security when CANDOR_TEST_POSTGRES_URL is set (the CLI commands too).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { and, asc, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Tx } from '../../db/engine/types.ts';
import { staffByEmail, staffById, updateStaffRow } from '../../src/stores/staff.ts';
import { ConsoleClient, hiddenField, type PageResponse } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { ROOT, type RunningServer } from '../helpers/server.ts';
import { newSessionOn, signedInStaffOn, totpFromKeyText } from '../helpers/staff.ts';

const PASSWORD = 'correct horse battery staple';
const OWNER = 'owner@lumenwork.example';

/** Every audit entry, oldest first. */
const auditEntries = (database: Database) =>
  readRows(database, (q) =>
    q.db.select().from(q.t.auditLog).where(eq(q.t.auditLog.trustCenterId, q.trustCenter)).orderBy(asc(q.t.auditLog.id)),
  );

/** Gives the account the owner's password (hash), so a test can sign in as it. */
async function withOwnersPassword(database: Database, email: string): Promise<void> {
  const copy = async (tx: Tx) => {
    const owner = await staffByEmail(tx, OWNER);
    const member = await staffByEmail(tx, email);
    if (!owner?.passwordHash || !member) throw new Error('no owner with a password, or no such member');
    await updateStaffRow(tx, member.id, { passwordHash: owner.passwordHash }, new Date());
  };
  await (database.engine === 'sqlite' ? database.transaction(copy) : database.transaction(copy));
}

/** Moves a session's last activity or its absolute end to a time in the past. */
const ageSession = (database: Database, token: string, change: { lastActiveAt?: Date; expiresAt?: Date }) =>
  writeRows(database, async (q) => {
    const ss = q.t.staffSessions;
    await q.db
      .update(ss)
      .set(change)
      .where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.id, token.split('.')[0] ?? '')));
  });

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;

  beforeAll(async () => {
    running = await engine.start();
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
  });

  function cli(...args: string[]) {
    return spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...running.env, CANDOR_DATA_DIR: server.dataDir, CANDOR_PUBLIC_URL: server.url },
    });
  }

  const actionsOf = async () => (await auditEntries(db)).map((e) => e.action);

  const text = (page: PageResponse) => page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

  /** Signs in with the password, then the current TOTP code (waiting for a fresh step if this one was used). */
  async function signInWithTotp(client: ConsoleClient, email: string, keyText: string): Promise<PageResponse> {
    const first = await client.post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
    expect(first.status).toBe(303);
    expect(first.location).toBe('/console/mfa');
    let code = totpFromKeyText(keyText);
    let result = await client.post('/console/mfa?_action=verifyMfa', { code, next: '/console' });
    if (result.status !== 303) {
      // the code of this 30-second step was already used (replay protection): wait for the next step
      await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 200));
      code = totpFromKeyText(keyText);
      result = await client.post('/console/mfa?_action=verifyMfa', { code, next: '/console' });
    }
    return result;
  }

  let ownerKey = '';

  describe('first owner', () => {
    it('gets a one-time link from the CLI, sets a password, enrols TOTP and reaches the console', async () => {
      const created = cli('admin', 'create', '--email', OWNER, '--role', 'owner');
      expect(created.status, created.stderr).toBe(0);
      const link = created.stdout.trim().split('\n').at(-1) ?? '';
      expect(link).toMatch(new RegExp(`^${server.url}/console/link/[a-z0-9]+\\.[a-z0-9]+$`));
      const path = new URL(link).pathname;
      const token = path.split('/').at(-1) ?? '';

      const client = new ConsoleClient(server.url);
      const page = await client.get(path);
      expect(page.status).toBe(200);
      expect(text(page)).toContain(`Welcome, ${OWNER}`);
      expect(page.headers.get('referrer-policy')).toBe('same-origin');

      const weak = await client.post(`${path}?_action=completeLink`, { token, password: 'password1234', confirm: 'password1234' });
      expect(text(weak)).toContain('commonly used passwords');
      const mismatch = await client.post(`${path}?_action=completeLink`, { token, password: PASSWORD, confirm: `${PASSWORD}!` });
      expect(text(mismatch)).toContain('do not match');

      const done = await client.post(`${path}?_action=completeLink`, { token, password: PASSWORD, confirm: PASSWORD });
      expect(done.status).toBe(303);
      expect(done.location).toBe('/console/mfa/enrol');
      expect(done.headers.getSetCookie().join()).toMatch(/candor_session=[^;]+; .*HttpOnly/i);
      expect(done.headers.getSetCookie().join()).toMatch(/SameSite=Lax/i);

      // the owner cannot reach anything else before enrolling
      const blocked = await client.get('/console/staff');
      expect(blocked.status).toBe(303);
      expect(blocked.location).toBe('/console/mfa/enrol');

      const enrol = await client.get('/console/mfa/enrol');
      expect(enrol.status).toBe(200);
      expect(enrol.html).toContain('<svg');
      ownerKey = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(enrol.html)?.[1] ?? '';
      expect(ownerKey.length).toBeGreaterThan(20);
      const pending = hiddenField(enrol.html, 'pending');
      const wrong = await client.post('/console/mfa/enrol?_action=enrolMfa', { pending, code: '000000' });
      expect(text(wrong)).toContain('does not match');
      const enrolled = await client.post('/console/mfa/enrol?_action=enrolMfa', { pending, code: totpFromKeyText(ownerKey) });
      expect(enrolled.status).toBe(200);
      const codes = [...enrolled.html.matchAll(/<li>([a-z0-9]{5}-[a-z0-9]{5})<\/li>/g)].map((m) => m[1]);
      expect(codes).toHaveLength(10);

      const dashboard = await client.get('/console');
      expect(dashboard.status).toBe(200);
      expect(text(dashboard)).toContain(`${OWNER} owner Sign out`);
      expect(text(dashboard)).toContain('Needs attention now');

      const reused = await new ConsoleClient(server.url).get(path);
      expect(reused.status).toBe(410);
      expect(text(reused)).toContain('already been used');
      expect(await actionsOf()).toEqual(
        expect.arrayContaining(['staff.created', 'auth.link.used', 'auth.password.set', 'auth.mfa.enrolled']),
      );
    });

    it('signs in with password and TOTP; a wrong code is refused', async () => {
      const client = new ConsoleClient(server.url);
      const first = await client.post('/console/sign-in?_action=signIn', { email: OWNER, password: PASSWORD, next: '/console/staff' });
      expect(first.location).toBe('/console/mfa');
      expect((await client.get('/console/staff')).location).toBe('/console/mfa');
      const wrong = await client.post('/console/mfa?_action=verifyMfa', { code: '123456', next: '/console' });
      expect(text(wrong)).toContain('That code is not valid');
      const ok = await signInWithTotp(client, OWNER, ownerKey);
      expect(ok.status).toBe(303);
      expect((await client.get('/console/staff')).status).toBe(200);
      expect(await actionsOf()).toEqual(expect.arrayContaining(['auth.sign_in.succeeded', 'auth.mfa.failed']));
    });

    it('refuses an open redirect after sign-in', async () => {
      const { email } = await signedInStaffOn(db, 'viewer');
      await withOwnersPassword(db, email);
      const client = new ConsoleClient(server.url);
      const res = await client.post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '//evil.example/phish' });
      expect(res.status).toBe(303);
      expect(res.location).toBe('/console');
    });
  });

  describe('sign-in protection', () => {
    it('answers the same for an unknown email and a wrong password', async () => {
      const client = new ConsoleClient(server.url);
      const unknown = await client.post('/console/sign-in?_action=signIn', { email: 'nobody@lumenwork.example', password: PASSWORD });
      const wrong = await client.post('/console/sign-in?_action=signIn', { email: OWNER, password: 'not the password at all' });
      expect(unknown.status).toBe(wrong.status);
      expect(text(unknown)).toContain('Email or password is incorrect.');
      expect(text(wrong)).toContain('Email or password is incorrect.');
    });

    it('locks an account after 5 failures, even for the right password, until the window passes', async () => {
      const { email } = await signedInStaffOn(db, 'responder');
      await withOwnersPassword(db, email);
      const client = new ConsoleClient(server.url);
      for (let i = 0; i < 5; i++) await client.post('/console/sign-in?_action=signIn', { email, password: `wrong password ${i}` });
      const locked = await client.post('/console/sign-in?_action=signIn', { email, password: PASSWORD });
      expect(text(locked)).toMatch(/Too many attempts\. Try again in \d+ minutes\./);
      expect(await actionsOf()).toContain('auth.sign_in.locked');
      // fifteen minutes later (the window is stored, so move it back)
      const moved = await writeRows(db, async (q) => {
        const rl = q.t.rateLimits;
        const mine = and(eq(rl.trustCenterId, q.trustCenter), like(rl.bucket, 'sign-in:%'), like(rl.key, `%${email}%`));
        const windows = await q.db.select().from(rl).where(mine);
        for (const w of windows)
          await q.db
            .update(rl)
            .set({ windowStart: new Date(w.windowStart.getTime() - 16 * 60_000) })
            .where(and(mine, eq(rl.bucket, w.bucket), eq(rl.key, w.key)));
        return windows.length;
      });
      expect(moved).toBeGreaterThan(0);
      const after = await client.post('/console/sign-in?_action=signIn', { email, password: PASSWORD });
      expect(after.status).toBe(303);
    });
  });

  describe('sessions', () => {
    it('end after the idle timeout', async () => {
      const { token } = await signedInStaffOn(db, 'viewer');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', token);
      expect((await client.get('/console')).status).toBe(200);
      await ageSession(db, token, { lastActiveAt: new Date(Date.now() - 61 * 60_000) });
      const after = await client.get('/console');
      expect(after.status).toBe(303);
      expect(after.location).toMatch(/^\/console\/sign-in/);
      expect(client.cookie('candor_session')).toBeUndefined();
    });

    it('end at their absolute lifetime even when active', async () => {
      const { token } = await signedInStaffOn(db, 'viewer');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', token);
      await ageSession(db, token, { expiresAt: new Date(Date.now() - 1000) });
      expect((await client.get('/console')).location).toMatch(/^\/console\/sign-in/);
    });

    it('refuse a forged token', async () => {
      const { token } = await signedInStaffOn(db, 'viewer');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', `${token.split('.')[0]}.aaaaaaaaaaaaaaaaaaaaaaaa`);
      expect((await client.get('/console')).location).toMatch(/^\/console\/sign-in/);
    });

    it('can be revoked by their owner from another session', async () => {
      const client = new ConsoleClient(server.url);
      const other = new ConsoleClient(server.url);
      const member = await signedInStaffOn(db, 'responder');
      client.setCookie('candor_session', member.token);
      const token2 = await newSessionOn(db, member.staffId, { mfaVerified: true });
      const s2 = { token: token2, session: { id: token2.split('.')[0] ?? '' } };
      other.setCookie('candor_session', s2.token);
      expect((await other.get('/console')).status).toBe(200);
      const account = await client.get('/console/account');
      expect(account.html).toContain(`value="${s2.session.id}"`);
      const revoked = await client.post('/console/account?_action=revokeSession', { sessionId: s2.session.id });
      expect(text(revoked)).toContain('The session was ended.');
      expect((await other.get('/console')).location).toMatch(/^\/console\/sign-in/);
      expect(await actionsOf()).toContain('auth.session.revoked');
    });

    it('sign-out ends the session', async () => {
      const { token } = await signedInStaffOn(db, 'viewer');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', token);
      const out = await client.post('/console/sign-in?_action=signOut', {});
      expect(text(out)).toContain('You have signed out.');
      client.setCookie('candor_session', token);
      expect((await client.get('/console')).location).toMatch(/^\/console\/sign-in/);
      expect(await actionsOf()).toContain('auth.sign_out');
    });
  });

  describe('staff management', () => {
    it('an owner invites a responder, changes the role and disables the account, ending their sessions', async () => {
      const owner = await signedInStaffOn(db, 'owner');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', owner.token);
      const invited = await client.post('/console/staff?_action=inviteStaff', { email: 'New.Person@Lumenwork.example', role: 'responder' });
      const link = /<code id="invite-link">([^<]+)<\/code>/.exec(invited.html)?.[1] ?? '';
      expect(link).toMatch(/\/console\/link\//);
      const token = link.split('/').at(-1) ?? '';
      const person = new ConsoleClient(server.url);
      const set = await person.post(`/console/link/${token}?_action=completeLink`, { token, password: PASSWORD, confirm: PASSWORD });
      expect(set.location).toBe('/console');
      expect((await person.get('/console')).status).toBe(200);
      const staffId = (await db.read((r) => staffByEmail(r, 'new.person@lumenwork.example')))?.id ?? -1;

      await client.post('/console/staff?_action=changeRole', { staffId: String(staffId), role: 'viewer' });
      expect((await person.get('/console')).location).toMatch(/^\/console\/sign-in/);
      expect((await db.read((r) => staffById(r, staffId)))?.role).toBe('viewer');

      const again = await person.post('/console/sign-in?_action=signIn', { email: 'new.person@lumenwork.example', password: PASSWORD });
      expect(again.location).toBe('/console');
      await client.post('/console/staff?_action=disableStaff', { staffId: String(staffId) });
      expect((await person.get('/console')).location).toMatch(/^\/console\/sign-in/);
      const refused = await person.post('/console/sign-in?_action=signIn', { email: 'new.person@lumenwork.example', password: PASSWORD });
      expect(text(refused)).toContain('Email or password is incorrect.');

      const entries = await auditEntries(db);
      const roleChange = entries.find((e) => e.action === 'staff.role_changed' && e.target === `staff:${staffId}`);
      expect(roleChange?.summary).toMatchObject({ before: { role: 'responder' }, after: { role: 'viewer' } });
      expect(roleChange?.actorId).toBe(owner.staffId);
      expect(roleChange?.ip).toBeTruthy();
      expect(roleChange?.userAgent).toBe('candor-tests');
      expect(entries.map((e) => e.action)).toEqual(expect.arrayContaining(['staff.invited', 'staff.disabled']));
    });
  });

  describe('lost second factor', () => {
    it('an owner resets a member: sessions end, password and TOTP are removed, a one-time link sets new ones', async () => {
      const owner = await signedInStaffOn(db, 'owner');
      const member = await signedInStaffOn(db, 'admin');
      const memberClient = new ConsoleClient(server.url);
      memberClient.setCookie('candor_session', member.token);
      expect((await memberClient.get('/console')).status).toBe(200);
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', owner.token);
      const reset = await client.post('/console/staff?_action=resetStaffSignIn', { staffId: String(member.staffId) });
      const link = /<code id="reset-link">([^<]+)<\/code>/.exec(reset.html)?.[1] ?? '';
      expect(link).toMatch(/\/console\/link\//);
      expect((await memberClient.get('/console')).location).toMatch(/^\/console\/sign-in/);
      const row = await db.read((r) => staffById(r, member.staffId));
      expect(row).toMatchObject({ status: 'invited', passwordHash: null, totpSecret: null });
      const token = link.split('/').at(-1) ?? '';
      const set = await memberClient.post(`/console/link/${token}?_action=completeLink`, { token, password: PASSWORD, confirm: PASSWORD });
      expect(set.location).toBe('/console/mfa/enrol');
      expect(await actionsOf()).toContain('staff.sign_in_reset');
    });

    it('the operator can reset the only owner from the command line', () => {
      const reset = cli('admin', 'reset', '--email', OWNER);
      expect(reset.status, reset.stderr).toBe(0);
      expect(reset.stdout).toMatch(/\/console\/link\/[a-z0-9]+\.[a-z0-9]+/);
      const unknown = cli('admin', 'reset', '--email', 'nobody@lumenwork.example');
      expect(unknown.status).toBe(1);
      expect(unknown.stderr.trim()).toBe('candor: There is no staff account with that email address.');
    });
  });

  describe('cross-site requests', () => {
    it('refuses a form posted from another origin', async () => {
      const { token } = await signedInStaffOn(db, 'owner');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', token);
      const res = await client.post(
        '/console/staff?_action=inviteStaff',
        { email: 'x@evil.example', role: 'owner' },
        { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      );
      expect(res.status).toBe(403);
      expect(await db.read((r) => staffByEmail(r, 'x@evil.example'))).toBeUndefined();
    });

    it('refuses a cross-site JSON request to an action', async () => {
      const { token } = await signedInStaffOn(db, 'owner');
      const res = await fetch(`${server.url}/_actions/signOut`, {
        method: 'POST',
        headers: { cookie: `candor_session=${token}`, 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
        body: '{}',
      });
      expect(res.status).toBe(403);
    });
  });

  describe('audit log', () => {
    it('the console lists, filters and exports it, and the export is audited', async () => {
      const { token } = await signedInStaffOn(db, 'admin');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', token);
      const page = await client.get('/console/audit?action=auth.sign_in.failed');
      expect(page.status).toBe(200);
      const rows = [...page.html.matchAll(/<tr data-action="([^"]+)"/g)].map((m) => m[1]);
      expect(rows.length).toBeGreaterThan(0);
      expect(new Set(rows)).toEqual(new Set(['auth.sign_in.failed']));
      const bad = await client.get('/console/audit?from=yesterday');
      expect(text(bad)).toContain('From must be a date (YYYY-MM-DD).');

      const csv = await client.get('/console/audit/export?format=csv');
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(csv.html.split('\n')[0]).toMatch(/^id,at,/);
      const json = await client.get('/console/audit/export?format=json&action=staff.created');
      const entries = JSON.parse(json.html) as { action: string }[];
      expect(entries.every((e) => e.action === 'staff.created')).toBe(true);
      expect((await actionsOf()).filter((a) => a === 'audit.exported')).toHaveLength(2);
      expect(cli('audit', 'verify').stdout).toMatch(/chain intact/);
    });

    it('holds no secret: no password, session token or TOTP key in any entry', async () => {
      const all = JSON.stringify(await auditEntries(db));
      expect(all).not.toContain(PASSWORD);
      expect(all).not.toContain(ownerKey.replace(/\s/g, ''));
      const tokens = await readRows(db, (q) =>
        q.db.select({ id: q.t.staffSessions.id }).from(q.t.staffSessions).where(eq(q.t.staffSessions.trustCenterId, q.trustCenter)),
      );
      expect(tokens.length).toBeGreaterThan(0);
      for (const { id } of tokens) expect(all).not.toContain(id);
    });
  });
});
