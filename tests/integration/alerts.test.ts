/**
 * Alerts in (issue 17), over HTTP against the running server on each engine: an Alertmanager payload
 * sent with a token made by createApiToken changes the service's state on /status and
 * /api/v1/status.json, opens a draft in Console → Alerts and tells the staff channel once; repeats and
 * a flap fold into the one draft; a responder publishes it and the subscriber of that service gets the
 * email through the real outbox (fake Resend); the resolved payload returns the service to operational
 * and shows the proposal, which resolving publishes. Also: Grafana and generic payloads, bad payloads
 * (422 naming the field), missing token and wrong scope (401/403), an alert that maps to nothing (202,
 * recorded), a service that publishes by itself, the staff API's PUT of a service's status, and the
 * 90-day bars drawn from the rows written (a degraded alert shows degraded, not an outage).
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { alertReceiptSchema, componentStatusResultSchema } from '../../src/core/alerts/payloads.ts';
import { createApiToken } from '../../src/core/api/tokens.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { copyContent, editYaml } from '../helpers/content-fixture.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

type Yaml = Record<string, unknown>[];

/** An Alertmanager webhook payload (version 4), as prometheus.io documents webhook_config's body. */
function alertmanager(status: 'firing' | 'resolved', labels: Record<string, string>, summary = 'Error rate above 5% on api-gateway') {
  const alert = {
    status,
    labels: { alertname: 'HighErrorRate', ...labels },
    annotations: { summary, description: 'More than 5% of requests to the public API failed for 5 minutes.' },
    startsAt: '2026-12-03T09:00:00Z',
    endsAt: status === 'resolved' ? '2026-12-03T09:30:00Z' : '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus.internal:9090/graph?g0.expr=errors',
    fingerprint: '1a30ba71cca2921f',
  };
  return {
    version: '4',
    groupKey: '{}:{alertname="HighErrorRate"}',
    truncatedAlerts: 0,
    status,
    receiver: 'candor',
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: alert.labels,
    commonAnnotations: alert.annotations,
    externalURL: 'http://alertmanager.internal:9093',
    alerts: [alert],
  };
}

interface Outcome {
  alert: string;
  component: string | null;
  draft: number | null;
  result: string;
  incident?: number;
  publishRefused?: string;
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let responder: ConsoleClient;
  let token = '';
  let readOnlyToken = '';
  let ingestOnlyToken = '';

