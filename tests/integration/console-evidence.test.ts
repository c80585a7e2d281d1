/**
 * Issue 18, "Who was told, and when?" in the console: after a responder publishes a breach notice
 * targeted at a customer organisation and the worker sends it, an admin follows the organisation
 * page's link to the list of notices (as many as the deliveries recorded, with the provider's
 * acceptance times), downloads the signed JSON and the PDF, and both verify against the key the
 * server publishes at /.well-known/candor-evidence-key. Every download is audited with its scope and
 * period; a bad period is a 400 with a message; a responder is not offered the link.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL under row-level security
 * when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { type EvidenceDocument, parseEvidence, verifyEvidence } from '../../src/core/evidence/document.ts';
import { type EvidencePublicKey, parsePublicKey } from '../../src/core/evidence/key.ts';
import { embeddedEvidence } from '../../src/core/evidence/pdf.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let db: Database;
  let admin: ConsoleClient;
  let adminToken = '';
  let responder: ConsoleClient;
  let organisationId = 0;
  let incidentId = '';
  let key: EvidencePublicKey;

  beforeAll(async () => {
    resend = await startFakeResend();
    const port = await freePort();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, resend, testKeys: true }) });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `it${i}@globex.example` });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'someone@elsewhere.example' });
    organisationId = await keepOrganisationOn(db, 'Globex', { domains: ['globex.example'] });
    admin = new ConsoleClient(server.url);
    adminToken = (await signedInStaffOn(db, 'admin')).token;
    admin.setCookie('candor_session', adminToken);
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
    const published = await responder.post('/console/incidents/new?_action=publishIncident', {
      title: 'Exports of Globex workspaces',
      kind: 'breach',
      severity: 'critical',
      status: 'identified',
      'component:web-app': 'operational',
      [`organisation:${organisationId}`]: 'yes',
      body: 'We found unauthorised access to data exports.',
      breachAwareAt: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
      breachNature: 'A leaked support credential was used to download workspace exports.',
      breachSubjects: 'not yet known',
      breachRecords: 'not yet known',
      breachConsequences: 'not yet known',
      breachMeasures: 'Credential revoked.',
    });
    expect(published.status).toBe(303);
    incidentId = /\/console\/incidents\/(\d+)/.exec(published.location ?? '')?.[1] ?? '';
    await until(async () => (await sentDeliveries()).length === 2, 'the breach notice sent to Globex', 30_000);
    const served = await fetch(`${server.url}/.well-known/candor-evidence-key`);
    key = parsePublicKey(await served.text()) as EvidencePublicKey;
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
  });

  const sentDeliveries = () =>
    readRows(db, async (q) => {
      const { deliveries: d, deliveryAttempts: a } = q.t;
      return q.db
        .select({ id: d.id, at: a.at })
        .from(d)
        .innerJoin(a, and(eq(a.deliveryId, d.id), eq(a.outcome, 'sent')))
        .where(eq(d.trustCenterId, q.trustCenter))
        .orderBy(asc(d.id));
    });

  const exports = () =>
    readRows(db, (q) =>
      q.db
        .select({ target: q.t.auditLog.target, summary: q.t.auditLog.summary })
        .from(q.t.auditLog)
        .where(and(eq(q.t.auditLog.trustCenterId, q.trustCenter), eq(q.t.auditLog.action, 'evidence.exported')))
        .orderBy(asc(q.t.auditLog.id)),
    );

  it('the organisation page leads an admin to the notices its members were sent, with the recorded times', async () => {
    const org = await admin.get(`/console/organisations/${organisationId}`);
    expect(org.html).toContain(`href="/console/evidence?organisation=${organisationId}"`);
    const page = await admin.get(`/console/evidence?organisation=${organisationId}`);
    expect(page.status).toBe(200);
    const rows = [...page.html.matchAll(/<tr data-delivery="(\d+)">([\s\S]*?)<\/tr>/g)];
    const sent = await sentDeliveries();
    expect(rows.map((r) => Number(r[1]))).toEqual(sent.map((s) => s.id));
    for (const [i, row] of rows.entries()) {
      const cells = text(row[2] ?? '');
      expect(cells).toContain('breach notice 1 of incident');
      expect(cells).toContain(`${sent[i]?.at.toISOString().replace('T', ' ').slice(0, 19)} UTC`);
    }
    expect(page.html).not.toContain('someone@elsewhere.example');
  });

  it('downloads signed JSON and a PDF that verify with the published key, each audited', async () => {
    const json = await admin.get(`/console/evidence/export.json?organisation=${organisationId}&from=2000-01-01`);
    expect(json.status).toBe(200);
    expect(json.headers.get('content-disposition')).toMatch(
      /^attachment; filename="candor-evidence-organisation-\d+-\d{4}-\d{2}-\d{2}\.json"$/,
    );
    const parsed = parseEvidence(json.html);
    if (!parsed.ok) throw new Error(parsed.problem);
    expect(parsed.document.entries).toHaveLength(2);
    expect(verifyEvidence(parsed.document, key)).toMatchObject({ ok: true, entries: 2 });

    const pdf = await fetch(`${server.url}/console/evidence/export.pdf?organisation=${organisationId}`, {
      headers: { cookie: `candor_session=${adminToken}` },
    });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    const attached = await embeddedEvidence(new Uint8Array(await pdf.arrayBuffer()));
    const fromPdf = JSON.parse(attached ?? '{}') as EvidenceDocument;
    expect(verifyEvidence(fromPdf, key)).toMatchObject({ ok: true, entries: 2 });

    const audited = await exports();
    expect(audited).toHaveLength(2);
    expect(audited[0]).toMatchObject({
      target: `organisation:${organisationId}`,
      summary: { scope: 'organisation', format: 'json', notices: 2, period: { from: '2000-01-01T00:00:00.000Z', to: null } },
    });
    expect(audited[1]).toMatchObject({ summary: { format: 'pdf', notices: 2 } });
  });

  it('the incident page leads to who was told about the breach; an unknown incident is a 404 with a message', async () => {
    const incident = await admin.get(`/console/incidents/${incidentId}`);
    expect(incident.html).toContain(`href="/console/evidence?incident=${incidentId}"`);
    const page = await admin.get(`/console/evidence?incident=${incidentId}`);
    expect([...page.html.matchAll(/<tr data-delivery="(\d+)">/g)].map((m) => Number(m[1]))).toEqual(
      (await sentDeliveries()).map((d) => d.id),
    );
    const unknown = await admin.get('/console/evidence?incident=999999');
    expect(unknown.status).toBe(404);
    expect(text(unknown.html)).toContain('There is no incident #999999.');
  });

  it('answers a bad period with a message, not an export', async () => {
    const bad = await admin.get(`/console/evidence/export.json?organisation=${organisationId}&from=2026-13-45`);
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('The first date must be a day (YYYY-MM-DD)');
    const page = await admin.get(`/console/evidence?organisation=${organisationId}&from=2026-02-01&to=2026-01-01`);
    expect(page.status).toBe(400);
    expect(text(page.html)).toContain('The first day must not be after the last.');
    expect(await exports()).toHaveLength(2);
  });

  it('a responder is not offered the link and cannot download', async () => {
    const incident = await responder.get('/console/incidents');
    expect(incident.html).not.toContain('/console/evidence');
    const refused = await responder.get(`/console/evidence/export.json?organisation=${organisationId}`);
    expect(refused.status).not.toBe(200);
    expect(refused.html).not.toContain('candor-evidence/1');
  });
});
