/**
 * Issue 18, "Evidence of notification": after a breach with phased notices sent to a customer
 * organisation's members (two email addresses in its domain, an SMS number staff placed in it; an
 * outsider's address is not in scope), the evidence exported for the organisation lists every notice
 * with the figures the deliveries recorded (how many, on which channel, to whom, when the provider
 * accepted each and, for one email, when Resend reported it delivered), each breach notice's phase and
 * publication audit entry, and the chain head. `candor evidence verify` (the CLI, with the published
 * key) accepts it; after one byte is changed (a content character, a timestamp, a channel) it names
 * the entry and the field; with another installation's key it fails. The export is audited. The PDF
 * carries the same signed JSON, which verifies.
 * On each engine: SQLite, and PostgreSQL (row-level security) when CANDOR_TEST_POSTGRES_URL is set.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { exportEvidence, previewEvidence } from '../../src/core/evidence/collect.ts';
import { type EvidenceDocument, verifyEvidence } from '../../src/core/evidence/document.ts';
import { deriveEvidenceKey, publishedKeyText } from '../../src/core/evidence/key.ts';
import { embeddedEvidence, evidencePdf } from '../../src/core/evidence/pdf.ts';
import { declareIncident, type IncidentContext, postUpdate } from '../../src/core/incidents/incidents.ts';
import { applyResendEvent } from '../../src/core/notify/callbacks.ts';
import { ResendEmailChannel } from '../../src/core/notify/channels/email-resend.ts';
import { TwilioSmsChannel } from '../../src/core/notify/channels/sms-twilio.ts';
import { Dispatcher } from '../../src/core/notify/dispatcher.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import type { LimitSettings } from '../../src/core/notify/types.ts';
import { signUp } from '../../src/core/subscriptions/subscribers.ts';
import { type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { startFakeTwilio, type TwilioFake } from '../fakes/twilio.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { ROOT, tempDir } from '../helpers/server.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const content = loadContent(join(ROOT, 'content'));
const FAST: LimitSettings = { ratePerSecond: 100_000, burst: 100_000, concurrency: 8 };
const PUBLIC_URL = new URL('https://trust.example/');
const dir = tempDir('candor-evidence-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let resend: ResendFake;
let twilio: TwilioFake;
beforeAll(async () => {
  resend = await startFakeResend();
  twilio = await startFakeTwilio({ statusCallbacks: false });
});
afterAll(async () => {
  await resend?.close();
  await twilio?.close();
});

/** `candor evidence verify` as an operator (or a regulator) runs it, with the published key in a file. */
function verifyCli(file: string, keyFile: string) {
  const result = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), 'evidence', 'verify', file, '--key', keyFile], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, lines: result.stdout.trim().split('\n'), stderr: result.stderr };
}

