/**
 * The staff API (/api/v1, issue 17) against a running server, on each engine (SQLite, and PostgreSQL
 * when CANDOR_TEST_POSTGRES_URL is set):
 * - contract: every answer (successes and each kind of problem) is valid against its operation's
 *   response schema in /api/openapi.json, checked with ajv (JSON Schema 2020-12);
 * - authorisation as a property: every operation × (no token, a token without the permission, with it,
 *   revoked, expired) answers 401 / 403 / its success as the registry says;
 * - Idempotency-Key: replay, reuse for another request, two concurrent identical POSTs declare one incident;
 * - declaring through the API puts the incident on /status, queues a notification to subscribers and
 *   audits it naming the token and its maker; a breach is not public unless asked;
 * - refusals are problem details (malformed JSON, wrong content type, 404, 405 with Allow, 422 with
 *   `errors`, lone surrogates and NUL); no CORS grant, even to a preflight; a console cookie grants nothing;
 * - Console → API tokens makes a token shown once, which works, and revokes it.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { createApiToken, revokeApiToken } from '../../src/core/api/tokens.ts';
import { type DocDiff, fingerprint } from '../../src/core/changes/diff.ts';
import { type ApiOperation, apiOperations } from '../../src/lib/api/operations.ts';
import { insertDraft } from '../../src/stores/change-notices.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import type { RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

type TokenState = 'none' | 'without' | 'with' | 'revoked' | 'expired';
const client = { ip: null, userAgent: 'staff-api-test' };
let keyCounter = 0;
const newKey = () => `test-key-${Date.now()}-${++keyCounter}`;

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let admin: { email: string; staffId: number; token: string };
  const tokens: Record<Exclude<TokenState, 'none'>, string> = { without: '', with: '', revoked: '', expired: '' };
  let openapi: { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  let ajv: InstanceType<typeof Ajv2020>;
  let subscriberIds: number[] = [];

  beforeAll(async () => {
    running = await engine.start({
      env: { CANDOR_SECRET: TEST_KEYS.secret, CANDOR_ENCRYPTION_KEY: (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex') },
    });
    server = running.server;
    db = running.database;
    const recipients = await addSubscribersTo(db, TEST_KEYS, { count: 3, channel: 'email' });
    subscriberIds = await readRows(db, async (q) => {
      const r = q.t.recipients;
      const rows = await q.db.select({ subscriberId: r.subscriberId, id: r.id }).from(r).where(eq(r.trustCenterId, q.trustCenter));
      return rows.filter((row) => recipients.includes(row.id)).map((row) => row.subscriberId ?? 0);
    });
    admin = await signedInStaffOn(db, 'admin');
    const creator = { id: admin.staffId, email: admin.email, role: 'admin' as const };
    const make = async (name: string, scopes: string[], at = new Date(), days = 30) => {
      const made = await createApiToken(db, creator, client, { name, scopes, days }, at);
      if (!made.ok) throw new Error(made.message);
      return made;
    };
    const everything = [
      'incidents.view',
      'incidents.manage',
      'subscribers.view',
      'subscribers.export',
      'subscribers.manage',
      'announcements.manage',
      'deliveries.view',
      'alerts.ingest',
    ];
    tokens.with = (await make('full', everything)).token;
    tokens.without = (await make('audit only', ['audit.view'])).token;
    const revoked = await make('revoked', everything);
    await revokeApiToken(db, creator, client, revoked.view.id, new Date());
    tokens.revoked = revoked.token;
    tokens.expired = (await make('expired', everything, new Date(Date.now() - 3 * 86_400_000), 1)).token;
    openapi = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as typeof openapi;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema(openapi, 'openapi');
  });
  afterAll(async () => {
    await running?.stop();
  });

  async function call(
    method: string,
    path: string,
    options: { token?: TokenState; body?: unknown; raw?: string; key?: string | null; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const token = options.token ?? 'with';
    const headers: Record<string, string> = { ...options.headers };
    if (token !== 'none') headers.authorization = `Bearer ${tokens[token]}`;
    if (method === 'POST' && options.key !== null) headers['idempotency-key'] = options.key ?? newKey();
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(`${server.url}${path}`, { method, headers, body, redirect: 'manual' });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** The answer is what the OpenAPI document says this operation answers with this status. */
  function expectContract(operation: ApiOperation, answer: Answer): void {
    const where = `${operation.method} ${operation.path} → ${answer.status}: ${answer.text.slice(0, 300)}`;
    const described = openapi.paths[operation.path]?.[operation.method.toLowerCase()];
    expect(described?.responses[String(answer.status)], `${where}: status not documented`).toBeDefined();
    const problem = answer.status >= 400;
    expect(answer.headers.get('content-type'), where).toMatch(problem ? /^application\/problem\+json/ : /^application\/json/);
    const pointer = `openapi#/paths/${encodeURIComponent(operation.path.replaceAll('~', '~0').replaceAll('/', '~1'))}/${operation.method.toLowerCase()}/responses/${answer.status}/content/${
      problem ? 'application~1problem+json' : 'application~1json'
    }/schema`;
    const validate = ajv.getSchema(pointer);
    expect(validate, `${where}: no schema at ${pointer}`).toBeDefined();
    const valid = validate?.(answer.json);
    expect(valid, `${where}: ${ajv.errorsText(validate?.errors)}`).toBe(true);
    expect(answer.headers.get('access-control-allow-origin'), `${where}: no CORS`).toBeNull();
  }

  const op = (id: string): ApiOperation => {
    const found = apiOperations.find((o) => o.id === id);
    if (!found) throw new Error(id);
    return found;
  };

  const declare = (title: string, extra: Record<string, unknown> = {}) => ({
    kind: 'outage',
    severity: 'major',
    title,
    status: 'investigating',
    body: `We are looking into ${title}.`,
    components: { 'web-app': 'partial_outage' },
    ...extra,
  });

  const incidentsTitled = (title: string) =>
    readRows(db, (q) => {
      const i = q.t.incidents;
      return q.db
        .select({ id: i.id, public: i.public })
        .from(i)
        .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.title, title)));
    });

  /** A drafted change notice (a new document, as detection drafts one), by its id. */
  const draftNotice = (slug: string) =>
    db.transaction(async (tx) => {
      const diff: DocDiff = {
        subject: 'doc',
        change: 'added',
        id: slug,
        name: `Policy ${slug}`,
        before: null,
        after: { slug, title: `Policy ${slug}`, summary: 'In short.', updated: '2026-12-01', body: '# Policy\n\nText.' },
        sections: [],
      };
      const row = await insertDraft(tx, {
        subject: 'doc',
        change: 'added',
        subjectId: slug,
        subjectName: diff.name,
        details: diff,
        fingerprint: fingerprint(diff),
        intro: `About ${diff.name}.`,
        detectedAt: new Date(),
      });
      return row.id;
    });

  /** An operation's example payload with it and its alerts resolved. */
  const resolvedExample = (example: unknown) => {
    const payload = example as { alerts: Record<string, unknown>[] };
    return { ...payload, status: 'resolved', alerts: payload.alerts.map((a) => ({ ...a, status: 'resolved' })) };
  };

  describe('authorisation, as a property of every operation', () => {
    /** A request each operation succeeds with (given the permission), on rows the test made. */
    async function requestFor(operation: ApiOperation): Promise<{ path: string; body?: unknown }> {
      const seeded = await call('POST', '/api/v1/incidents', { body: declare(`Seed for ${operation.id}`) });
      const { incidentId, notificationId } = seeded.json as { incidentId: number; notificationId: number };
      switch (operation.id) {
        case 'getIncident':
        case 'editIncident':
          return { path: `/api/v1/incidents/${incidentId}`, body: { severity: 'critical' } };
        case 'postIncidentUpdate':
          return { path: `/api/v1/incidents/${incidentId}/updates`, body: { status: 'identified', body: 'Found it.' } };
        case 'removeSubscriber':
          return { path: `/api/v1/subscribers/${subscriberIds.pop()}` };
        case 'getNotificationProgress':
          return { path: `/api/v1/notifications/${notificationId}` };
        case 'publishChangeNotice':
          return { path: `/api/v1/change-notices/${await draftNotice(`matrix-${operation.id}`)}/publish`, body: {} };
        case 'scheduleMaintenance':
          return {
            path: '/api/v1/maintenances',
            body: {
              title: 'Upgrade',
              body: 'We upgrade the database.',
              components: ['web-app'],
              window: {
                startsAt: new Date(Date.now() + 86_400_000).toISOString(),
                endsAt: new Date(Date.now() + 90_000_000).toISOString(),
              },
            },
          };
        case 'declareIncident':
          return { path: operation.path, body: declare('Declared in the matrix') };
        case 'setComponentStatus':
          return { path: '/api/v1/components/web-app/status', body: { status: 'operational', note: 'matrix' } };
        // resolved notices of alerts with no open draft: checked and answered, nothing changes
        case 'receiveAlertmanager':
        case 'receiveGrafana':
          return { path: operation.path, body: resolvedExample(operation.example) };
        case 'receiveGenericAlert':
          return { path: operation.path, body: { ...(operation.example as object), status: 'resolved' } };
        default:
          return { path: operation.path };
      }
    }

    it.each(apiOperations.map((o) => [o.id, o] as const))('%s', async (_id, operation) => {
      const request = await requestFor(operation);
      const expected: Record<TokenState, number> = {
        none: 401,
        without: 403,
        revoked: 401,
        expired: 401,
        with: operation.success.status,
      };
      // "with" last: it may change what it acts on
      for (const state of ['none', 'without', 'revoked', 'expired', 'with'] as const) {
        const answer = await call(operation.method, request.path, { token: state, body: operation.body ? request.body : undefined });
        expect(answer.status, `${operation.id} with token "${state}": ${answer.text.slice(0, 300)}`).toBe(expected[state]);
        expectContract(operation, answer);
        if (answer.status === 401) expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer /);
      }
    });
  });

  describe('publishing a change notice through the API', () => {
    it('publishes the draft as saved, answers with its deliveries, and refuses a second publish or an unknown notice', async () => {
      const id = await draftNotice('api-published');
      const answer = await call('POST', `/api/v1/change-notices/${id}/publish`, { body: {} });
      expect(answer.status, answer.text).toBe(200);
      expectContract(op('publishChangeNotice'), answer);
      const { noticeId, deliveries } = answer.json as { noticeId: number; deliveries: number };
      expect(noticeId).toBe(id);
      const [stored] = await readRows(db, (q) => {
        const n = q.t.changeNotices;
        return q.db.select({ status: n.status, notificationId: n.notificationId }).from(n).where(eq(n.id, id));
      });
      expect(stored?.status).toBe('published');
      const queued = await readRows(db, (q) =>
        q.db.$count(q.t.deliveries, eq(q.t.deliveries.notificationId, stored?.notificationId ?? -1)),
      );
      expect(Number(queued)).toBe(deliveries);
      const again = await call('POST', `/api/v1/change-notices/${id}/publish`, { body: {} });
      expect(again.status, again.text).toBe(422);
      expect((again.json as { detail: string }).detail).toBe('This notice is already published.');
      expectContract(op('publishChangeNotice'), again);
      const unknown = await call('POST', '/api/v1/change-notices/999999/publish', { body: {} });
      expect(unknown.status).toBe(404);
      expectContract(op('publishChangeNotice'), unknown);
    });
  });

  describe('declaring through the API', () => {
    it('puts the incident on /status, notifies subscribers and audits it naming the token and its maker', async () => {
      const answer = await call('POST', '/api/v1/incidents', { body: declare('Payments failing') });
      expect(answer.status).toBe(201);
      expectContract(op('declareIncident'), answer);
      const result = answer.json as { incidentId: number; notificationId: number; deliveries: number; url: string };
      expect(result.deliveries).toBeGreaterThanOrEqual(1);
      const status = await (await fetch(`${server.url}/status`)).text();
      expect(status).toContain('Payments failing');
      const progress = await call('GET', `/api/v1/notifications/${result.notificationId}`);
      expect(progress.status).toBe(200);
      expectContract(op('getNotificationProgress'), progress);
      expect((progress.json as { total: number }).total).toBe(result.deliveries);
      const audit = await readRows(db, (q) => {
        const a = q.t.auditLog;
        return q.db
          .select({ label: a.actorLabel, actorId: a.actorId })
          .from(a)
          .where(
            and(eq(a.trustCenterId, q.trustCenter), eq(a.action, 'incidents.declared'), eq(a.target, `incident:${result.incidentId}`)),
          );
      });
      expect(audit).toEqual([
        { label: expect.stringMatching(new RegExp(`^${admin.email} via API token "full" \\(cnd_\\w{6}…\\)$`)), actorId: admin.staffId },
      ]);
      const read = await call('GET', `/api/v1/incidents/${result.incidentId}`);
      expectContract(op('getIncident'), read);
      expect(read.json).toMatchObject({ title: 'Payments failing', public: true, updates: [{ status: 'investigating' }] });
    });

    it('refuses a body the personal-data guard flags, naming the finding, unless confirmed', async () => {
      const flagged = declare('Login trouble', { body: 'Customer jane.doe@example.com cannot sign in.' });
      const refused = await call('POST', '/api/v1/incidents', { body: flagged });
      expect(refused.status).toBe(422);
      expectContract(op('declareIncident'), refused);
      expect(refused.json).toMatchObject({ errors: [{ field: 'body' }], findings: [{ label: expect.stringMatching(/email/i) }] });
      expect(await incidentsTitled('Login trouble')).toEqual([]);
      const confirmed = await call('POST', '/api/v1/incidents', { body: { ...flagged, confirmPersonalData: true } });
      expect(confirmed.status).toBe(201);
    });

    it("applies the console's breach rules: facts required, not public unless asked", async () => {
      const missing = await call('POST', '/api/v1/incidents', {
        body: declare('Breach A', { kind: 'breach', components: { 'web-app': 'degraded' } }),
      });
      expect(missing.status).toBe(422);
      expectContract(op('declareIncident'), missing);
      expect((missing.json as { detail: string }).detail).toMatch(/breach needs its facts/);
      const facts = {
        awareAt: new Date(Date.now() - 3_600_000).toISOString(),
        nature: 'A misconfigured bucket exposed exports.',
        subjects: 'About 40 customers',
        records: 'About 40 invoices',
        consequences: 'Names and amounts were readable.',
        measures: 'The bucket was closed.',
      };
      const declared = await call('POST', '/api/v1/incidents', {
        body: declare('Breach B', { kind: 'breach', components: { 'web-app': 'degraded' }, breach: facts }),
      });
      expect(declared.status, declared.text).toBe(201);
      expect(await incidentsTitled('Breach B')).toEqual([expect.objectContaining({ public: false })]);
      expect(await (await fetch(`${server.url}/status`)).text()).not.toContain('Breach B');
    });
  });

  describe('Idempotency-Key', () => {
    it('replays the first answer to a retry, refuses the key for another request, and asks for it on every POST', async () => {
      const key = newKey();
      const first = await call('POST', '/api/v1/incidents', { body: declare('Retried once'), key });
      const again = await call('POST', '/api/v1/incidents', { body: declare('Retried once'), key });
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.text).toBe(first.text);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      expect(await incidentsTitled('Retried once')).toHaveLength(1);
      const other = await call('POST', '/api/v1/incidents', { body: declare('Something else'), key });
      expect(other.status).toBe(422);
      expectContract(op('declareIncident'), other);
      expect((other.json as { type: string }).type).toMatch(/#problem-idempotency-key-reused$/);
      const without = await call('POST', '/api/v1/incidents', { body: declare('No key'), key: null });
      expect(without.status).toBe(400);
      expectContract(op('declareIncident'), without);
      expect((without.json as { detail: string }).detail).toContain('Idempotency-Key');
      const bad = await call('POST', '/api/v1/incidents', { body: declare('Bad key'), key: 'é' });
      expect(bad.status).toBe(400);
    });

    it('declares one incident for two concurrent identical POSTs', async () => {
      const key = newKey();
      const both = await Promise.all([
        call('POST', '/api/v1/incidents', { body: declare('Raced'), key }),
        call('POST', '/api/v1/incidents', { body: declare('Raced'), key }),
      ]);
      for (const answer of both) {
        expect([201, 409], answer.text).toContain(answer.status);
        expectContract(op('declareIncident'), answer);
      }
      expect(both.some((a) => a.status === 201)).toBe(true);
      expect(await incidentsTitled('Raced')).toHaveLength(1);
    });
  });

  describe('refusals are problem details', () => {
    const declareOp = () => op('declareIncident');

    it('malformed JSON and a wrong content type: 400', async () => {
      const malformed = await call('POST', '/api/v1/incidents', { raw: '{"kind": ' });
      expect(malformed.status).toBe(400);
      expectContract(declareOp(), malformed);
      const form = await call('POST', '/api/v1/incidents', {
        raw: 'kind=outage',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(form.status).toBe(400);
      expectContract(declareOp(), form);
    });

    it('invalid fields: 422 naming each, unknown fields too', async () => {
      const answer = await call('POST', '/api/v1/incidents', { body: { ...declare('x'), severity: 'apocalyptic', colour: 'red' } });
      expect(answer.status).toBe(422);
      expectContract(declareOp(), answer);
      const fields = (answer.json as { errors: { field: string }[] }).errors.map((e) => e.field);
      expect(fields).toEqual(expect.arrayContaining(['severity']));
      expect(answer.text).toContain('colour');
    });

    it('a lone surrogate or a NUL in a string: 422, nothing stored', async () => {
      const surrogate = await call('POST', '/api/v1/incidents', {
        raw: JSON.stringify(declare('Lone')).replace('"Lone"', '"Lone \\ud800"'),
      });
      expect(surrogate.status).toBe(422);
      expectContract(declareOp(), surrogate);
      expect((surrogate.json as { errors: { field: string }[] }).errors[0]?.field).toBe('title');
      const nul = await call('POST', '/api/v1/incidents', { raw: JSON.stringify(declare('Nul')).replace('"Nul"', '"Nul \\u0000"') });
      expect(nul.status).toBe(422);
      expectContract(declareOp(), nul);
      const nulUpdate = await call('POST', '/api/v1/incidents/1/updates', { raw: '{"status":"identified","body":"a\\u0000b"}' });
      expect(nulUpdate.status).toBe(422);
      expectContract(op('postIncidentUpdate'), nulUpdate);
      expect(await incidentsTitled('Lone \ud800')).toEqual([]);
    });

    it('a body over 64 KiB: 413', async () => {
      const answer = await call('POST', '/api/v1/incidents', { body: declare('Big', { body: 'x'.repeat(70_000) }) });
      expect(answer.status).toBe(413);
      expectContract(declareOp(), answer);
    });

    it('over 600 requests a minute with one token: 429 with Retry-After', async () => {
      const creator = { id: admin.staffId, email: admin.email, role: 'admin' as const };
      const made = await createApiToken(db, creator, client, { name: 'busy', scopes: ['incidents.view'], days: 1 }, new Date());
      if (!made.ok) throw new Error(made.message);
      const get = () => fetch(`${server.url}/api/v1/notifications/999999`, { headers: { authorization: `Bearer ${made.token}` } });
      let statuses: number[] = [];
      for (let batch = 0; batch < 12; batch++) {
        const answers = await Promise.all(Array.from({ length: 50 }, get));
        statuses = statuses.concat(answers.map((a) => a.status));
        await Promise.all(answers.map((a) => a.arrayBuffer()));
      }
      // this token lacks deliveries.view: 403 until the limit, counted all the same
      expect(statuses.filter((s) => s === 403)).toHaveLength(600);
      const over = await call('GET', '/api/v1/notifications/999999', { headers: { authorization: `Bearer ${made.token}` }, token: 'none' });
      expect(over.status).toBe(429);
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      expectContract(op('getNotificationProgress'), over);
    }, 120_000);

    it('an unknown row: 404; an unknown method: 405 with Allow', async () => {
      const missing = await call('GET', '/api/v1/incidents/999999');
      expect(missing.status).toBe(404);
      expectContract(op('getIncident'), missing);
      const notAnId = await call('GET', '/api/v1/incidents/abc');
      expect(notAnId.status).toBe(404);
      const put = await call('PUT', '/api/v1/incidents', { body: {} });
      expect(put.status).toBe(405);
      expect(put.headers.get('allow')).toBe('GET, POST, OPTIONS');
      expect(put.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });
  });

  describe('closed to browsers', () => {
    it('answers a preflight from anywhere without a CORS grant', async () => {
      const res = await fetch(`${server.url}/api/v1/incidents`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://evil.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization',
        },
      });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-headers')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
    });

    it('a cross-site POST carrying a console cookie: 401 as a problem, nothing declared', async () => {
      const owner = await signedInStaffOn(db, 'owner');
      const res = await fetch(`${server.url}/api/v1/incidents`, {
        method: 'POST',
        headers: {
          cookie: `candor_session=${owner.token}`,
          origin: 'https://evil.example',
          'sec-fetch-site': 'cross-site',
          'content-type': 'application/json',
          'idempotency-key': newKey(),
        },
        body: JSON.stringify(declare('Forged')),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(await incidentsTitled('Forged')).toEqual([]);
    });

    it('a signed-in console session without a token: 401', async () => {
      const owner = await signedInStaffOn(db, 'owner');
      for (const path of ['/api/v1/incidents', '/api/v1/subscribers']) {
        const res = await fetch(`${server.url}${path}`, { headers: { cookie: `candor_session=${owner.token}` } });
        expect(res.status, path).toBe(401);
      }
    });
  });

  describe('Console → API tokens', () => {
    it('makes a token shown once, which works, and revokes it', async () => {
      const console = new ConsoleClient(server.url);
      console.setCookie('candor_session', admin.token);
      const made = await console.post('/console/api-tokens?_action=createApiToken', {
        name: 'Dashboard bot',
        scopes: 'incidents.view',
        days: '30',
      });
      expect(made.status).toBe(200);
      expect(made.headers.get('cache-control')).toBe('no-store');
      const secret = /value="(cnd_[a-z2-7]{48})"/.exec(made.html)?.[1] ?? '';
      expect(secret).not.toBe('');
      const page = await console.get('/console/api-tokens');
      expect(page.html).toContain('Dashboard bot');
      expect(page.html).not.toContain(secret);
      const used = await fetch(`${server.url}/api/v1/incidents`, { headers: { authorization: `Bearer ${secret}` } });
      expect(used.status).toBe(200);
      const forbidden = await fetch(`${server.url}/api/v1/subscribers`, { headers: { authorization: `Bearer ${secret}` } });
      expect(forbidden.status).toBe(403);
      const id = /data-token-id="(\d+)"[^>]*data-state="active">\s*<th scope="row">Dashboard bot<br/.exec(page.html)?.[1] ?? '';
      const revoked = await console.post('/console/api-tokens?_action=revokeApiToken', { tokenId: id });
      expect(revoked.html).toContain('The token was revoked');
      const after = await fetch(`${server.url}/api/v1/incidents`, { headers: { authorization: `Bearer ${secret}` } });
      expect(after.status).toBe(401);
    });
  });
});
