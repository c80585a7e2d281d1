/**
 * Customers reading gated documents, through the running server on each engine, email through the fake
 * Resend: asking for a sign-in link (the same answer with or without access; rate limits per source and
 * per address), pressing its button (the GET consumes nothing), the NDA (its version, the copy by email,
 * the accepted text kept byte for byte when the file changes, a new version accepted again), the library,
 * watermarked PDFs (the stamp on every page of a multi-page PDF, every view recorded, an encrypted or
 * corrupt PDF refused with nothing of it sent), expired and revoked grants, sign-out, idle sessions, and
 * the separation of reader and staff sessions. The server reads a copy of content/ in which the SOC 2
 * report is a three-page PDF and two more gated documents are an encrypted and a corrupt PDF.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptedNdaText, ndaVersion } from '../../src/core/access/nda.ts';
import { readerCookie } from '../../src/core/access/reader-sessions.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { ensureRecipient } from '../../src/core/notify/recipients.ts';
import { insertGrant } from '../../src/stores/reader-access.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { copyContent, editText } from '../helpers/content-fixture.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { until } from '../helpers/page.ts';
import { pageTexts, winAnsi } from '../helpers/pdf.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { Client } from '../helpers/security.ts';
import { freePort, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const COOKIE = readerCookie(false).name;
const SOC2 = 'soc-2-type-ii-report';
const LOCKED = 'locked-report';
const BROKEN = 'broken-report';
const DAY = 86_400_000;

/** A valid PDF of `pages` pages, each with a line of text. */
async function multiPagePdf(pages: number): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (let i = 1; i <= pages; i++) doc.addPage([595, 842]).drawText(`Confidential report, page ${i}`, { x: 50, y: 780, size: 14, font });
  return doc.save();
}

/** A PDF whose trailer names an encryption dictionary: readers (pdf-lib among them) treat it as encrypted. */
async function encryptedPdf(): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  doc.addPage([595, 842]);
  const encrypt = doc.context.obj({ Filter: 'Standard', V: 1, R: 2, P: -4, O: 'x'.repeat(32), U: 'y'.repeat(32) });
  doc.context.trailerInfo.Encrypt = doc.context.register(encrypt);
  return doc.save({ useObjectStreams: false });
}