describe.each(enginesUnderTest())('evidence of a breach’s notices on $name', (engine) => {
  let db: Database;
  let close: () => Promise<void>;
  let ctx: IncidentContext;
  let organisationId = 0;
  let incidentId = 0;
  let document: EvidenceDocument;
  let file = '';
  let keyFile = '';

  beforeAll(async () => {
    resend.reset();
    twilio.reset();
    const opened = await engine.open();
    db = bindAuditKeys(opened.database, auditKeyring(TEST_KEYS.secret));
    close = opened.close;
    const responder = await staffMemberOn(db, 'responder', { enrolled: true });
    ctx = {
      database: db,
      now: new Date(),
      site: content.site,
      components: content.components,
      publicUrl: PUBLIC_URL,
      actor: { id: responder, label: 'Responder' },
      ip: null,
      userAgent: null,
    };
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `dpo${i}@acme.example` });
    const [sms = 0] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447700900123' });
    // an outsider follows incidents too; the breach is targeted, and the evidence is Acme's
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'someone@other.example' });
    organisationId = await keepOrganisationOn(db, 'Acme Ltd', { domains: ['acme.example'], recipients: [sms] });

    const dispatcher = new Dispatcher({
      database: db,
      channels: {
        email: new ResendEmailChannel({ apiKey: resend.apiKey, from: 'Status <status@candor.test>', baseUrl: resend.url, limits: FAST }),
        sms: new TwilioSmsChannel({
          accountSid: twilio.accountSid,
          authToken: twilio.authToken,
          from: '+15005550006',
          apiBaseUrl: twilio.url,
          statusCallbackUrl: new URL('webhooks/twilio/status', PUBLIC_URL).href,
          limits: FAST,
        }),
      },
      keys: TEST_KEYS,
      publicUrl: PUBLIC_URL,
      retry: { baseMs: 20, capMs: 200, maxAttempts: 4 },
      pollMs: 20,
    });
    const declared = await declareIncident(
      { ...ctx, now: new Date() },
      {
        kind: 'breach',
        severity: 'critical',
        title: 'Exports of workspace data',
        status: 'identified',
        body: 'We found unauthorised access to data exports.',
        components: { 'web-app': 'operational' },
        confirmPersonalData: false,
        organisations: [organisationId],
        publicNotice: false,
        breach: {
          awareAt: new Date(Date.now() - 2 * 3_600_000),
          occurredAt: null,
          nature: 'A leaked support credential was used to download workspace exports.',
          subjects: 'not yet known',
          records: 'not yet known',
          consequences: 'not yet known',
          measures: 'Credential revoked.',
        },
        window: null,
      },
    );
    if (!declared.ok) throw new Error(declared.message);
    incidentId = declared.incidentId;
    // someone typed an Acme address and never confirmed it: sent only the confirmation request, and not Acme's
    const claimant = await signUp(
      db,
      TEST_KEYS,
      { channel: 'email', address: 'claimant@acme.example', status: 'pending' },
      { topics: ['incidents'], components: [], organisation: null },
      new Date(),
    );
    await db.transaction((tx) =>
      enqueueNotification(
        tx,
        {
          kind: 'subscription',
          title: 'Confirm your subscription',
          content: { email: { subject: 'Confirm', html: '<p>Confirm</p>', text: 'Confirm' } },
          audience: { kind: 'recipients', ids: [claimant.recipient.id], includePending: true },
        },
        new Date(),
      ),
    );
    await dispatcher.drain();
    expect(resend.emailsTo('claimant@acme.example')).toHaveLength(1);
    for (const [status, body] of [
      ['monitoring', 'We now know 120 workspaces were exported.'],
      ['resolved', 'Every affected customer has been told which exports were taken.'],
    ] as const) {
      const posted = await postUpdate({ ...ctx, now: new Date() }, incidentId, {
        status,
        body,
        components: {},
        confirmPersonalData: false,
      });
      if (!posted.ok) throw new Error(posted.message);
      await dispatcher.drain();
    }
    // Resend reports the first email of the first notice delivered
    const first = resend.emails[0];
    const reported = await db.transaction((tx) =>
      applyResendEvent(tx, TEST_KEYS, { type: 'email.delivered', data: { email_id: first?.id, to: first?.to } }, new Date()),
    );
    expect(reported.status).toBe('applied');

    const exported = await exportEvidence(
      {
        database: db,
        keys: TEST_KEYS,
        now: new Date(),
        organisation: content.site.organisation.name,
        publicUrl: PUBLIC_URL,
        actor: { type: 'staff', id: responder, label: 'Responder' },
      },
      { type: 'organisation', organisation: 'Acme Ltd' },
      { from: null, to: null },
    );
    if (!exported.ok) throw new Error(exported.message);
    document = exported.document;
    file = join(dir, `${engine.name}.json`);
    writeFileSync(file, JSON.stringify(document, null, 2));
    keyFile = join(dir, `${engine.name}-key.pem`);
    writeFileSync(keyFile, publishedKeyText(deriveEvidenceKey(TEST_KEYS.secret)));
  }, 120_000);
  afterAll(async () => {
    await close?.();
  });

  /** What the deliveries and attempts recorded for the breach's notifications. */
  const recorded = () =>
    readRows(db, async (q) => {
      const { incidentUpdates: u, deliveries: d, deliveryAttempts: a } = q.t;
      const updates = await q.db
        .select({ notificationId: u.notificationId })
        .from(u)
        .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, incidentId)))
        .orderBy(asc(u.publishedAt), asc(u.id));
      const ids = updates.flatMap((x) => (x.notificationId === null ? [] : [x.notificationId]));
      const deliveries = await q.db
        .select({ id: d.id, notificationId: d.notificationId, channel: d.channel, status: d.status, finishedAt: d.finishedAt })
        .from(d)
        .where(and(eq(d.trustCenterId, q.trustCenter), inArray(d.notificationId, ids)))
        .orderBy(asc(d.id));
      const attempts = await q.db
        .select({ deliveryId: a.deliveryId, at: a.at })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.outcome, 'sent')))
        .orderBy(asc(a.id));
      return { notifications: ids, deliveries, attempts };
    });

  it('lists every notice the organisation’s members were sent, with the times the deliveries recorded', async () => {
    const facts = await recorded();
    expect(facts.notifications).toHaveLength(3);
    // three phases × (two emails + one SMS); the outsider is not Acme's
    expect(facts.deliveries).toHaveLength(9);
    expect(document.header.notices).toBe(9);
    expect(document.entries).toHaveLength(9);
    expect(document.entries.map((e) => e.address)).not.toContain('someone@other.example');
    // an address nobody confirmed belongs to no organisation, whatever its domain
    expect(document.entries.map((e) => e.address)).not.toContain('claimant@acme.example');
    expect(new Set(document.entries.map((e) => e.address))).toEqual(new Set(['dpo0@acme.example', 'dpo1@acme.example', '+447700900123']));
    expect(document.entries.filter((e) => e.channel === 'sms')).toHaveLength(3);
    for (const entry of document.entries) {
      const delivery = facts.deliveries.find((d) => d.id === entry.deliveryId);
      const attempt = facts.attempts.find((a) => a.deliveryId === entry.deliveryId);
      expect(delivery?.channel).toBe(entry.channel);
      expect(entry.acceptedAt).toBe(attempt?.at.toISOString());
      expect(entry.acceptedBy).toBe('send');
      expect(entry.notice.kind).toBe('breach-notice');
      expect(entry.notice.incidentId).toBe(incidentId);
      expect(entry.notice.phase).toBe(facts.notifications.indexOf(entry.notificationId) + 1);
      // the publication's audit entry
      expect(entry.audit?.action).toBe(
        entry.notice.phase === 1 ? 'incidents.declared' : entry.notice.phase === 3 ? 'incidents.resolved' : 'incidents.updated',
      );
    }
    const delivered = document.entries.filter((e) => e.deliveredAt !== null);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.deliveredAt).toBe(facts.deliveries.find((d) => d.status === 'delivered')?.finishedAt?.toISOString());
    // the content as sent: the SMS body and the email subject of the phases
    const sms = document.entries.find((e) => e.channel === 'sms' && e.notice.phase === 2);
    expect(JSON.stringify(sms?.content)).toContain('120 workspaces');
    expect(document.header.auditHead?.id).toBeGreaterThan(0);
  });

  it('is audited with its scope and period', async () => {
    const entries = await readRows(db, (q) =>
      q.db
        .select({ action: q.t.auditLog.action, target: q.t.auditLog.target, summary: q.t.auditLog.summary })
        .from(q.t.auditLog)
        .where(and(eq(q.t.auditLog.trustCenterId, q.trustCenter), eq(q.t.auditLog.action, 'evidence.exported'))),
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]?.target).toBe(`organisation:${organisationId}`);
    expect(entries[0]?.summary).toMatchObject({ scope: 'organisation', notices: 9, period: { from: null, to: null } });
  });

  it('verifies with the published key', () => {
    const result = verifyCli(file, keyFile);
    expect(result.lines).toEqual([`${file}: valid, 9 notices, signed with key ${deriveEvidenceKey(TEST_KEYS.secret).keyId}`]);
    expect(result.code).toBe(0);
  });

  /** The file with one byte of one entry's value changed (the header's, for n 0), and that entry's number. */
  function tampered(name: string, pick: (doc: EvidenceDocument) => { n: number; from: string; to: string }): { path: string; n: number } {
    const text = readFileSync(file, 'utf8');
    const doc = JSON.parse(text) as EvidenceDocument;
    const { n, from, to } = pick(doc);
    expect(from).toHaveLength(to.length);
    // within the entry: its fields follow its delivery id
    const start = n === 0 ? 0 : text.indexOf(`"deliveryId": ${doc.entries[n - 1]?.deliveryId},`);
    const at = text.indexOf(from, start);
    expect(at).toBeGreaterThan(0);
    const path = join(dir, `${engine.name}-${name}.json`);
    writeFileSync(path, text.slice(0, at) + to + text.slice(at + from.length));
    return { path, n };
  }

  it('names the entry and the field when a character of the content was changed', () => {
    const { path, n } = tampered('content', (doc) => {
      const e = doc.entries.find((x) => x.channel === 'sms' && x.notice.phase === 2) as EvidenceDocument['entries'][number];
      return { n: e.n, from: '120 workspaces', to: '020 workspaces' };
    });
    const result = verifyCli(path, keyFile);
    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      `${path}: entry ${n} (sms to +4477009…, breach notice 2 of incident ${incidentId}): field \`content.body\` changed`,
    ]);
  });

  it('names the entry and the field when a timestamp was changed', () => {
    const { path, n } = tampered('time', (doc) => {
      const e = doc.entries[4] as EvidenceDocument['entries'][number];
      const accepted = e.acceptedAt as string;
      // the minute's last digit, told apart from the other fields by the whole key
      const from = `"acceptedAt": "${accepted}"`;
      const digit = accepted.slice(15, 16);
      const to = `"acceptedAt": "${accepted.slice(0, 15)}${digit === '9' ? '8' : String(Number(digit) + 1)}${accepted.slice(16)}"`;
      return { n: e.n, from, to };
    });
    const result = verifyCli(path, keyFile);
    expect(result.code).toBe(1);
    expect(result.lines).toHaveLength(1);
    expect(result.lines[0]).toMatch(new RegExp(`^.*: entry ${n} \\(\\w+ to .*\\): field \`acceptedAt\` changed$`));
  });

  it('names the entry and the field when a channel was changed', () => {
    const { path, n } = tampered('channel', (doc) => {
      const e = doc.entries.find((x) => x.channel === 'sms') as EvidenceDocument['entries'][number];
      return { n: e.n, from: '"channel": "sms"', to: '"channel": "smt"' };
    });
    const result = verifyCli(path, keyFile);
    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      `${path}: entry ${n} (smt to +4477009…, breach notice 1 of incident ${incidentId}): field \`channel\` changed`,
    ]);
  });

  it('says the signature does not match when the header was changed, naming the field', () => {
    const { path } = tampered('header', () => ({ n: 0, from: '"label": "Acme Ltd"', to: '"label": "Acme Lte"' }));
    const result = verifyCli(path, keyFile);
    expect(result.code).toBe(1);
    expect(result.lines).toEqual([`${path}: signature does not match: header field \`scope.label\` changed`]);
  });

  it('fails with another installation’s key', () => {
    const other = join(dir, `${engine.name}-other.pem`);
    writeFileSync(other, publishedKeyText(deriveEvidenceKey('another-installation-secret-of-length')));
    const result = verifyCli(file, other);
    expect(result.code).toBe(1);
    expect(result.lines[0]).toMatch(/signed with key [0-9a-f]{16}…, not with the key given/);
    expect(result.lines).toContain(`${file}: signature does not match this key`);
  });

  it('counts a reconcile attempt that found the message at the provider as the acceptance, at its time', async () => {
    const entry = document.entries[0] as EvidenceDocument['entries'][number];
    const foundAt = new Date(Date.parse(entry.acceptedAt as string) - 1000);
    // after a crash the reconciler asked the provider and found the message sent: recorded before the send's own record
    await writeRows(db, (q) =>
      q.db.insert(q.t.deliveryAttempts).values({
        deliveryId: entry.deliveryId,
        at: foundAt,
        outcome: 'sent',
        kind: 'reconcile',
        durationMs: 5,
        trustCenterId: q.trustCenter,
      }),
    );
    const read = await previewEvidence(
      db,
      TEST_KEYS,
      { type: 'organisation', organisation: String(organisationId) },
      { from: null, to: null },
    );
    if (!read.ok) throw new Error(read.message);
    const again = read.entries.find((e) => e.deliveryId === entry.deliveryId);
    expect(again?.acceptedAt).toBe(foundAt.toISOString());
    expect(again?.acceptedBy).toBe('reconcile');
  });

  it('makes a PDF for people that carries the signed JSON, which verifies', async () => {
    const json = readFileSync(file, 'utf8');
    const pdf = await evidencePdf(document, json);
    const pdfFile = join(dir, `${engine.name}.pdf`);
    writeFileSync(pdfFile, pdf);
    expect(await embeddedEvidence(pdf)).toBe(json);
    const result = verifyCli(pdfFile, keyFile);
    expect(result.lines).toEqual([`${pdfFile}: valid, 9 notices, signed with key ${document.signature.keyId}`]);
    expect(result.code).toBe(0);
    const parsed = JSON.parse((await embeddedEvidence(pdf)) ?? '{}') as EvidenceDocument;
    expect(verifyEvidence(parsed, deriveEvidenceKey(TEST_KEYS.secret)).ok).toBe(true);
    // the first page rendered for people, when poppler is installed (EVIDENCE_PNG: where to keep it for a look)
    if (engine.name === 'sqlite' && spawnSync('pdftoppm', ['-v']).status === 0) {
      execFileSync('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '1', pdfFile, join(dir, 'page')]);
      expect(existsSync(join(dir, 'page-1.png'))).toBe(true);
      if (process.env.EVIDENCE_PNG) writeFileSync(process.env.EVIDENCE_PNG, readFileSync(join(dir, 'page-1.png')));
    }
  });
});