  beforeAll(async () => {
    resend = await startFakeResend();
    slack = await startFakeSlack();
    const port = await freePort();
    const contentDir = copyContent();
    editYaml<Yaml>(contentDir, 'components.yaml', (components) => {
      for (const c of components) {
        if (c.id === 'public-api') c.alerts = { match: { service: 'api' } };
        if (c.id === 'search') c.alerts = { match: { service: 'search' }, status: 'degraded', autoPublish: true };
      }
    });
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: {
        ...providerEnv({ port, resend, slack, testKeys: true }),
        CANDOR_CONTENT_DIR: contentDir,
        SLACK_BOT_TOKEN: 'xoxb-staff-bot',
        SLACK_STAFF_CHANNEL: 'C0STAFF',
      },
    });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'email',
      component: 'public-api',
      address: () => 'api-follower@customer.example',
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', component: 'community', address: () => 'forum@customer.example' });
    const staff = await signedInStaffOn(db, 'responder');
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', staff.token);
    const creator = { id: staff.staffId, email: staff.email, role: 'responder' as const };
    const client = { ip: '127.0.0.1', userAgent: 'test' };
    const made = await createApiToken(
      db,
      creator,
      client,
      { name: 'Alertmanager', scopes: ['alerts.ingest', 'incidents.manage'], days: 30 },
      new Date(),
    );
    if (!made.ok) throw new Error(made.message);
    token = made.token;
    const viewOnly = await createApiToken(db, creator, client, { name: 'Reader', scopes: ['incidents.view'], days: 30 }, new Date());
    if (!viewOnly.ok) throw new Error(viewOnly.message);
    readOnlyToken = viewOnly.token;
    const ingest = await createApiToken(db, creator, client, { name: 'Grafana', scopes: ['alerts.ingest'], days: 30 }, new Date());
    if (!ingest.ok) throw new Error(ingest.message);
    ingestOnlyToken = ingest.token;
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(server?.output());
    await running?.stop();
    await resend?.close();
    await slack?.close();
  });

  const send = (path: string, body: unknown, bearer: string | null = token, method = 'POST') =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: JSON.stringify(body),
    });
  const statusJson = async () =>
    (await (await fetch(`${server.url}/api/v1/status.json`)).json()) as { overall: string; components: { id: string; status: string }[] };
  const componentOnJson = async (id: string) => (await statusJson()).components.find((c) => c.id === id)?.status;
  const statusPage = async () => (await fetch(`${server.url}/status`)).text();
  const stateRe = (id: string) => new RegExp(`data-component="${id}" data-state="([a-z_]+)"`);
  const stateOnPage = async (id: string) => stateRe(id).exec(await statusPage())?.[1];
  const staffSlack = () => slack.messages.filter((m) => m.channel === 'C0STAFF');
  const automationRows = (componentId: string) =>
    readRows(db, (q) =>
      q.db
        .select({ status: q.t.componentStates.status, source: q.t.componentStates.source })
        .from(q.t.componentStates)
        .where(and(eq(q.t.componentStates.componentId, componentId), eq(q.t.componentStates.source, 'automation')))
        .orderBy(asc(q.t.componentStates.id)),
    );

  describe('the done-when story: Alertmanager firing, folded, published, resolved', () => {
    let draftId = 0;
    let incidentId = 0;

    it('a firing alert sets the service state on /status and status.json, opens a draft and tells staff once', async () => {
      expect(await componentOnJson('public-api')).toBe('operational');
      expect(await stateOnPage('public-api')).toBe('operational');
      const res = await send('/api/v1/alerts/alertmanager', alertmanager('firing', { service: 'api', severity: 'major' }));
      expect(res.status).toBe(202);
      // the answer has the documented shape (src/core/alerts/payloads.ts)
      const body = alertReceiptSchema.parse(await res.json());
      expect(body.alerts).toEqual([expect.objectContaining({ component: 'public-api', result: 'opened' })]);
      draftId = body.alerts[0]?.draft ?? 0;
      expect(draftId).toBeGreaterThan(0);
      // severity major, no status in the mapping: a partial outage, at once on both public views
      expect(await componentOnJson('public-api')).toBe('partial_outage');
      expect((await statusJson()).overall).toBe('outage');
      expect(await stateOnPage('public-api')).toBe('partial_outage');
      // the draft waits in the console, and on the dashboard
      const list = await responder.get('/console/alerts');
      expect(list.status).toBe(200);
      expect(list.html).toContain(`data-draft="${draftId}"`);
      expect(text(list.html)).toContain('Problems with Public API');
      expect(text(list.html)).toContain('fired 1 time');
      const dashboard = await responder.get('/console');
      expect(dashboard.html).toContain(`href="/console/alerts/${draftId}"`);
      // nothing public yet: no incident, no email to subscribers
      expect(await (await fetch(`${server.url}/api/v1/status.json`)).text()).not.toContain('Error rate above');
      await until(() => staffSlack().length === 1, 'the staff channel told');
      expect(staffSlack()[0]?.text).toContain('Public API');
      expect(staffSlack()[0]?.text).toContain(`/console/alerts/${draftId}`);
    });

    it('repeats and a flap fold into the one draft, and staff are not told again', async () => {
      const repeat = await send('/api/v1/alerts/alertmanager', alertmanager('firing', { service: 'api', severity: 'major' }));
      expect(((await repeat.json()) as { alerts: Outcome[] }).alerts[0]).toMatchObject({ draft: draftId, result: 'folded' });
      const resolved = await send('/api/v1/alerts/alertmanager', alertmanager('resolved', { service: 'api', severity: 'major' }));
      expect(((await resolved.json()) as { alerts: Outcome[] }).alerts[0]).toMatchObject({ draft: draftId, result: 'resolved' });
      expect(await componentOnJson('public-api')).toBe('operational');
      const again = await send('/api/v1/alerts/alertmanager', alertmanager('firing', { service: 'api', severity: 'major' }));
      expect(((await again.json()) as { alerts: Outcome[] }).alerts[0]).toMatchObject({ draft: draftId, result: 'folded' });
      expect(await componentOnJson('public-api')).toBe('partial_outage');
      const page = await responder.get(`/console/alerts/${draftId}`);
      expect(text(page.html)).toContain('3 times, flapped 1 time');
      expect((page.html.match(/<tr data-status="/g) ?? []).length).toBe(4);
      // one message per draft, whatever the repeats
      await new Promise((r) => setTimeout(r, 500));
      expect(staffSlack()).toHaveLength(1);
      expect(await automationRows('public-api')).toEqual([
        { status: 'partial_outage', source: 'automation' },
        { status: 'operational', source: 'automation' },
        { status: 'partial_outage', source: 'automation' },
      ]);
    });

    it('a responder publishes it with an edited title; the subscriber of that service gets the email', async () => {
      const page = await responder.get(`/console/alerts/${draftId}`);
      expect(text(page.html)).toContain('Recipients: email 1');
      const published = await responder.post(`/console/alerts/${draftId}?_action=publishAlertDraft`, {
        draftId: String(draftId),
        title: 'Errors on the Public API',
        body: 'We are investigating errors on the Public API.',
      });
      // post/redirect/get: a reload does not publish twice
      expect(published.status).toBe(303);
      const shown = await responder.follow(published);
      incidentId = Number(/Published as incident #(\d+)/.exec(text(shown.html))?.[1] ?? 0);
      expect(incidentId).toBeGreaterThan(0);
      await until(() => resend.emails.some((e) => e.to.includes('api-follower@customer.example')), 'the subscriber emailed');
      const email = resend.emails.find((e) => e.to.includes('api-follower@customer.example'));
      expect(email?.subject).toBe('[Partial outage] Errors on the Public API — Investigating');
      expect(resend.emails.some((e) => e.to.includes('forum@customer.example'))).toBe(false);
      // a second publish declares nothing more
      const twice = await responder.post(`/console/alerts/${draftId}?_action=publishAlertDraft`, {
        draftId: String(draftId),
        title: 'Again',
        body: 'Again',
      });
      expect(text(twice.html)).toContain('This draft was already published.');
      const json = (await (await fetch(`${server.url}/api/v1/status.json`)).json()) as { openIncidents: { id: number }[] };
      expect(json.openIncidents.map((i) => i.id)).toEqual([incidentId]);
    });

    it('the resolved payload restores the service and proposes resolving; resolving publishes the update', async () => {
      const res = await send('/api/v1/alerts/alertmanager', alertmanager('resolved', { service: 'api', severity: 'major' }));
      expect(res.status).toBe(202);
      expect((await automationRows('public-api')).at(-1)).toEqual({ status: 'operational', source: 'automation' });
      const page = await responder.get(`/console/alerts/${draftId}`);
      expect(text(page.html)).toContain('The alert resolved: resolve the incident?');
      // the incident still says partial outage until a person resolves it
      expect(await componentOnJson('public-api')).toBe('partial_outage');
      const before = resend.emails.length;
      const resolved = await responder.post(`/console/alerts/${draftId}?_action=resolveAlertIncident`, {
        draftId: String(draftId),
        body: 'Error rates are back to normal.',
      });
      expect(resolved.status).toBe(303);
      expect(text((await responder.follow(resolved)).html)).toContain(`Resolved: the update went to incident #${incidentId}`);
      const toFollower = () => resend.emails.slice(before).filter((e) => e.to.includes('api-follower@customer.example'));
      await until(() => toFollower().length === 1, 'the resolved email');
      expect(toFollower()[0]?.subject).toBe('[Partial outage] Errors on the Public API — Resolved');
      expect(await componentOnJson('public-api')).toBe('operational');
      expect(await stateOnPage('public-api')).toBe('operational');
      const audit = await readRows(db, (q) =>
        q.db
          .select({ action: q.t.auditLog.action, actorLabel: q.t.auditLog.actorLabel, summary: q.t.auditLog.summary })
          .from(q.t.auditLog)
          .where(eq(q.t.auditLog.target, `alert-draft:${draftId}`))
          .orderBy(asc(q.t.auditLog.id)),
      );
      expect(audit.map((a) => a.action)).toEqual([
        'alert.received',
        'alert.draft.opened',
        'alert.received',
        'alert.received',
        'alert.received',
        'alert.draft.published',
        'alert.received',
        'alert.draft.closed',
      ]);
      // with the alert's source and the token's prefix, never the token
      expect(JSON.stringify(audit[0]?.summary)).toContain('"source":"alertmanager"');
      expect(JSON.stringify(audit[0]?.summary)).toContain(token.slice(0, 10));
      expect(audit[0]?.actorLabel).toContain('via API token "Alertmanager"');
      expect(await running.columnsHolding(token)).toEqual([]);
    });
  });

  it('Grafana and generic payloads map by label; a degraded alert shows degraded on the 90-day bars', async () => {
    const grafana = {
      receiver: 'candor',
      status: 'firing',
      orgId: 1,
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'Slow sign-in', component: 'sso-login', severity: 'warning' },
          annotations: { summary: 'p99 sign-in latency above 3 s' },
          startsAt: '2026-12-03T09:51:03.157076+02:00',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'https://grafana.internal/alerting/1/edit',
          fingerprint: 'c6eadffa33fcdf37',
          silenceURL: 'https://grafana.internal/alerting/silence/new',
          dashboardURL: '',
          panelURL: '',
          values: { B: 44.2 },
        },
      ],
      groupLabels: {},
      commonLabels: {},
      commonAnnotations: {},
      externalURL: 'https://grafana.internal/',
      version: '1',
      groupKey: '{}:{}',
      truncatedAlerts: 0,
      title: '[FIRING:1] Slow sign-in',
      state: 'alerting',
      message: '**Firing**',
    };
    const g = await send('/api/v1/alerts/grafana', grafana);
    expect(g.status).toBe(202);
    expect(((await g.json()) as { alerts: Outcome[] }).alerts[0]).toMatchObject({ component: 'sso-login', result: 'opened' });
    // severity "warning" is minor: degraded, not an outage
    expect(await componentOnJson('sso-login')).toBe('degraded');
    const page = await statusPage();
    const today = new Date().toISOString().slice(0, 10);
    const bar = new RegExp(`data-component="sso-login"[\\s\\S]*?data-date="${today}" data-state="([a-z_]+)"`).exec(page)?.[1];
    expect(bar).toBe('degraded');

    const generic = await send('/api/v1/alerts/generic', {
      component: 'web-app',
      status: 'firing',
      title: 'Checkout 500s',
      severity: 'critical',
    });
    expect(generic.status).toBe(202);
    expect(((await generic.json()) as { alerts: Outcome[] }).alerts[0]).toMatchObject({ component: 'web-app', result: 'opened' });
    expect(await componentOnJson('web-app')).toBe('major_outage');
    const resolved = await send('/api/v1/alerts/generic', { component: 'web-app', status: 'resolved', title: 'Checkout 500s' });
    expect(((await resolved.json()) as { alerts: Outcome[] }).alerts[0]).toMatchObject({ result: 'resolved' });
    expect(await componentOnJson('web-app')).toBe('operational');
    // a waiting draft whose alert resolved can be dismissed
    const draft = (
      (await (await send('/api/v1/alerts/generic', { component: 'web-app', status: 'resolved', title: 'Checkout 500s' })).json()) as {
        alerts: Outcome[];
      }
    ).alerts[0];
    expect(draft?.result).toBe('resolved');
    const dismissed = await responder.post(`/console/alerts/${draft?.draft}?_action=dismissAlertDraft`, { draftId: String(draft?.draft) });
    expect(dismissed.status).toBe(303);
    expect(text((await responder.follow(dismissed)).html)).toContain('Dismissed: nothing was published');
  });

  it('refuses bad payloads naming the field, and missing or under-scoped tokens, as problem details', async () => {
    const bad = alertmanager('firing', { service: 'api' }) as Record<string, unknown>;
    (bad.alerts as Record<string, unknown>[])[0] = { ...(bad.alerts as Record<string, unknown>[])[0], status: 'burning' };
    const res = await send('/api/v1/alerts/alertmanager', bad);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await res.json()) as { detail: string; errors: { field: string }[] };
    expect(problem.detail).toMatch(/^alerts\.0\.status: /);
    expect(problem.errors.map((e) => e.field)).toEqual(['alerts.0.status']);
    const noVersion = await send('/api/v1/alerts/alertmanager', { ...alertmanager('firing', {}), version: undefined });
    expect(((await noVersion.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['version']);
    const generic = await send('/api/v1/alerts/generic', { status: 'firing', title: 'x' });
    expect(generic.status).toBe(422);
    expect(((await generic.json()) as { detail: string }).detail).toMatch(/^component: /);
    const notJson = await fetch(`${server.url}/api/v1/alerts/generic`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{"component":',
    });
    expect(notJson.status).toBe(400);

    const anonymous = await send('/api/v1/alerts/alertmanager', alertmanager('firing', { service: 'api' }), null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toBe('application/problem+json');
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const scoped = await send('/api/v1/alerts/alertmanager', alertmanager('firing', { service: 'api' }), readOnlyToken);
    expect(scoped.status).toBe(403);
    expect(((await scoped.json()) as { title: string }).title).toBe('The token lacks a permission.');
  });

  it('an alert that maps to no service is answered 202, recorded without a draft, and listed for staff', async () => {
    const before = await readRows(db, (q) => q.db.select({ id: q.t.alertDrafts.id }).from(q.t.alertDrafts));
    const res = await send('/api/v1/alerts/alertmanager', alertmanager('firing', { service: 'billing', team: 'payments' }));
    expect(res.status).toBe(202);
    const body = alertReceiptSchema.parse(await res.json());
    expect(body.alerts[0]).toMatchObject({ component: null, draft: null, result: 'unmatched' });
    expect(body.message).toContain('matched no service');
    const after = await readRows(db, (q) => q.db.select({ id: q.t.alertDrafts.id }).from(q.t.alertDrafts));
    expect(after).toHaveLength(before.length);
    const events = await readRows(db, (q) =>
      q.db
        .select({ draftId: q.t.alertEvents.draftId, fingerprint: q.t.alertEvents.fingerprint })
        .from(q.t.alertEvents)
        .orderBy(asc(q.t.alertEvents.id)),
    );
    expect(events.at(-1)).toEqual({ draftId: null, fingerprint: 'alertmanager:?:HighErrorRate' });
    const list = await responder.get('/console/alerts');
    expect(text(list.html)).toContain('service=billing');
  });

  it('a service with autoPublish declares its incident without a person, for a token that may declare incidents', async () => {
    // a token that only sends alerts does not declare: its draft waits for a person, and the answer says why
    const waiting = await send(
      '/api/v1/alerts/alertmanager',
      alertmanager('firing', { service: 'search', alertname: 'SearchErrors' }, 'Search answers 5xx'),
      ingestOnlyToken,
    );
    const held = ((await waiting.json()) as { alerts: Outcome[] }).alerts[0];
    expect(held).toMatchObject({ component: 'search', result: 'opened' });
    expect(held?.incident).toBeUndefined();
    expect(held?.publishRefused).toContain('does not hold incidents.manage');
    const res = await send(
      '/api/v1/alerts/alertmanager',
      alertmanager('firing', { service: 'search', alertname: 'SearchLag' }, 'Index lag above 10 min'),
    );
    const outcome = ((await res.json()) as { alerts: Outcome[] }).alerts[0];
    expect(outcome).toMatchObject({ component: 'search', result: 'opened' });
    expect(outcome?.incident).toBeGreaterThan(0);
    const json = (await (await fetch(`${server.url}/api/v1/status.json`)).json()) as { openIncidents: { id: number; title: string }[] };
    expect(json.openIncidents).toEqual([expect.objectContaining({ id: outcome?.incident, title: 'Problems with Search' })]);
    expect(await componentOnJson('search')).toBe('degraded');
  });

  it('what an alert says is shown to staff as text, never markup', async () => {
    const XSS = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    const res = await send('/api/v1/alerts/generic', { component: 'community', status: 'firing', title: XSS, description: XSS });
    const outcome = ((await res.json()) as { alerts: Outcome[] }).alerts[0];
    for (const path of ['/console/alerts', `/console/alerts/${outcome?.draft}`, '/console']) {
      const page = await responder.get(path);
      expect(page.html, path).not.toMatch(/<script>alert|<img src=x/);
    }
    expect((await responder.get(`/console/alerts/${outcome?.draft}`)).html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    await until(() => staffSlack().some((m) => m.text?.includes('alert(1)')), 'the staff message');
    const staffEmail = resend.emails.find((e) => e.html?.includes('alert(1)'));
    expect(staffEmail?.html).not.toMatch(/<script>alert|<img src=x/);
  });

  it('notices of one alert arriving together fold into one draft', async () => {
    const fire = () => send('/api/v1/alerts/generic', { component: 'file-uploads', status: 'firing', title: 'CDN 5xx', severity: 'minor' });
    const answers = await Promise.all([fire(), fire(), fire(), fire(), fire()]);
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    const outcomes = await Promise.all(answers.map(async (a) => ((await a.json()) as { alerts: Outcome[] }).alerts[0]?.result));
    expect(outcomes.sort()).toEqual(['folded', 'folded', 'folded', 'folded', 'opened']);
    const drafts = await readRows(db, (q) =>
      q.db
        .select({ id: q.t.alertDrafts.id, firingCount: q.t.alertDrafts.firingCount })
        .from(q.t.alertDrafts)
        .where(eq(q.t.alertDrafts.componentId, 'file-uploads')),
    );
    expect(drafts.map((d) => d.firingCount)).toEqual([5]);
    // the count shown agrees with the notices recorded: five, each kept once, all on the one draft
    const events = await readRows(db, (q) =>
      q.db
        .select({ draftId: q.t.alertEvents.draftId, status: q.t.alertEvents.status })
        .from(q.t.alertEvents)
        .where(eq(q.t.alertEvents.draftId, drafts[0]?.id ?? 0)),
    );
    expect(events).toEqual(Array.from({ length: 5 }, () => ({ draftId: drafts[0]?.id, status: 'firing' })));
  });

  it('a draft whose incident staff resolved on its own page is closed; the alert firing again opens a new draft', async () => {
    const fire = () => send('/api/v1/alerts/generic', { component: 'integrations', status: 'firing', title: 'Sync stuck' });
    const first = ((await (await fire()).json()) as { alerts: Outcome[] }).alerts[0];
    const published = await responder.post(`/console/alerts/${first?.draft}?_action=publishAlertDraft`, {
      draftId: String(first?.draft),
      title: 'Problems with Integrations',
      body: 'We are looking into stuck syncs.',
    });
    const incident = /incident=(\d+)/.exec(published.location ?? '')?.[1];
    expect(incident).toBeDefined();
    const resolved = await responder.post(`/console/incidents/${incident}?_action=publishIncident`, {
      incidentId: String(incident),
      status: 'resolved',
      body: 'Syncs run again.',
    });
    expect(resolved.status).toBe(303);
    const again = ((await (await fire()).json()) as { alerts: Outcome[] }).alerts[0];
    expect(again).toMatchObject({ result: 'opened' });
    expect(again?.draft).not.toBe(first?.draft);
    const closed = await readRows(db, (q) =>
      q.db
        .select({ closedAt: q.t.alertDrafts.closedAt })
        .from(q.t.alertDrafts)
        .where(eq(q.t.alertDrafts.id, first?.draft ?? 0)),
    );
    expect(closed[0]?.closedAt).toBeInstanceOf(Date);
  });

  it('the staff API sets a service status (incidents.manage), audited; unknown services and bad bodies are refused', async () => {
    const set = await send('/api/v1/components/notifications/status', { status: 'major_outage', note: 'Mail provider down' }, token, 'PUT');
    expect(set.status).toBe(200);
    expect(componentStatusResultSchema.parse(await set.json())).toEqual({
      component: 'notifications',
      status: 'major_outage',
      previous: 'operational',
      changed: true,
    });
    expect(await componentOnJson('notifications')).toBe('major_outage');
    const back = await send('/api/v1/components/notifications/status', { status: 'operational' }, token, 'PUT');
    expect(back.status).toBe(200);
    expect(await componentOnJson('notifications')).toBe('operational');
    const unknown = await send('/api/v1/components/nope/status', { status: 'degraded' }, token, 'PUT');
    expect(unknown.status).toBe(404);
    const badBody = await send('/api/v1/components/notifications/status', { status: 'on_fire' }, token, 'PUT');
    expect(badBody.status).toBe(422);
    expect(((await badBody.json()) as { detail: string }).detail).toMatch(/^status: /);
    expect((await send('/api/v1/components/notifications/status', { status: 'degraded' }, readOnlyToken, 'PUT')).status).toBe(403);
    const audit = await readRows(db, (q) =>
      q.db
        .select({ summary: q.t.auditLog.summary })
        .from(q.t.auditLog)
        .where(eq(q.t.auditLog.action, 'component.status.set'))
        .orderBy(asc(q.t.auditLog.id)),
    );
    expect(audit.map((a) => a.summary)).toEqual([
      expect.objectContaining({ before: 'operational', after: 'major_outage', note: 'Mail provider down' }),
      expect.objectContaining({ before: 'major_outage', after: 'operational' }),
    ]);
  });

  it('odd text is refused or read safely, never a 500: lone surrogates and NUL (422), a severity named like an object property, a status change not sent as JSON (400)', async () => {
    const surrogate = await send('/api/v1/alerts/generic', { component: 'help-center', status: 'firing', title: 'Broken \ud800 text' });
    expect(surrogate.status).toBe(422);
    expect(((await surrogate.json()) as { detail: string }).detail).toMatch(/^title: must be text without NUL/);
    const nul = await send('/api/v1/alerts/alertmanager', alertmanager('firing', { component: 'help-center', team: 'a\u0000b' }));
    expect(nul.status).toBe(422);
    expect(((await nul.json()) as { detail: string }).detail).toMatch(/labels\.team: must be text without NUL/);
    // `constructor` is no severity word: read as the default (major), not as Object.prototype's function
    const odd = await send(
      '/api/v1/alerts/alertmanager',
      alertmanager('firing', { component: 'help-center', alertname: 'OddSeverity', severity: 'constructor' }),
    );
    expect(odd.status).toBe(202);
    expect(await componentOnJson('help-center')).toBe('partial_outage');
    const resolved = await send(
      '/api/v1/alerts/alertmanager',
      alertmanager('resolved', { component: 'help-center', alertname: 'OddSeverity', severity: 'constructor' }),
    );
    expect(resolved.status).toBe(202);
    expect(await componentOnJson('help-center')).toBe('operational');
    const plain = await fetch(`${server.url}/api/v1/components/notifications/status`, {
      method: 'PUT',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${token}` },
      body: '{"status":"degraded","note":"a\\u0000"}',
    });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { type: string }).type).toMatch(/#problem-malformed-request$/);
    expect(await componentOnJson('notifications')).toBe('operational');
  });
});
