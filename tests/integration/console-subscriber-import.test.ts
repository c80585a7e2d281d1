/**
 * The console's subscriber import over HTTP, with a real multipart upload (fetch's FormData, as a
 * browser sends the form): the dry run's report, the import with confirmation requests that the
 * server's dispatcher then sends through the log transport, the consent record on the subscriber's
 * page, the JSON export, a bad form answered with a message, and who may do it (a responder may
 * neither import nor export). On each engine (tests/helpers/engine-server.ts).
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { failInserts } from '../helpers/fail-inserts.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { ROOT, type RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/\s+/g, ' ');
const fixture = (name: string) => readFileSync(join(ROOT, 'tests/fixtures/imports', name));

describe.each(serverEnginesUnderTest())('the import page on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let adminToken: string;
  let responderToken: string;

  beforeAll(async () => {
    running = await engine.start({
      env: { CANDOR_SECRET: TEST_KEYS.secret, CANDOR_ENCRYPTION_KEY: (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex') },
    });
    server = running.server;
    db = running.database;
    adminToken = (await signedInStaffOn(db, 'admin')).token;
    responderToken = (await signedInStaffOn(db, 'responder')).token;
  });
  afterAll(async () => {
    await running?.stop();
  });

  const upload = (
    token: string,
    fields: Record<string, string>,
    file: { name: string; bytes: Buffer } | null,
    extra: Record<string, string> = {},
  ) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    if (file) form.append('file', new Blob([new Uint8Array(file.bytes)], { type: 'text/csv' }), file.name);
    return fetch(new URL('/console/subscribers/import', server.url), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `candor_session=${token}`, origin: server.url, 'sec-fetch-site': 'same-origin', ...extra },
      body: form,
    });
  };
  const get = (token: string, path: string) =>
    fetch(new URL(path, server.url), { redirect: 'manual', headers: { cookie: `candor_session=${token}` } });
  const count = (table: 'recipients' | 'subscriberImports' | 'loggedMessages') =>
    readRows(db, async (q) => Number(await q.db.$count(q.t[table], eq(q.t[table].trustCenterId, q.trustCenter))));
  const audit = (action: string) =>
    readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ summary: a.summary })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action)));
    });

  it('shows the upload form to an admin', async () => {
    const res = await get(adminToken, '/console/subscribers/import');
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('enctype="multipart/form-data"');
    expect(html).toMatch(/<input type="file" name="file"/);
  });

  it('a dry run reports counts and refused rows and writes no subscriber', async () => {
    const res = await upload(
      adminToken,
      { format: 'statuspage', consent: 'carry_over', dryRun: 'on' },
      { name: 'subscribers.csv', bytes: fixture('statuspage.csv') },
    );
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('data-dry-run="true"');
    expect(html).toContain('<dd data-count="imported">3</dd>');
    expect(html).toContain('<dd data-count="refused">5</dd>');
    expect(text(html)).toContain('Unknown component "Billing portal"');
    expect(html).toContain('<tr data-line="7">');
    expect(await count('recipients')).toBe(0);
    expect(await count('subscriberImports')).toBe(1);
    expect(await audit('subscribers.import_checked')).toHaveLength(1);
  });

  it('imports with confirmation requests, which the dispatcher sends through the log transport', async () => {
    const res = await upload(
      adminToken,
      { format: 'statuspage', consent: 'confirm' },
      { name: 'subscribers.csv', bytes: fixture('statuspage.csv') },
    );
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(html).toContain('data-dry-run="false"');
    expect(html).toContain('<dd data-count="confirmationRequested">3</dd>');
    expect(await count('recipients')).toBe(3);
    let logged = 0;
    for (let i = 0; i < 100 && logged < 3; i++) {
      logged = await count('loggedMessages');
      if (logged < 3) await sleep(100);
    }
    expect(logged).toBe(3);
    const payloads = await readRows(db, (q) =>
      q.db.select({ channel: q.t.loggedMessages.channel, payload: q.t.loggedMessages.payload }).from(q.t.loggedMessages),
    );
    expect(payloads.map((p) => p.channel).sort()).toEqual(['email', 'email', 'sms']);
    expect(JSON.stringify(payloads)).toContain('subscribe/confirm/');
    expect((await audit('subscribers.imported'))[0]?.summary).toMatchObject({ confirmationRequested: 3, refused: 5 });
  });

  it('the subscriber page shows the consent record', async () => {
    const found = await get(adminToken, '/console/subscribers?q=ana@customer.example');
    expect(found.status).toBe(303);
    const page = await get(adminToken, found.headers.get('location') ?? '');
    const html = await page.text();
    expect(html).toContain('data-method="confirmation_requested"');
    expect(text(html)).toMatch(/imported, confirmation requested \(statuspage export\), import #\d+; recorded/);
    expect(text(html)).not.toContain('opted in 2024-03-01');
  });

  it('exports JSON with the consent records (audited)', async () => {
    const res = await get(adminToken, '/console/subscribers/export.json');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const rows = (await res.json()) as { address: string; status: string; consent: { method: string } }[];
    expect(rows.map((r) => [r.address, r.status, r.consent.method]).sort()).toEqual([
      ['+447911123456', 'pending', 'confirmation_requested'],
      ['ana@customer.example', 'pending', 'confirmation_requested'],
      ['bob@customer.example', 'pending', 'confirmation_requested'],
    ]);
    expect(await audit('subscribers.exported')).toEqual([{ summary: { format: 'json', rows: 3 } }]);
  });

  it('an import that fails on our side mid-way is still finished and audited with what it wrote, and shows a generic error', async () => {
    const undo = await failInserts(running, 'subscriber_consents', 'disk full (test)');
    try {
      const before = (await audit('subscribers.imported')).length;
      const file = Buffer.from('email,confirmed,createdAt\nzoe@customer.example,true,2024-06-01T00:00:00Z\n');
      const res = await upload(adminToken, { format: 'instatus', consent: 'carry_over' }, { name: 'failing.csv', bytes: file });
      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain('disk full');
      const entries = await audit('subscribers.imported');
      expect(entries).toHaveLength(before + 1);
      expect(entries.at(-1)?.summary).toMatchObject({ failed: true, stopped: true, rows: 1 });
    } finally {
      await undo();
    }
  });

  it('a form without a format or a file is answered with what is missing', async () => {
    const noFormat = await upload(adminToken, { consent: 'confirm' }, { name: 'x.csv', bytes: fixture('statuspage.csv') });
    expect(noFormat.status).toBe(400);
    expect(text(await noFormat.text())).toContain('Choose the format of the file');
    const noFile = await upload(adminToken, { format: 'instatus', consent: 'confirm' }, null);
    expect(noFile.status).toBe(400);
    expect(text(await noFile.text())).toContain('Choose a CSV file to import.');
    const wrong = await upload(adminToken, { format: 'candor', consent: 'confirm' }, { name: 'x.csv', bytes: fixture('instatus.csv') });
    expect(text(await wrong.text())).toContain('This is not a Candor subscriber export');
  });

  it('a responder may neither import nor export; a cross-site upload is refused', async () => {
    const before = await count('subscriberImports');
    expect((await get(responderToken, '/console/subscribers/import')).status).toBe(403);
    const posted = await upload(
      responderToken,
      { format: 'statuspage', consent: 'carry_over' },
      { name: 'x.csv', bytes: fixture('statuspage.csv') },
    );
    expect(posted.status).toBe(403);
    expect((await get(responderToken, '/console/subscribers/export.json')).status).toBe(403);
    const cross = await upload(
      adminToken,
      { format: 'statuspage', consent: 'carry_over' },
      { name: 'x.csv', bytes: fixture('statuspage.csv') },
      {
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
      },
    );
    expect(cross.status).toBe(403);
    expect(await count('subscriberImports')).toBe(before);
  });
});
