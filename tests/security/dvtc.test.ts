/**
 * The vulnerability classes planted in the public "Damn Vulnerable Trust
 * Center" training project, one test each, as an attacker would look for
 * them in Candor. Where another security test goes deeper, the test here is
 * the short version and names it.
 *
 * Classes that do not apply, and why (each still has a test below showing
 * the door is closed, not only a comment):
 * - XXE: Candor parses no XML it receives. Providers call back with JSON
 *   (Resend) or forms (Twilio); feeds, TwiML and calendars are only written.
 * - Unchecked uploads: there is no upload anywhere (no file input, no
 *   multipart handling); every form field is text with a length limit.
 * - Sessions in localStorage: the session lives only in an HttpOnly cookie;
 *   no script of ours reads or stores it, and the console needs no token in
 *   JavaScript.
 *
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { hashPassword } from '../../src/core/auth/password.ts';
import { sessionCookie } from '../../src/core/auth/session.ts';
import { updateStaffRow } from '../../src/stores/staff.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { failInserts } from '../helpers/fail-inserts.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { activeMarkup, Client, expectNoStackTrace, type HttpAnswer, leaked, pageText, send, serverSecrets } from '../helpers/security.ts';
import { freePort, ROOT, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const COOKIE = sessionCookie(false).name;
/** what people type to see whether a report evaluates it: `${…}` here is the text itself */
// biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text an attacker types
const EXPRESSIONS = '{{7*7}} ${7*7} <%= 7*7 %> #{7*7} ../../etc/passwd';
const PASSWORD = 'the training centre passphrase is long 12';
const text = (answer: HttpAnswer) => pageText(answer.body);
function clientFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  return walk(join(ROOT, 'dist/client'));
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, testKeys: true }) });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
  });

  const as = async (role: 'viewer' | 'responder' | 'admin' | 'owner', from?: string) =>
    new Client(server.url, from).setCookie(COOKIE, (await signedInStaffOn(db, role)).token);
  const get = (path: string, headers: Record<string, string> = {}) => send(`${server.url}${path}`, { headers });
  const setPassword = async (staffId: number, password: string) => {
    const passwordHash = await hashPassword(password);
    await (db.engine === 'sqlite'
      ? db.transaction((tx) => updateStaffRow(tx, staffId, { passwordHash }, new Date()))
      : db.transaction((tx) => updateStaffRow(tx, staffId, { passwordHash }, new Date())));
  };

  describe('Damn Vulnerable Trust Center, class by class', () => {
    it('guessable expiring links chosen by the caller: the server picks the token and the lifetime', async () => {
      const owner = await as('owner');
      const links: string[] = [];
      for (let i = 0; i < 4; i++) {
        const page = await owner.post('/console/staff?_action=inviteStaff', {
          email: `chosen${i}@lumenwork.example`,
          role: 'viewer',
          token: 'aaaa.bbbb',
          expiresAt: '2099-01-01T00:00:00Z',
          ttl: '99999999',
          expires: '0',
        });
        links.push(/<code id="invite-link">([^<]+)<\/code>/.exec(page.body)?.[1] ?? '');
      }
      const tokens = links.map((l) => l.split('/').at(-1) ?? '');
      expect(new Set(tokens).size).toBe(4);
      for (const token of tokens) {
        expect(token).not.toContain('aaaa');
        const [id = '', secret = ''] = token.split('.');
        // 128 bits or more in each half, base32 of a CSPRNG: nothing to enumerate
        expect(id.length).toBeGreaterThanOrEqual(24);
        expect(secret.length).toBeGreaterThanOrEqual(24);
        const [row] = await readRows(db, (q) =>
          q.db
            .select({ createdAt: q.t.staffLinks.createdAt, expiresAt: q.t.staffLinks.expiresAt })
            .from(q.t.staffLinks)
            .where(and(eq(q.t.staffLinks.trustCenterId, q.trustCenter), eq(q.t.staffLinks.id, id))),
        );
        expect((row?.expiresAt.getTime() ?? 0) - (row?.createdAt.getTime() ?? 0)).toBe(24 * 3_600_000);
      }
      // consecutive tokens share nothing a guesser could build on
      for (let i = 1; i < tokens.length; i++) expect(commonPrefix(tokens[i - 1] ?? '', tokens[i] ?? '')).toBeLessThan(4);
    });

    it('unauthenticated secret or debug endpoints: none answers', async () => {
      const probes = [
        '/debug',
        '/_debug',
        '/__debug',
        '/api/debug',
        '/api/v1/debug',
        '/api/v1/config',
        '/api/v1/env',
        '/api/v1/secrets',
        '/api/v1/admin',
        '/api/v1/subscribers',
        '/api/v1/audit',
        '/api/v1/staff',
        '/api/v1/internal',
        '/console/debug',
        '/console/api',
        '/admin',
        '/metrics',
        '/health?verbose=1',
        '/server-status',
        '/phpinfo.php',
        '/.env',
        '/.env.local',
        '/.git/config',
        '/.git/HEAD',
        '/package.json',
        '/package-lock.json',
        '/astro.config.mjs',
        '/tsconfig.json',
        '/src/server.ts',
        '/src/middleware.ts',
        '/db/schema.ts',
        '/data/candor.db',
        '/candor.db',
        '/secrets.json',
        '/data/secrets.json',
        '/dist/server/entry.mjs',
        '/server/entry.mjs',
        '/content/site.yaml',
        '/@vite/client',
        '/@fs/etc/passwd',
        '/@id/astro:actions',
        '/__astro_dev_toolbar__',
        '/_astro/../server/entry.mjs',
        '/node_modules/astro/package.json',
        '/.well-known/../package.json',
        '/backup',
        '/backup.zip',
        '/dump.sql',
        '/_server-islands/x',
      ];
      const secrets = [...serverSecrets(server.dataDir), ...Object.values(running.env)];
      for (const path of probes) {
        const res = await get(path);
        // 401: a staff API route (/api/v1/subscribers) asking for its token, as a problem that says nothing else
        expect([303, 400, 401, 403, 404], path).toContain(res.status);
        if (res.status === 401) expect(res.headers.get('content-type'), path).toBe('application/problem+json');
        if (res.status === 303) expect(res.headers.get('location'), path).toMatch(/^\/console\/sign-in/);
        expect(res.body, path).not.toMatch(/"name": "candor"|root:x:0:0|SQLite format 3|defineConfig|CANDOR_|encryptionKey|\[core\]/);
        expect(leaked(res.body, secrets), path).toEqual([]);
      }
    });

    it('path traversal and template injection in report generation: exports take no file name or template from the request', async () => {
      const admin = await as('admin');
      for (const format of ['../../../../etc/passwd', 'csv/../../secrets', 'json%00.csv', ...EXPRESSIONS.split(' ').slice(0, 2), 'CSV']) {
        const res = await admin.get(`/console/audit/export?format=${encodeURIComponent(format)}`);
        expect(res.status, format).toBe(400);
        expect(res.headers.get('content-type')).toMatch(/^text\/plain/i);
      }
      // what people typed is exported as typed, never evaluated; the file name is ours
      await new Client(server.url, '127.0.70.1').post(
        '/console/sign-in?_action=signIn',
        { email: 'report@lumenwork.example', password: 'x' },
        { 'user-agent': EXPRESSIONS },
      );
      for (const format of ['csv', 'json']) {
        const res = await admin.get(`/console/audit/export?format=${format}&filename=../../../etc/passwd&name=x.sh`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="candor-audit-[\\dT-]+\\.${format}"$`));
        expect(res.body).toContain(EXPRESSIONS);
        expect(res.body).not.toMatch(/root:x:0:0/);
      }
      const subscribers = await admin.get('/console/subscribers/export.csv?filename=../../x');
      expect(subscribers.headers.get('content-disposition')).toMatch(/^attachment; filename="candor-subscribers-\d{4}-\d{2}-\d{2}\.csv"$/);
    });

    it('feeds that leak internal data: private incidents, audiences, staff and subscribers stay out of every public document', async () => {
      const [reader = 0] = await addSubscribersTo(db, TEST_KEYS, {
        count: 1,
        channel: 'email',
        address: () => 'leak-check@customer.example',
      });
      const secretCustomer = await keepOrganisationOn(db, 'Secret Customer Ltd', { domains: ['secret-customer.example'] });
      const hiddenOrg = await keepOrganisationOn(db, 'Hidden Org GmbH', { domains: ['hidden-org.example'], recipients: [reader] });
      const responder = await signedInStaffOn(db, 'responder');
      const client = new Client(server.url).setCookie(COOKIE, responder.token);
      const breach = await client.post('/console/incidents/new?_action=publishIncident', {
        title: 'Private breach of Secret Customer Ltd exports',
        kind: 'breach',
        severity: 'critical',
        status: 'identified',
        'component:web-app': 'degraded',
        body: 'Only the affected customer is told.',
        [`organisation:${secretCustomer}`]: 'yes',
        // it has no member yet: sent anyway, to no one
        confirmNoRecipients: 'yes',
        breachAwareAt: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
        breachNature: 'Export link shared',
        breachSubjects: 'not yet known',
        breachRecords: 'not yet known',
        breachConsequences: 'not yet known',
        breachMeasures: 'Link revoked',
      });
      expect(breach.status, text(breach).slice(0, 300)).toBe(303);
      const breachId = /\/console\/incidents\/(\d+)/.exec(breach.headers.get('location') ?? '')?.[1] ?? '';
      const targeted = await client.post('/console/incidents/new?_action=publishIncident', {
        title: 'Slow exports',
        kind: 'outage',
        severity: 'minor',
        status: 'investigating',
        'component:public-api': 'degraded',
        body: 'Exports are slow.',
        [`organisation:${hiddenOrg}`]: 'yes',
      });
      expect(targeted.status).toBe(303);
      const targetedId = /\/console\/incidents\/(\d+)/.exec(targeted.headers.get('location') ?? '')?.[1] ?? '';

      expect((await get(`/incidents/${breachId}`)).status).toBe(404);
      expect((await get(`/incidents/${breachId}.ics`)).status).toBe(404);
      const publicDocuments = [
        '/status',
        `/incidents/${targetedId}`,
        '/api/v1/status.json',
        '/api/v1/trust.json',
        '/changes',
        '/subprocessors',
      ];
      for (const feed of ['incidents', 'changes'])
        for (const format of ['xml', 'atom', 'json']) publicDocuments.push(`/feeds/${feed}.${format}`);
      for (const path of publicDocuments) {
        const res = await get(path);
        expect(res.status, path).toBe(200);
        expect(res.body, path).not.toMatch(
          /Private breach|Secret Customer|Hidden Org|leak-check@|created_?by|"audience|organisations|recipients|subscribers?\b/i,
        );
        expect(res.body, path).not.toContain(responder.email);
      }
      // the targeted outage is public, but not whom it concerns
      expect((await get(`/incidents/${targetedId}`)).body).toContain('Slow exports');
    });

    it('client-side-overridable badges: what the status and the badges say is decided on the server', async () => {
      const responder = await as('responder');
      const res = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Web app down',
        kind: 'outage',
        severity: 'critical',
        status: 'investigating',
        'component:web-app': 'major_outage',
        body: 'The web app does not load.',
      });
      expect(res.status).toBe(303);
      const tamper = '?status=operational&overall=operational&badge=SOC2&certified=true&compliance=ISO27001&uptime=100';
      const headers = { cookie: 'status=operational; badge=SOC2; overall=operational', 'x-status': 'operational' };
      const plain = JSON.parse((await get('/api/v1/status.json')).body) as { overall: string };
      const tampered = JSON.parse((await get(`/api/v1/status.json${tamper}`, headers)).body) as { overall: string };
      expect(plain.overall).toBe('outage');
      expect(tampered.overall).toBe('outage');
      expect(text(await get(`/status${tamper}`, headers))).not.toContain('All services are operational');
      expect((await get(`/${tamper}`, headers)).body).toBe((await get('/')).body);
      expect((await get(`/api/v1/trust.json${tamper}`, headers)).body).toBe((await get('/api/v1/trust.json')).body);
      // no script of ours (src/scripts, built into dist/client/_astro) reads the address bar but the search page's query, and none writes markup
      for (const file of clientFiles().filter((f) => f.endsWith('.js') && f.includes('/_astro/'))) {
        const source = readFileSync(file, 'utf8');
        if (/location\.(search|hash)|URLSearchParams\(location/.test(source))
          expect(relative(ROOT, file)).toMatch(/pagefind|search|_id_|index\.astro_astro_type_script/);
        expect(source, relative(ROOT, file)).not.toMatch(/innerHTML\s*=|outerHTML\s*=|document\.write\(|insertAdjacentHTML/);
      }
    });

    it('unauthenticated audit download: no spelling of the export route gives the log to anyone but an admin', async () => {
      const viewer = (await signedInStaffOn(db, 'viewer')).token;
      const paths = [
        '/console/audit/export?format=csv',
        '/console/audit/export?format=json',
        '/console/audit/export/?format=csv',
        '/console/audit/export.csv',
        '/console//audit/export?format=csv',
        '/console/./audit/export?format=csv',
        '/%63onsole/audit/export?format=csv',
        '/console/audit/export;.css?format=csv',
        '/console/audit/export%3Fformat=csv',
        '/console/audit/../audit/export?format=csv',
        '/CONSOLE/AUDIT/EXPORT?format=csv',
        '/console/subscribers/export.csv',
        '/console/subscribers/export.json',
        '/_actions/auditExport',
      ];
      const bypass = {
        'x-original-url': '/console/audit/export?format=csv',
        'x-rewrite-url': '/console/audit/export?format=csv',
        'x-forwarded-for': '127.0.0.1',
      };
      for (const path of paths) {
        for (const [who, cookie] of [
          ['anonymous', ''],
          ['a forged cookie', `${COOKIE}=a.b`],
          ['a viewer', `${COOKIE}=${viewer}`],
        ] as const) {
          for (const method of ['GET', 'HEAD']) {
            const res = await send(`${server.url}${path}`, { method, headers: { ...bypass, ...(cookie ? { cookie } : {}) } });
            const where = `${method} ${path} as ${who}`;
            expect(res.headers.get('content-type') ?? '', where).not.toMatch(/text\/csv|application\/json/);
            expect(res.headers.get('content-disposition'), where).toBeNull();
            expect(res.body, where).not.toMatch(/^id,at,|"action":\s*"auth\./);
          }
        }
      }
    });

    it('predictable session tokens and bypass tokens: sessions are random, and no header, cookie or parameter stands in for one', async () => {
      const { email, staffId } = await signedInStaffOn(db, 'owner');
      await setPassword(staffId, PASSWORD);
      const tokens: string[] = [];
      for (let i = 0; i < 8; i++) {
        const browser = new Client(server.url, `127.0.71.${i + 1}`);
        await browser.post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
        tokens.push(browser.cookie(COOKIE) ?? '');
      }
      expect(new Set(tokens).size).toBe(8);
      const ids = tokens.map((t) => t.split('.')[0] ?? '');
      const secrets = tokens.map((t) => t.split('.')[1] ?? '');
      for (const part of [...ids, ...secrets]) expect(part).toMatch(/^[a-z0-9]{24,}$/);
      for (let i = 1; i < tokens.length; i++) {
        expect(commonPrefix(ids[i - 1] ?? '', ids[i] ?? '')).toBeLessThan(4);
        expect(commonPrefix(secrets[i - 1] ?? '', secrets[i] ?? '')).toBeLessThan(4);
      }
      // about 5 bits per base32 character: the letters of eight secrets are spread over the alphabet, not a counter or a clock
      expect(new Set(secrets.join('')).size).toBeGreaterThan(24);
      for (const t of tokens) expect(t).not.toContain(String(staffId).padStart(4, '0'));

      const bypasses: Record<string, string>[] = [
        { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', 'x-client-ip': '127.0.0.1' },
        { 'x-original-url': '/console/sign-in', 'x-rewrite-url': '/console/sign-in' },
        { authorization: 'Bearer admin' },
        { authorization: 'Basic YWRtaW46YWRtaW4=' },
        { 'x-candor-bypass': '1', 'x-debug': '1', 'x-admin': 'true', 'x-role': 'owner' },
        { cookie: 'role=owner; admin=true; debug=1; mfa=verified' },
        { cookie: `${COOKIE}=${ids[0]}.` },
        { cookie: `${COOKIE}=${ids[0]}` },
        { cookie: `${COOKIE}=.${secrets[0]}` },
        { cookie: `${COOKIE}=${ids[0]}.${secrets[1]}` },
      ];
      for (const headers of bypasses) {
        for (const path of ['/console/staff', '/console/staff?debug=true&admin=1&bypass=1&role=owner']) {
          const res = await get(path, headers);
          expect(res.status, JSON.stringify(headers)).toBe(303);
          expect(res.headers.get('location')).toMatch(/^\/console\/sign-in/);
        }
      }
      // a viewer claiming more is still a viewer
      expect(
        (
          await send(`${server.url}/console/staff`, {
            headers: { cookie: `${COOKIE}=${(await signedInStaffOn(db, 'viewer')).token}`, 'x-role': 'owner' },
          })
        ).status,
      ).toBe(403);
    });

    it('verbose errors: an unexpected failure shows a generic message, and its detail goes to the log only', async () => {
      const detail = 'disk I/O error at /var/lib/candor/candor.db (internal detail 4f2a)';
      const undo = await failInserts(running, 'staff_links', detail);
      try {
        const owner = await as('owner');
        const page = await owner.post('/console/staff?_action=inviteStaff', { email: 'fails@lumenwork.example', role: 'viewer' });
        const rpc = await owner.post('/_actions/inviteStaff', { email: 'fails2@lumenwork.example', role: 'viewer' });
        for (const [what, res] of [
          ['the page', page],
          ['the action endpoint', rpc],
        ] as const) {
          expect(res.status, what).toBe(500);
          expect(res.body, what).not.toContain('internal detail');
          expect(res.body, what).not.toMatch(/SqliteError|SQLITE_|DatabaseError|P0001|\/var\/lib|staff_links|at \w+ \(/);
          expectNoStackTrace(res.body, what);
          expect(text(res), what).toContain('Something went wrong on our side');
        }
        expect(server.output()).toContain('action inviteStaff failed');
        expect(server.output()).toContain('internal detail 4f2a');
        // the reason, not the failing statement with its values (the link's id, the hash of its secret)
        expect(server.output()).not.toMatch(/Failed query|params:/);
      } finally {
        await undo();
      }
      // and the ordinary error pages name nothing internal
      for (const path of ['/no-such-page', '/docs/no-such-doc', '/incidents/abc', '/subscription/x']) {
        const res = await get(path);
        expectNoStackTrace(res.body, path);
        expect(res.headers.get('x-powered-by')).toBeNull();
        expect(res.headers.get('server')).toBeNull();
        expect(res.body).not.toMatch(/Astro v\d|astro@\d|node\/v?\d+\.\d+/i);
      }
    });

    it('wildcard CORS with credentials: public data is open to any origin without credentials, the rest to none', async () => {
      for (const path of ['/api/v1/status.json', '/api/v1/trust.json', '/feeds/incidents.json']) {
        const res = await get(path, { origin: 'https://evil.example', cookie: `${COOKIE}=${(await signedInStaffOn(db, 'owner')).token}` });
        expect(res.headers.get('access-control-allow-origin'), path).toBe('*');
        expect(res.headers.get('access-control-allow-credentials'), path).toBeNull();
        expect(res.headers.get('vary') ?? '', path).not.toMatch(/cookie/i);
      }
      for (const path of [
        '/console',
        '/console/deliveries/progress.json?ids=1',
        '/console/audit/export?format=json',
        '/subscription/x/export.json',
      ]) {
        for (const method of ['GET', 'OPTIONS']) {
          const res = await send(`${server.url}${path}`, {
            method,
            headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'cookie' },
          });
          expect(res.headers.get('access-control-allow-origin'), `${method} ${path}`).toBeNull();
          expect(res.headers.get('access-control-allow-credentials'), `${method} ${path}`).toBeNull();
        }
      }
    });

    it('stored XSS: a script typed into an incident is text on the public page (the full corpus: injection.test.ts)', async () => {
      const res = await (await as('responder')).post('/console/incidents/new?_action=publishIncident', {
        title: '<script>alert(document.cookie)</script>',
        kind: 'outage',
        severity: 'minor',
        status: 'investigating',
        'component:search': 'degraded',
        body: '<img src=x onerror=alert(1)> [x](javascript:alert(1))',
      });
      const id = /\/console\/incidents\/(\d+)/.exec(res.headers.get('location') ?? '')?.[1] ?? '';
      const page = (await get(`/incidents/${id}`)).body;
      expect(activeMarkup(page)).toEqual([]);
      expect(pageText(page)).toContain('<script>alert(document.cookie)</script>');
    });

    it('XXE: XML sent to any endpoint is refused unread; no server code parses XML', async () => {
      const xxe =
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY y SYSTEM "http://127.0.0.1:9/">]><r>&x;&y;</r>';
      const owner = await as('owner');
      for (const path of [
        '/webhooks/resend',
        '/webhooks/twilio/status',
        '/webhooks/twilio/inbound',
        '/unsubscribe/x',
        '/subscribe?_action=subscribe',
        '/_actions/signIn',
        '/console/staff?_action=inviteStaff',
      ]) {
        for (const type of ['application/xml', 'text/xml', 'application/soap+xml']) {
          const res = await owner.request(path, { method: 'POST', headers: { 'content-type': type, origin: server.url }, body: xxe });
          expect(res.status, `${path} ${type}`).toBeGreaterThanOrEqual(400);
          expect(res.status, `${path} ${type}`).toBeLessThan(500);
          expect(res.body).not.toMatch(/root:x:0:0/);
        }
      }
      const serverSources = (dir: string): string[] =>
        readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? serverSources(join(dir, e.name)) : [join(dir, e.name)],
        );
      for (const file of serverSources(join(ROOT, 'src')).filter((f) => !f.includes('/src/scripts/'))) {
        expect(readFileSync(file, 'utf8'), relative(ROOT, file)).not.toMatch(
          /from '(saxes|xml2js|fast-xml-parser|libxmljs2?|xmldom|@xmldom\/xmldom|sax)'|new DOMParser/,
        );
      }
    });

    it('sessions in localStorage: the session is an HttpOnly cookie, and no script of ours touches storage', async () => {
      for (const file of clientFiles().filter((f) => /\.(js|html)$/.test(f))) {
        expect(readFileSync(file, 'utf8'), relative(ROOT, file)).not.toMatch(/localStorage|sessionStorage|indexedDB|document\.cookie/);
      }
      const { email, staffId } = await signedInStaffOn(db, 'viewer');
      await setPassword(staffId, PASSWORD);
      const res = await new Client(server.url, '127.0.72.1').post('/console/sign-in?_action=signIn', {
        email,
        password: PASSWORD,
        next: '/console',
      });
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`)) ?? '';
      expect(cookie).toMatch(/;\s*HttpOnly/i);
      expect(cookie).toMatch(/;\s*SameSite=Lax/i);
    });

    it('permissive CSP and framing: scripts from our origin or by hash only, no plugins, no base or form retargeting, no framing', async () => {
      for (const path of ['/', '/status', '/subscribe', '/console/sign-in', '/api/v1/status.json', '/favicon.svg', '/no-such-page']) {
        const res = await get(path);
        const policy = res.headers.get('content-security-policy') ?? '';
        const metas = [...res.body.matchAll(/http-equiv="content-security-policy" content="([^"]+)"/g)].map((m) => m[1] ?? '');
        expect(res.headers.get('x-frame-options'), path).toBe('DENY');
        expect(policy, path).toContain("frame-ancestors 'none'");
        expect(policy, path).toContain("object-src 'none'");
        for (const p of [policy, ...metas]) {
          for (const directive of p.split(';').map((d) => d.trim().split(/\s+/))) {
            const [name, ...sources] = directive;
            if (name === 'script-src' || name === 'default-src' || name === 'style-src') {
              for (const source of sources)
                expect(source, `${path} ${name}`).toMatch(/^('self'|'none'|'wasm-unsafe-eval'|'sha(256|384|512)-[A-Za-z0-9+/=]+')$/);
            }
            if (name === 'base-uri' || name === 'form-action') expect(sources, `${path} ${name}`).toEqual(["'self'"]);
          }
        }
      }
    });

    it('unchecked uploads: a file sent to any form is not stored, served or run', async () => {
      const before = readdirSync(server.dataDir).sort();
      const clientBefore = clientFiles().length;
      const boundary = 'candor-upload-test';
      const body = [
        `--${boundary}\r\nContent-Disposition: form-data; name="channel"\r\n\r\nemail\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="address"\r\n\r\nupload@customer.example\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="topics"\r\n\r\nincidents\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="../../../dist/client/shell.php"\r\nContent-Type: application/x-php\r\n\r\n<?php system($_GET['c']); ?>\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="address"; filename="evil.svg"\r\nContent-Type: image/svg+xml\r\n\r\n<svg onload="alert(1)"/>\r\n`,
        `--${boundary}--\r\n`,
      ].join('');
      const owner = await as('owner');
      for (const path of [
        '/subscribe?_action=subscribe',
        '/_actions/subscribe',
        '/console/staff?_action=inviteStaff',
        '/webhooks/resend',
        '/unsubscribe/x',
      ]) {
        const res = await owner.request(path, {
          method: 'POST',
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, origin: server.url },
          body,
        });
        expect(res.status, path).toBeLessThan(500);
        expect(activeMarkup(res.body), path).toEqual([]);
      }
      // The one form that takes a file, the subscriber import: spooled to a folder of the data dir, read as CSV, then removed.
      const imported = await owner.request('/console/subscribers/import', {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, origin: server.url },
        body,
      });
      expect(imported.status).toBe(400);
      expect(activeMarkup(imported.body)).toEqual([]);
      for (const path of ['/shell.php', '/uploads/shell.php', '/evil.svg', '/uploads/evil.svg']) expect((await get(path)).status).toBe(404);
      expect(readdirSync(server.dataDir).sort()).toEqual(before);
      expect(clientFiles().length).toBe(clientBefore);
      const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter(
        (f) => /\.(ts|astro)$/.test(f) && f !== join('pages', 'console', 'subscribers', 'import.astro'),
      );
      for (const f of sources)
        expect(readFileSync(join(ROOT, 'src', f), 'utf8'), f).not.toMatch(/type="file"|instanceof File\b|:\s*File\b/);
    });
  });
});

function commonPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && a[n] === b[n]) n++;
  return n;
}
