/**
 * Staff single sign-on (src/core/auth/sso.ts) end to end over HTTP: the real server on each engine
 * (tests/helpers/engine-server.ts), its real openid-client, and a fake OpenID provider on loopback
 * (tests/fakes/oidc.ts). A browser's path is followed by hand: the sign-in page's button, the
 * provider's /authorize, the callback, the console. Checked: the role comes from the mapping and is
 * re-checked at every sign-in, the provider's subject is linked by verified email only, the ID token
 * is refused for another audience, an expiry in the past, another nonce or a foreign signature, a
 * callback is refused without its flow or when replayed, and every outcome is audited without a token.
 */
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { staffByEmail } from '../../src/stores/staff.ts';
import { type FakeOidcProvider, type FakeUser, startFakeOidc } from '../fakes/oidc.ts';
import { ConsoleClient, type PageResponse } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { freePort, tempDir } from '../helpers/server.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const CLIENT_ID = 'candor-console';
const CLIENT_SECRET = 'fake-client-secret-of-candor';

const auditEntries = (database: Database) =>
  readRows(database, (q) =>
    q.db.select().from(q.t.auditLog).where(eq(q.t.auditLog.trustCenterId, q.trustCenter)).orderBy(asc(q.t.auditLog.id)),
  );

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let provider: FakeOidcProvider;
  let db: Database;
  let base: string;
  let seq = 0;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = await startFakeOidc({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: `${base}/console/sso/callback` });
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: {
        CANDOR_PUBLIC_URL: base,
        CANDOR_SSO_ISSUER: provider.issuer,
        CANDOR_SSO_CLIENT_ID: CLIENT_ID,
        CANDOR_SSO_CLIENT_SECRET: CLIENT_SECRET,
        CANDOR_SSO_NAME: 'Lumenwork ID',
        CANDOR_SSO_ROLE_GROUPS: 'candor-owners=owner,candor-admins=admin,oncall=responder',
        CANDOR_SSO_ROLE_DOMAINS: 'lumenwork.example=viewer',
        CANDOR_SSO_AUTO_CREATE_DOMAINS: 'lumenwork.example',
      },
    });
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
    await provider?.stop();
  });

  beforeEach(() => {
    provider.tamperNextIdToken({});
  });

  const memberOf = (email: string) => db.read((r) => staffByEmail(r, email));
  const unique = (name: string) => `${name}-${++seq}`;

  /** The browser's way through: start (from the sign-in page's link), the provider's /authorize, the callback. */
  async function signInThroughProvider(
    user: FakeUser,
    client = new ConsoleClient(base),
  ): Promise<{ client: ConsoleClient; answer: PageResponse; callback: string; flowCookie: string | undefined }> {
    provider.signIn(user);
    const page = await client.get('/console/sign-in?next=%2Fconsole%2Faudit');
    const start = /href="([^"]*\/console\/sso\/start[^"]*)"/.exec(page.html)?.[1]?.replaceAll('&amp;', '&');
    if (!start) throw new Error('no "Sign in with" link on the sign-in page');
    const started = await client.get(start);
    expect(started.status).toBe(303);
    const flowCookie = client.cookie('candor_sso');
    const authorize = await fetch(started.location ?? '', { redirect: 'manual' });
    expect(authorize.status).toBe(302);
    const callback = authorize.headers.get('location') ?? '';
    expect(callback.startsWith(`${base}/console/sso/callback?`)).toBe(true);
    const answer = await client.get(callback);
    return { client, answer, callback, flowCookie };
  }

  const refusals = async () =>
    (await auditEntries(db)).filter((e) => e.action === 'auth.sso.refused').map((e) => String(e.summary.reason ?? ''));

  it('the sign-in page offers the provider by name', async () => {
    const page = await new ConsoleClient(base).get('/console/sign-in');
    expect(page.html).toContain('Sign in with Lumenwork ID');
  });

  it('signs an invited member in with the role of their group, links the subject, and needs no TOTP here', async () => {
    const email = `${unique('ana')}@lumenwork.example`;
    await staffMemberOn(db, 'viewer', { enrolled: false, email });
    const sub = unique('sub-ana');
    const { client, answer } = await signInThroughProvider({ sub, email, email_verified: true, groups: ['candor-admins', 'other'] });
    expect(answer.status, answer.html.slice(0, 300)).toBe(303);
    expect(answer.location).toBe('/console/audit');
    expect(client.cookie('candor_sso')).toBeUndefined();
    // an admin without a TOTP enrolment, yet the console opens: the provider gave the second factor
    const staffPage = await client.get('/console/staff');
    expect(staffPage.status).toBe(200);
    const member = await memberOf(email);
    expect(member?.role).toBe('admin');
    expect(member?.ssoSubject).toBe(sub);
    expect(member?.ssoIssuer).toBe(provider.issuer);
    const entries = (await auditEntries(db)).filter((e) => e.target === `staff:${member?.id}`).map((e) => e.action);
    expect(entries).toEqual(expect.arrayContaining(['staff.role_changed', 'auth.sso.linked', 'auth.sso.signed_in']));
    // the same session cookie and CSRF rules as a password sign-in: a cross-site post is refused
    const crossSite = await client.post(
      '/console/staff?_action=inviteStaff',
      { email: 'x@lumenwork.example', role: 'viewer' },
      {
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
      },
    );
    expect(crossSite.status).toBe(403);
  });

  it('creates an account on first sign-in in an allowed domain, with the mapped role', async () => {
    const email = `${unique('new')}@lumenwork.example`;
    const { answer } = await signInThroughProvider({ sub: unique('sub-new'), email, email_verified: true, groups: ['oncall'] });
    expect(answer.status).toBe(303);
    const member = await memberOf(email);
    expect(member).toMatchObject({ role: 'responder', status: 'active' });
    const created = (await auditEntries(db)).find((e) => e.action === 'staff.created_by_sso' && e.target === `staff:${member?.id}`);
    expect(created?.summary).toMatchObject({ email, role: 'responder', by: 'group' });
  });

  it('refuses an unknown email outside the domains allowed for creation, and creates nothing', async () => {
    const email = `${unique('stranger')}@elsewhere.example`;
    const { answer } = await signInThroughProvider({ sub: unique('sub-s'), email, email_verified: true, groups: ['candor-owners'] });
    expect(answer.status).toBe(403);
    expect(answer.html).toContain('There is no staff account for your email address');
    expect(await memberOf(email)).toBeUndefined();
    expect(await refusals()).toContain('unknown account');
  });

  it('refuses an existing member of an unmapped domain with no mapped group', async () => {
    const email = `${unique('contractor')}@contractor.example`;
    await staffMemberOn(db, 'responder', { enrolled: false, email });
    const { answer } = await signInThroughProvider({ sub: unique('sub-c'), email, email_verified: true, groups: ['nobody'] });
    expect(answer.status).toBe(403);
    expect(answer.html).toContain('do not give you access');
    expect((await memberOf(email))?.ssoSubject).toBeNull();
  });

  it('an unverified email grants nothing: no link, no sign-in', async () => {
    const email = `${unique('unverified')}@lumenwork.example`;
    await staffMemberOn(db, 'owner', { enrolled: true, email });
    const { answer, client } = await signInThroughProvider({
      sub: unique('sub-u'),
      email,
      email_verified: false,
      groups: ['candor-owners'],
    });
    expect(answer.status).toBe(403);
    expect(client.cookie('candor_session')).toBeUndefined();
    expect((await memberOf(email))?.ssoSubject).toBeNull();
    expect(await refusals()).toContain('email not verified by the provider');
  });

  it('re-checks the mapping at every sign-in: a changed group changes the role, a lost one refuses', async () => {
    const email = `${unique('bo')}@partner.example`;
    await staffMemberOn(db, 'viewer', { enrolled: false, email });
    const sub = unique('sub-bo');
    expect((await signInThroughProvider({ sub, email, email_verified: true, groups: ['candor-owners'] })).answer.status).toBe(303);
    expect((await memberOf(email))?.role).toBe('owner');
    const first = await signInThroughProvider({ sub, email, email_verified: true, groups: ['oncall'] });
    expect(first.answer.status).toBe(303);
    expect((await memberOf(email))?.role).toBe('responder');
    expect((await first.client.get('/console/incidents/new')).status).toBe(200);
    // partner.example maps to nothing: without a mapped group the member is refused, and the session
    // of the earlier sign-in ends with it
    const lost = await signInThroughProvider({ sub, email, email_verified: true, groups: [] });
    expect(lost.answer.status).toBe(403);
    expect(await refusals()).toContain('no role mapped (groups or email domain)');
    const memberId = (await memberOf(email))?.id;
    const revoked = (await auditEntries(db)).findLast((e) => e.action === 'auth.sso.refused' && e.target === `staff:${memberId}`);
    expect(revoked?.summary).toMatchObject({ sessionsEnded: 1 });
    const after = await first.client.get('/console/incidents/new');
    expect(after.status).toBe(303);
    expect(after.location).toMatch(/^\/console\/sign-in/);
    // the subject is checked: another identity claiming the same verified email is refused
    const other = await signInThroughProvider({ sub: unique('sub-impostor'), email, email_verified: true, groups: ['candor-owners'] });
    expect(other.answer.status).toBe(403);
    expect(await refusals()).toContain('account linked to another provider identity');
    expect((await memberOf(email))?.role).toBe('responder');
  });

  describe('the ID token is verified', () => {
    const cases = [
      ['of another audience', { audience: 'someone-else' }, /"aud" \(audience\) claim/],
      ['expired', { expiresIn: -600 }, /"exp" \(expiration time\) claim/],
      ['with another nonce', { nonce: 'not-the-nonce-we-sent' }, /"nonce" claim/],
      ['signed by a key not in the JWKS', { foreignKey: true }, /signature verification failed/],
    ] as const;
    it.each(cases)('refuses one %s', async (_what, tampering, reason) => {
      const email = `${unique('tampered')}@lumenwork.example`;
      await staffMemberOn(db, 'admin', { enrolled: false, email });
      provider.tamperNextIdToken(tampering);
      const { answer, client } = await signInThroughProvider({
        sub: unique('sub-t'),
        email,
        email_verified: true,
        groups: ['candor-admins'],
      });
      expect(answer.status).toBe(403);
      expect(client.cookie('candor_session')).toBeUndefined();
      expect((await memberOf(email))?.ssoSubject).toBeNull();
      // identical refusals are one audit entry with a count (audit/repeats.ts): look for this one among them
      const refused = (await refusals()).filter((r) => r.startsWith('ID token or code refused'));
      expect(
        refused.some((r) => reason.test(r)),
        refused.join('\n'),
      ).toBe(true);
    });
  });

  describe('the state', () => {
    it('refuses a callback with no flow of this browser (unknown state)', async () => {
      const email = `${unique('nostate')}@lumenwork.example`;
      const { callback } = await signInThroughProvider({ sub: unique('sub-n'), email, email_verified: true, groups: ['oncall'] });
      const elsewhere = await new ConsoleClient(base).get(callback);
      expect(elsewhere.status).toBe(403);
      expect(elsewhere.headers.get('referrer-policy')).toBe('same-origin');
      expect(await refusals()).toContain('no sign-in in progress (unknown or expired state)');
    });

    it('refuses a replayed callback, even with the flow cookie', async () => {
      const email = `${unique('replay')}@lumenwork.example`;
      const { answer, callback, flowCookie } = await signInThroughProvider({
        sub: unique('sub-r'),
        email,
        email_verified: true,
        groups: ['oncall'],
      });
      expect(answer.status).toBe(303);
      const attacker = new ConsoleClient(base);
      attacker.setCookie('candor_sso', flowCookie ?? '');
      const replayed = await attacker.get(callback);
      expect(replayed.status).toBe(403);
      expect(attacker.cookie('candor_session')).toBeUndefined();
      expect(await refusals()).toContain('state already used (replayed callback)');
    });

    it('refuses a state that is not the flow’s', async () => {
      const client = new ConsoleClient(base);
      const started = await client.get('/console/sso/start');
      expect(started.status).toBe(303);
      const answer = await client.get('/console/sso/callback?code=abc&state=forged');
      expect(answer.status).toBe(403);
      expect(await refusals()).toContain('state does not match');
    });
  });

  it('the callback opens nothing else: an action carried on it still needs its permission', async () => {
    const answer = await new ConsoleClient(base).post('/console/sso/callback?_action=inviteStaff', {
      email: 'x@lumenwork.example',
      role: 'owner',
    });
    expect(answer.status).toBe(401);
  });

  it('no token the provider issued is stored anywhere, the audit log included', async () => {
    expect(provider.issuedIdTokens.length).toBeGreaterThan(5);
    for (const token of provider.issuedIdTokens) {
      expect(await running.columnsHolding(token)).toEqual([]);
      // nor the signature part alone
      expect(await running.columnsHolding(token.split('.')[2] ?? token)).toEqual([]);
    }
  });

  // last: it uses up this address's allowance of refused callbacks
  it('limits refused callbacks from one address', async () => {
    const before = (await refusals()).length;
    let answer: PageResponse | undefined;
    for (let i = 0; i < 40; i++) {
      answer = await new ConsoleClient(base).get('/console/sso/callback?code=abc&state=unknown');
      if (answer.html.includes('Too many attempts')) break;
    }
    expect(answer?.status).toBe(403);
    expect(answer?.html).toContain('Too many attempts');
    expect(await refusals()).toContain('too many refused attempts from this address');
    expect((await refusals()).length).toBeGreaterThan(before);
  });
});