function gatedDocument(contentDir: string, slug: string, title: string, pdf: Uint8Array | string): void {
  writeFileSync(join(contentDir, 'documents', `${slug}.pdf`), pdf);
  writeFileSync(
    join(contentDir, 'documents', `${slug}.md`),
    `---\ntitle: ${title}\ndescription: A test report.\ncategory: audit-report\nframework: soc-2\nfile: ${slug}.pdf\nperiod:\n  from: 2025-01-01\n  to: 2025-12-31\naccess: nda\n---\n`,
  );
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let base: string;
  let contentDir: string;
  const customer = `dana-${engine.name}@customer.example`;
  const stranger = `nobody-${engine.name}@elsewhere.example`;
  let recipientId: number;
  let grantId: number;

  beforeAll(async () => {
    contentDir = copyContent();
    writeFileSync(join(contentDir, 'documents', `${SOC2}.pdf`), await multiPagePdf(3));
    gatedDocument(contentDir, LOCKED, 'Locked report', await encryptedPdf());
    gatedDocument(contentDir, BROKEN, 'Broken report', '%PDF-1.7\nthis is not a PDF body at all\n%%EOF\n');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    resend = await startFakeResend();
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: { ...providerEnv({ port, resend, testKeys: true }), CANDOR_CONTENT_DIR: contentDir },
    });
    const now = new Date();
    ({ recipientId, grantId } = await running.database.transaction(async (tx) => {
      const recipient = await ensureRecipient(tx, TEST_KEYS, { channel: 'email', address: customer }, now);
      const id = await insertGrant(tx, {
        requestId: null,
        recipientId: recipient.id,
        name: 'Dana Reyes',
        company: 'Customer Example Ltd',
        documents: [SOC2, LOCKED, BROKEN],
        createdAt: now,
        createdBy: null,
        expiresAt: new Date(now.getTime() + 30 * DAY),
      });
      return { recipientId: recipient.id, grantId: id };
    }));
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(running?.server.output());
    await running?.stop();
    await resend?.close();
  });

  const browser = (from = '127.0.0.1') => new Client(base, from);
  const linkIn = (text: string | undefined) => /\/documents\/sign-in\/([\w.]+)/.exec(text ?? '')?.[1] ?? '';
  const noticeOf = (html: string) => /<p id="reader-link-sent">([^<]*)<\/p>/.exec(html)?.[1];

  /** Asks for a link as `email` and signs in with it: the reader's browser. */
  async function signIn(email = customer, from = '127.0.0.9'): Promise<Client> {
    const before = resend.emailsTo(email).length;
    const asked = await browser(from).post('/documents/sign-in?_action=requestReaderLink', { email });
    expect(asked.status).toBe(200);
    // the sign-in email, not another one sent meanwhile (an NDA copy, a notice queued before a restart)
    const signInEmail = () =>
      resend
        .emailsTo(email)
        .slice(before)
        .find((e) => linkIn(e.text) !== '');
    await until(() => signInEmail() !== undefined, 'the sign-in email');
    const token = linkIn(signInEmail()?.text);
    const reader = browser(from);
    const pressed = await reader.post(`/documents/sign-in/${token}?_action=completeReaderLink`, { token });
    expect(pressed.status).toBe(303);
    expect(pressed.headers.get('location')).toBe('/documents/library');
    return reader;
  }

  let reader: Client;

  it('answers a request for a link alike with or without access, and emails only the address with an active grant', async () => {
    expect((await browser().get('/documents')).body).toContain('href="/documents/sign-in"');
    const granted = await browser('127.0.0.2').post('/documents/sign-in?_action=requestReaderLink', { email: customer });
    const unknown = await browser('127.0.0.2').post('/documents/sign-in?_action=requestReaderLink', { email: stranger });
    expect(granted.status).toBe(200);
    expect(unknown.status).toBe(200);
    expect(noticeOf(granted.body)).toBeTruthy();
    expect(noticeOf(unknown.body)).toBe(noticeOf(granted.body));
    await until(() => resend.emailsTo(customer).length === 1, 'the sign-in email');
    expect(resend.emailsTo(stranger)).toEqual([]);
    const bad = await browser('127.0.0.2').post('/documents/sign-in?_action=requestReaderLink', { email: 'not an address' });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('is not a valid email address');
  });

  it('shows the link as a button (opening it consumes nothing); the press opens a session scoped to /documents', async () => {
    const token = linkIn(resend.emailsTo(customer).at(-1)?.text);
    expect(token).toMatch(/^\w+\.\w+$/);
    const client = browser('127.0.0.3');
    for (let i = 0; i < 2; i++) {
      const page = await client.get(`/documents/sign-in/${token}`);
      expect(page.status).toBe(200);
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('referrer-policy')).toBe('same-origin');
      expect(page.body).toContain('name="token"');
    }
    const pressed = await client.post(`/documents/sign-in/${token}?_action=completeReaderLink`, { token });
    expect(pressed.status).toBe(303);
    expect(pressed.headers.get('location')).toBe('/documents/library');
    const cookie = pressed.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`)) ?? '';
    expect(cookie).toMatch(/; Path=\/documents(;|$)/);
    expect(cookie).toMatch(/; HttpOnly/i);
    expect(cookie).toMatch(/; SameSite=Lax/i);
    expect(cookie).not.toMatch(/; Secure/i); // plain http here; src/core/access/reader-sessions.ts adds it over https
    // used once: a second press and the page say so
    const again = await browser('127.0.0.3').post(`/documents/sign-in/${token}?_action=completeReaderLink`, { token });
    expect(again.status).toBe(400);
    expect(again.body).toContain('already used');
    expect((await browser('127.0.0.3').get(`/documents/sign-in/${token}`)).status).toBe(410);
    expect((await browser('127.0.0.3').get('/documents/sign-in/a1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status).toBe(404);
    reader = client;
  });

  it('sends a reader without the NDA accepted to the NDA, from the library and from a document', async () => {
    const library = await reader.get('/documents/library');
    expect(library.status).toBe(303);
    expect(library.headers.get('location')).toBe('/documents/nda');
    const pdf = await reader.get(`/documents/read/${SOC2}.pdf`);
    expect(pdf.status).toBe(303);
    expect(pdf.headers.get('location')).toBe('/documents/nda');
    expect(pdf.body).not.toContain('%PDF');
  });

  const nda = () => loadContent(contentDir).ndas.at(-1);

  it('shows the NDA with its version; refuses an acceptance without the box or a name, naming the field', async () => {
    const current = nda();
    if (!current) throw new Error('no NDA in content/ndas');
    const page = await reader.get('/documents/nda');
    expect(page.status).toBe(200);
    expect(page.body).toContain(ndaVersion(current.body));
    expect(ndaVersion(current.body)).toBe(createHash('sha256').update(Buffer.from(current.body, 'utf8')).digest('hex'));
    expect(page.body).toContain('value="Customer Example Ltd"');
    const version = ndaVersion(current.body);
    const unticked = await reader.post('/documents/nda?_action=acceptNda', {
      fullName: 'Dana Reyes',
      company: 'Customer Example Ltd',
      version,
    });
    expect(unticked.status).toBe(400);
    expect(unticked.body).toContain('I agree: tick the box');
    const nameless = await reader.post('/documents/nda?_action=acceptNda', { fullName: ' ', company: 'X', agree: 'yes', version });
    expect(nameless.status).toBe(400);
    expect(nameless.body).toContain('Full name:');
    // a staff session is no reader session
    const staff = browser('127.0.0.4').setCookie('candor_session', (await signedInStaffOn(running.database, 'owner')).token);
    const refused = await staff.post('/documents/nda?_action=acceptNda', { fullName: 'Eve', company: 'X', agree: 'yes', version });
    expect(refused.status).toBe(303);
    expect(refused.headers.get('location')).toBe('/documents/sign-in');
  });

  it('records an acceptance, keeps the text, and emails the customer a copy', async () => {
    const current = nda();
    if (!current) throw new Error('no NDA');
    const version = ndaVersion(current.body);
    const accepted = await reader.post('/documents/nda?_action=acceptNda', {
      fullName: 'Dana  Reyes',
      company: 'Customer Example Ltd',
      agree: 'yes',
      version,
    });
    expect(accepted.status).toBe(303);
    expect(accepted.headers.get('location')).toBe('/documents/library');
    const rows = await readRows(running.database, (q) =>
      q.db.select().from(q.t.ndaAcceptances).where(eq(q.t.ndaAcceptances.recipientId, recipientId)),
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ndaHash: version,
      fullName: 'Dana Reyes',
      company: 'Customer Example Ltd',
      grantId,
      userAgent: 'candor-security-tests',
    });
    expect(rows[0]?.ip).toBeTruthy();
    expect((await acceptedNdaText(running.database, version))?.body).toBe(current.body);
    await until(() => resend.emailsTo(customer).some((e) => e.subject.startsWith('Your copy')), 'the copy of the NDA');
    const copy = resend.emailsTo(customer).find((e) => e.subject.startsWith('Your copy'));
    for (const part of [current.body, 'Dana Reyes', 'Customer Example Ltd', customer, version]) expect(copy?.text).toContain(part);
    const audit = await readRows(running.database, (q) =>
      q.db.select().from(q.t.auditLog).where(eq(q.t.auditLog.action, 'access.nda.accepted')),
    );
    expect(audit).toHaveLength(1);
  });

  it('lists the documents of the grant with View, Download and the expiry', async () => {
    const page = await reader.get('/documents/library');
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.body).toContain(customer);
    for (const slug of [SOC2, LOCKED, BROKEN]) {
      expect(page.body).toContain(`href="/documents/read/${slug}.pdf"`);
      expect(page.body).toContain(`href="/documents/read/${slug}.pdf?download=1"`);
    }
    expect(page.body).not.toContain('penetration-test-summary');
    expect(page.body).toContain('Your access ends');
  });

  it('serves the PDF stamped on every page, records each view and download first, and never caches it', async () => {
    for (const kind of ['view', 'download'] as const) {
      const res = await reader.request(`/documents/read/${SOC2}.pdf${kind === 'download' ? '?download=1' : ''}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/pdf');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('content-disposition')).toBe(`${kind === 'download' ? 'attachment' : 'inline'}; filename="${SOC2}.pdf"`);
    }
    // a HEAD is not a view: nothing stamped, nothing recorded
    expect((await reader.request(`/documents/read/${SOC2}.pdf`, { method: 'HEAD' })).status).toBe(405);
    const views = await readRows(running.database, (q) =>
      q.db.select().from(q.t.documentViews).where(eq(q.t.documentViews.recipientId, recipientId)).orderBy(q.t.documentViews.id),
    );
    expect(views.map((v) => [v.document, v.kind, v.grantId])).toEqual([
      [SOC2, 'view', grantId],
      [SOC2, 'download', grantId],
    ]);
    expect(views[0]?.watermark).toMatch(
      new RegExp(
        `^${customer.replaceAll('.', '\\.')} · \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC · ref [0-9a-f]{12} · Dana Reyes · Customer Example Ltd$`,
      ),
    );
    // The bytes as served: fetched again, the newest record is this one's.
    const res = await fetch(`${base}/documents/read/${SOC2}.pdf`, { headers: { cookie: `${COOKIE}=${reader.cookie(COOKIE)}` } });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const latest = await readRows(running.database, (q) =>
      q.db
        .select()
        .from(q.t.documentViews)
        .where(and(eq(q.t.documentViews.recipientId, recipientId)))
        .orderBy(q.t.documentViews.id),
    );
    const stamp = latest.at(-1)?.watermark ?? '';
    const texts = await pageTexts(bytes);
    expect(texts).toHaveLength(3);
    texts.forEach((text, i) => {
      expect(text, `page ${i + 1}`).toContain(winAnsi(stamp));
      expect(text).toContain(`Confidential report, page ${i + 1}`);
    });
  });

  it('refuses an encrypted or corrupt PDF with a page, nothing of the file, and an audit entry', async () => {
    for (const slug of [LOCKED, BROKEN]) {
      const res = await reader.get(`/documents/read/${slug}.pdf?download=1`);
      expect(res.status, slug).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.body).not.toContain('%PDF');
      expect(res.body).toContain('This document cannot be served');
    }
    const audit = await readRows(running.database, (q) =>
      q.db.select().from(q.t.auditLog).where(eq(q.t.auditLog.action, 'access.document.unservable')).orderBy(q.t.auditLog.id),
    );
    expect(audit.map((a) => a.target)).toEqual([`document:${LOCKED}`, `document:${BROKEN}`]);
    expect(JSON.stringify(audit[0]?.summary)).toContain('"reason":"encrypted"');
    expect(JSON.stringify(audit[1]?.summary)).toContain('"reason":"unreadable"');
    const views = await readRows(running.database, (q) =>
      q.db.select().from(q.t.documentViews).where(eq(q.t.documentViews.document, LOCKED)),
    );
    expect(views).toEqual([]);
  });

  it('refuses a document the grant does not cover', async () => {
    const res = await reader.get('/documents/read/penetration-test-summary.pdf');
    expect(res.status).toBe(403);
    expect(res.body).not.toContain('%PDF');
    expect((await reader.get('/documents/read/no-such-document.pdf')).status).toBe(403);
  });

  it('keeps reader and staff sessions apart', async () => {
    const owner = await signedInStaffOn(running.database, 'owner');
    const staff = browser('127.0.0.4').setCookie('candor_session', owner.token);
    for (const path of ['/documents/library', '/documents/nda', `/documents/read/${SOC2}.pdf`]) {
      const res = await staff.get(path);
      expect(res.status, path).toBe(303);
      expect(res.headers.get('location'), path).toBe('/documents/sign-in');
    }
    const token = reader.cookie(COOKIE) ?? '';
    for (const cookie of [`${COOKIE}=${token}`, `candor_session=${token}`]) {
      const res = await fetch(`${base}/console`, { redirect: 'manual', headers: { cookie } });
      expect(res.status, cookie).toBe(303);
      expect(res.headers.get('location')).toMatch(/^\/console\/sign-in/);
    }
  });

  it('refuses documents once the grant is revoked or expired, and lists none', async () => {
    await writeRows(running.database, (q) =>
      q.db.update(q.t.accessGrants).set({ revokedAt: new Date() }).where(eq(q.t.accessGrants.id, grantId)),
    );
    expect((await reader.get(`/documents/read/${SOC2}.pdf?download=1`)).status).toBe(403);
    const library = await reader.get('/documents/library');
    expect(library.status).toBe(200);
    expect(library.body).toContain('id="no-documents"');
    const now = new Date();
    const expired = await running.database.transaction((tx) =>
      insertGrant(tx, {
        requestId: null,
        recipientId,
        name: 'Dana Reyes',
        company: 'Customer Example Ltd',
        documents: [SOC2],
        createdAt: new Date(now.getTime() - 40 * DAY),
        createdBy: null,
        expiresAt: new Date(now.getTime() - 1000),
      }),
    );
    expect(expired).toBeGreaterThan(grantId);
    expect((await reader.get(`/documents/read/${SOC2}.pdf?download=1`)).status).toBe(403);
    // no link for an address whose grants are all revoked or expired
    const other = `expired-${engine.name}@customer.example`;
    await running.database.transaction(async (tx) => {
      const r = await ensureRecipient(tx, TEST_KEYS, { channel: 'email', address: other }, now);
      await insertGrant(tx, {
        requestId: null,
        recipientId: r.id,
        name: 'Old Customer',
        company: 'Old Ltd',
        documents: [SOC2],
        createdAt: new Date(now.getTime() - 40 * DAY),
        createdBy: null,
        expiresAt: new Date(now.getTime() - DAY),
      });
    });
    expect((await browser('127.0.0.6').post('/documents/sign-in?_action=requestReaderLink', { email: other })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(resend.emailsTo(other)).toEqual([]);
    // a new grant opens them again, under the NDA already accepted
    await running.database.transaction((tx) =>
      insertGrant(tx, {
        requestId: null,
        recipientId,
        name: 'Dana Reyes',
        company: 'Customer Example Ltd',
        documents: [SOC2],
        createdAt: now,
        createdBy: null,
        expiresAt: new Date(now.getTime() + DAY),
      }),
    );
    expect((await reader.get(`/documents/read/${SOC2}.pdf`)).status).toBe(200);
  });

  it('ends a session idle for two hours', async () => {
    const idle = await signIn(customer, '127.0.0.7');
    expect((await idle.get('/documents/library')).status).toBe(200);
    const id = (idle.cookie(COOKIE) ?? '').split('.')[0] ?? '';
    await writeRows(running.database, (q) =>
      q.db
        .update(q.t.readerSessions)
        .set({ lastActiveAt: new Date(Date.now() - 2 * 3_600_000 - 1000) })
        .where(eq(q.t.readerSessions.id, id)),
    );
    const res = await idle.get('/documents/library');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/documents/sign-in');
  });

  it('signs out', async () => {
    const token = reader.cookie(COOKIE) ?? '';
    const out = await reader.post('/documents/sign-in?_action=signOutReader', {});
    expect(out.status).toBe(200);
    expect(out.body).toContain('You have signed out');
    expect(reader.cookie(COOKIE)).toBeUndefined();
    const ids = (await readRows(running.database, (q) => q.db.select().from(q.t.readerSessions))).map((s) => s.id);
    expect(ids).not.toContain(token.split('.')[0]);
    // the old cookie, kept by someone, opens nothing
    const res = await fetch(`${base}/documents/library`, { redirect: 'manual', headers: { cookie: `${COOKIE}=${token}` } });
    expect(res.status).toBe(303);
  });

  it('keeps an accepted text byte for byte when the file changes, and asks for the new version before the next download', async () => {
    const old = nda();
    if (!old) throw new Error('no NDA');
    const oldVersion = ndaVersion(old.body);
    editText(contentDir, `ndas/${old.name}.md`, (t) => `${t}\n## 6. Notices\n\nNotices go to the addresses each party gave.\n`);
    await running.restart();
    base = running.server.url;
    const kept = await acceptedNdaText(running.database, oldVersion);
    expect(kept?.body).toBe(old.body);
    expect(Buffer.from(kept?.body ?? '', 'utf8').equals(Buffer.from(old.body, 'utf8'))).toBe(true);
    const client = await signIn(customer, '127.0.0.8');
    const res = await client.get(`/documents/read/${SOC2}.pdf?download=1`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/documents/nda');
    const current = nda();
    if (!current) throw new Error('no NDA');
    const version = ndaVersion(current.body);
    expect(version).not.toBe(oldVersion);
    // the old version's form, submitted after the change, is refused
    const stale = await client.post('/documents/nda?_action=acceptNda', {
      fullName: 'Dana Reyes',
      company: 'C',
      agree: 'yes',
      version: oldVersion,
    });
    expect(stale.status).toBe(400);
    expect(stale.body).toContain('The agreement changed');
    const accepted = await client.post('/documents/nda?_action=acceptNda', { fullName: 'Dana Reyes', company: 'C', agree: 'yes', version });
    expect(accepted.status).toBe(303);
    expect((await client.get(`/documents/read/${SOC2}.pdf?download=1`)).status).toBe(200);
    expect((await acceptedNdaText(running.database, version))?.body).toBe(current.body);
    expect((await acceptedNdaText(running.database, oldVersion))?.body).toBe(old.body);
  });

  it('rate-limits link requests per source address, and per email address silently', async () => {
    const from = browser('127.0.0.5');
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++)
      statuses.push((await from.post('/documents/sign-in?_action=requestReaderLink', { email: `n${i}@elsewhere.example` })).status);
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    expect(statuses[10]).toBe(429);
    // per address: three links an hour, whatever the source (this address had three already); the answer stays the same
    const links = () => resend.emailsTo(customer).filter((e) => e.subject.startsWith('Sign in')).length;
    expect(links()).toBe(3);
    const control = await browser('127.0.1.9').post('/documents/sign-in?_action=requestReaderLink', { email: stranger });
    for (let i = 0; i < 3; i++) {
      const res = await browser(`127.0.1.${i + 1}`).post('/documents/sign-in?_action=requestReaderLink', { email: customer });
      expect(res.status).toBe(200);
      expect(noticeOf(res.body)).toBe(noticeOf(control.body));
    }
    await new Promise((r) => setTimeout(r, 2000));
    expect(links()).toBe(3);
  });

  it('refuses changing an NDA text, an acceptance or a view, and removing a text', async () => {
    const tries = [
      () => writeRows(running.database, (q) => q.db.update(q.t.ndaTexts).set({ body: 'changed' })),
      () => writeRows(running.database, (q) => q.db.delete(q.t.ndaTexts)),
      () => writeRows(running.database, (q) => q.db.update(q.t.ndaAcceptances).set({ fullName: 'Someone Else' })),
      () => writeRows(running.database, (q) => q.db.update(q.t.documentViews).set({ watermark: 'x' })),
    ];
    for (const attempt of tries) await expect(attempt()).rejects.toThrow();
  });
});
