/**
 * Importing subscribers (src/core/subscriptions/import.ts) from Statuspage's, Instatus's and Candor's own
 * files, on each engine: what each format reads, a dry run writing nothing, consent carried over or a
 * confirmation requested (through the outbox, and the confirmation then recorded), refused rows with
 * their reasons, a suppressed address left suppressed, a re-import changing nothing, the export's
 * consent columns and its round trip through the importer, and the audit entries without addresses.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query, reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { recipientLinks } from '../../src/core/notify/links.ts';
import { openRecipient, suppressRecipient } from '../../src/core/notify/recipients.ts';
import type { StaffAudit, SubscriptionContext } from '../../src/core/subscriptions/context.ts';
import { removeSubscriber, subscribersCsv, subscribersJson } from '../../src/core/subscriptions/directory.ts';
import { type ImportContext, type ImportOptions, importSubscribers } from '../../src/core/subscriptions/import.ts';
import { erase, subscriptionFromToken, unsubscribe } from '../../src/core/subscriptions/manage.ts';
import { confirmEmail, subscribeEmail } from '../../src/core/subscriptions/subscribe.ts';
import { signUp } from '../../src/core/subscriptions/subscribers.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { ROOT } from '../helpers/server.ts';

const KEYRING = auditKeyring(TEST_KEYS.secret);
const NOW = new Date('2026-12-01T10:00:00.000Z');
const staff: StaffAudit = { actor: { type: 'staff', id: 7, label: 'Ada (ada@example.com)' }, ip: '192.0.2.1', userAgent: 'test' };
const COMPONENTS = [
  { id: 'web-app', name: 'Web application' },
  { id: 'public-api', name: 'Public API' },
  { id: 'sso-login', name: 'Sign-in and SSO' },
  { id: 'search', name: 'Search' },
];
const fixture = (name: string) => readFileSync(join(ROOT, 'tests/fixtures/imports', name));
/** The file as an upload arrives: in small chunks, so rows and quoted cells straddle them. */
const chunked = (bytes: Buffer | string, size = 37) =>
  Readable.from(
    (function* () {
      const b = Buffer.from(bytes);
      for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
    })(),
  );
async function collect(gen: AsyncGenerator<string>): Promise<string> {
  let out = '';
  for await (const chunk of gen) out += chunk;
  return out;
}

describe.each(enginesUnderTest())('subscriber import on $name', (engine) => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await engine.open();
    database = bindAuditKeys(opened.database, KEYRING);
    close = opened.close;
  }, 60_000);
  afterAll(() => close());

  const ctx = (over: Partial<ImportContext> = {}): ImportContext => ({
    database,
    keys: TEST_KEYS,
    now: () => NOW,
    publicUrl: new URL('https://trust.example.com/'),
    organisation: 'Example Corp',
    components: COMPONENTS,
    audit: staff,
    staffId: 7,
    batchRows: 2,
    ...over,
  });
  const run = (file: Buffer | string, options: Partial<ImportOptions> & Pick<ImportOptions, 'format'>, over: Partial<ImportContext> = {}) =>
    importSubscribers(ctx(over), chunked(file), { consent: 'carry_over', dryRun: false, fileName: `${options.format}.csv`, ...options });

  const tableCounts = () =>
    database.read(async (r) => {
      const q = reading(r);
      const n = async (
        t: 'subscribers' | 'recipients' | 'subscriberTopics' | 'subscriberConsents' | 'notifications' | 'subscriberImports',
      ) => Number(await q.db.$count(q.t[t], undefined));
      return {
        subscribers: await n('subscribers'),
        recipients: await n('recipients'),
        topics: await n('subscriberTopics'),
        consents: await n('subscriberConsents'),
        notifications: await n('notifications'),
        imports: await n('subscriberImports'),
      };
    });
  const addressRows = () =>
    database.read(async (r) => {
      const q = reading(r);
      const rc = q.t.recipients;
      const rows = await q.db.select().from(rc).orderBy(asc(rc.id));
      return rows.map((row) => ({
        id: row.id,
        subscriberId: row.subscriberId,
        channel: row.channel,
        status: row.status,
        address: openRecipient(TEST_KEYS, row).address,
      }));
    });
  const consentOf = (recipientId: number) =>
    database.read(async (r) => {
      const q = reading(r);
      const c = q.t.subscriberConsents;
      return q.db
        .select({ source: c.source, method: c.method, optedInAt: c.optedInAt, optedInVia: c.optedInVia, importRow: c.importRow })
        .from(c)
        .where(eq(c.recipientId, recipientId))
        .orderBy(asc(c.id));
    });
  const topicsOf = (subscriberId: number) =>
    database.read(async (r) => {
      const q = reading(r);
      const t = q.t.subscriberTopics;
      const rows = await q.db.select({ topic: t.topic, component: t.component }).from(t).where(eq(t.subscriberId, subscriberId));
      return rows.map((x) => (x.component ? `${x.topic}:${x.component}` : x.topic)).sort();
    });
  const auditOf = (action: string) =>
    database.read(async (r) => {
      const q = reading(r);
      const a = q.t.auditLog;
      return q.db.select({ target: a.target, summary: a.summary }).from(a).where(eq(a.action, action)).orderBy(asc(a.id));
    });
  const byAddress = async (address: string) => (await addressRows()).find((r) => r.address === address);
  const sub: SubscriptionContext = {
    get database() {
      return database;
    },
    keys: TEST_KEYS,
    now: NOW,
    publicUrl: new URL('https://trust.example.com/'),
    organisation: 'Example Corp',
    componentIds: COMPONENTS.map((c) => c.id),
    webhookPolicy: { allowHosts: [] },
    ip: '192.0.2.9',
    log: () => {},
  };
  /** The confirmation link's token in the newest message queued to the address. */
  const tokenFor = async (recipientId: number) => {
    const messages = await database.read(async (r) => {
      const q = reading(r);
      const n = q.t.notifications;
      return q.db.select({ content: n.content, audience: n.audience }).from(n).orderBy(asc(n.id));
    });
    const last = messages.filter((m) => (m.audience as { ids?: number[] }).ids?.includes(recipientId)).at(-1);
    return /subscribe\/confirm\/([\w.-]+)/.exec(JSON.stringify(last?.content))?.[1] ?? '';
  };

  it('a dry run reads a Statuspage file, says why each refused row is refused, and writes only its run record and audit entry', async () => {
    const before = await tableCounts();
    const result = await run(fixture('statuspage.csv'), { format: 'statuspage', dryRun: true });
    if (!result.ok) throw new Error(result.message);
    expect(result.counts).toEqual({ rows: 8, imported: 3, carriedOver: 3, confirmationRequested: 0, unchanged: 0, refused: 5 });
    expect(result.refused.map((r) => [r.line, r.reason])).toEqual([
      [5, 'Not a valid email address.'],
      [6, 'Unknown component "Billing portal" (no component of components.yaml has that name or id).'],
      [7, 'Duplicate: this address is on an earlier row of the file.'],
      [8, expect.stringContaining('Webhook subscribers are not imported')],
      [9, 'Not a valid email address.'],
    ]);
    expect(result.refused[2]?.address).toBe('an…@customer.example');
    expect(await tableCounts()).toEqual({ ...before, imports: before.imports + 1 });
    const [entry] = await auditOf('subscribers.import_checked');
    expect(entry?.target).toBe(`import:${result.importId}`);
    expect(entry?.summary).toMatchObject({ format: 'statuspage', dryRun: true, rows: 8, imported: 3, refused: 5 });
    expect(JSON.stringify(entry?.summary)).not.toContain('customer.example');
  });

  it('carries consent over from a Statuspage file: active addresses, their components, a consent record with the file’s opt-in time', async () => {
    const result = await run(fixture('statuspage.csv'), { format: 'statuspage' });
    if (!result.ok) throw new Error(result.message);
    expect(result.counts).toMatchObject({ imported: 3, carriedOver: 3, refused: 5 });
    const ana = await byAddress('ana@customer.example');
    expect(ana).toMatchObject({ channel: 'email', status: 'active' });
    expect(await topicsOf(ana?.subscriberId ?? 0)).toEqual([
      'incidents:public-api',
      'incidents:web-app',
      'maintenance:public-api',
      'maintenance:web-app',
    ]);
    expect(await consentOf(ana?.id ?? 0)).toEqual([
      {
        source: 'import',
        method: 'carried_over',
        optedInAt: new Date('2024-03-01T10:00:00Z'),
        optedInVia: 'statuspage export',
        importRow: 2,
      },
    ]);
    const bob = await byAddress('bob@customer.example');
    expect(await topicsOf(bob?.subscriberId ?? 0)).toEqual(['incidents', 'maintenance']);
    expect(await byAddress('+447911123456')).toMatchObject({ channel: 'sms', status: 'active' });
    expect((await auditOf('subscribers.imported'))[0]?.summary).toMatchObject({ consent: 'carry_over', imported: 3 });
  });

  it('re-importing the same file changes nothing and counts the addresses unchanged', async () => {
    const state = async () => {
      const addresses = await addressRows();
      return Promise.all(
        addresses.map(async (a) => ({ ...a, topics: await topicsOf(a.subscriberId ?? 0), consents: await consentOf(a.id) })),
      );
    };
    const before = await tableCounts();
    const rowsBefore = await state();
    const again = await run(fixture('statuspage.csv'), { format: 'statuspage' });
    if (!again.ok) throw new Error(again.message);
    expect(again.counts).toMatchObject({ rows: 8, imported: 0, unchanged: 3, refused: 5 });
    expect(await tableCounts()).toEqual({ ...before, imports: before.imports + 1 });
    // not only as many rows: the same addresses, statuses, topics and consent records
    expect(await state()).toEqual(rowsBefore);
  });

  it('never resubscribes a suppressed or an unsubscribed address', async () => {
    const bob = await byAddress('bob@customer.example');
    await database.transaction((tx) => suppressRecipient(tx, bob?.id ?? 0, 'hard bounce', NOW));
    // an address here without a subscription: a documents customer who unsubscribed
    const ana = await byAddress('ana@customer.example');
    await database.transaction(async (tx) => {
      const q = query(tx);
      await q.db
        .update(q.t.recipients)
        .set({ subscriberId: null })
        .where(eq(q.t.recipients.id, ana?.id ?? 0));
    });
    const result = await run(fixture('statuspage.csv'), { format: 'statuspage', consent: 'confirm' });
    if (!result.ok) throw new Error(result.message);
    expect(result.refused.find((r) => r.line === 3)?.reason).toContain('suppressed here');
    expect(result.refused.find((r) => r.line === 2)?.reason).toContain('without a subscription');
    expect(await byAddress('bob@customer.example')).toMatchObject({ status: 'suppressed' });
    expect(result.counts).toMatchObject({ imported: 0, unchanged: 1 });
  });

  it('never adds back an address that unsubscribed, asked to be erased or was removed by staff, until the person signs up again', async () => {
    const file = [
      'Subscriber Type,Email,Phone Number,Phone Country,Created At,Components',
      'email,leaver@customer.example,,,2024-03-01T10:00:00Z,',
      'email,Forget.Me@customer.example,,,2024-03-01T10:00:00Z,',
      'email,removed@customer.example,,,2024-03-01T10:00:00Z,',
      'email,stayer@customer.example,,,2024-03-01T10:00:00Z,',
    ].join('\n');
    const first = await run(file, { format: 'statuspage' });
    if (!first.ok) throw new Error(first.message);
    expect(first.counts).toMatchObject({ imported: 4, refused: 0 });
    const view = async (address: string) => {
      const row = await byAddress(address);
      const token = new URL(recipientLinks(TEST_KEYS.secret, sub.publicUrl, row?.id ?? 0).unsubscribe).pathname.split('/').at(-1) ?? '';
      const found = await subscriptionFromToken(sub, 'unsubscribe', token);
      if (!found) throw new Error(`no subscription for ${address}`);
      return found;
    };
    const later = new Date(NOW.getTime() + 86_400_000);
    await unsubscribe({ ...sub, now: later }, await view('leaver@customer.example'));
    await erase({ ...sub, now: later }, await view('forget.me@customer.example'));
    const removed = await byAddress('removed@customer.example');
    expect((await removeSubscriber(database, removed?.subscriberId ?? 0, staff, later)).ok).toBe(true);
    // nothing of the address is kept but its blind index
    const kept = await database.read((r) => {
      const q = reading(r);
      return q.db.select().from(q.t.removedAddresses);
    });
    expect(kept.map((k) => k.reason).sort()).toEqual(['erased', 'removed_by_staff', 'unsubscribed']);
    expect(JSON.stringify(kept)).not.toMatch(/leaver|forget|removed@|customer\.example/i);

    for (const dryRun of [true, false]) {
      const again = await run(file, { format: 'statuspage', consent: 'confirm', dryRun });
      if (!again.ok) throw new Error(again.message);
      expect(again.counts).toMatchObject({ imported: 0, unchanged: 1, refused: 3 });
      expect(again.refused.map((r) => [r.line, r.reason])).toEqual([
        [2, 'This address unsubscribed here on 2026-12-02: an import never resubscribes it (signing up again on the status page does).'],
        [
          3,
          'This address asked to be erased here on 2026-12-02: an import never resubscribes it (signing up again on the status page does).',
        ],
        [
          4,
          'This address was removed here by staff on 2026-12-02: an import never resubscribes it (signing up again on the status page does).',
        ],
      ]);
    }
    expect(await byAddress('leaver@customer.example')).toBeUndefined();
    expect(await byAddress('forget.me@customer.example')).toBeUndefined();

    // the person who left signs up again and confirms: the withdrawal no longer stands, and a later import finds them subscribed
    expect((await subscribeEmail(sub, 'Leaver@customer.example', { topics: ['incidents'], components: [], organisation: null })).ok).toBe(
      true,
    );
    const back = await byAddress('leaver@customer.example');
    const unconfirmed = await run(file, { format: 'statuspage', dryRun: true });
    if (!unconfirmed.ok) throw new Error(unconfirmed.message);
    expect(unconfirmed.counts).toMatchObject({ unchanged: 2, refused: 2 });
    expect((await confirmEmail(sub, await tokenFor(back?.id ?? 0))).ok).toBe(true);
    const afterReturn = await run(file, { format: 'statuspage' });
    if (!afterReturn.ok) throw new Error(afterReturn.message);
    expect(afterReturn.counts).toMatchObject({ imported: 0, unchanged: 2, refused: 2 });
    expect(afterReturn.refused.map((r) => r.line)).toEqual([3, 4]);
    const left = await database.read((r) => {
      const q = reading(r);
      return q.db.select({ reason: q.t.removedAddresses.reason }).from(q.t.removedAddresses);
    });
    expect(left.map((k) => k.reason).sort()).toEqual(['erased', 'removed_by_staff']);
  });

  it('asks for confirmation through the outbox: pending until the link is used, which the consent record then shows', async () => {
    const before = await tableCounts();
    const result = await run(fixture('instatus.csv'), { format: 'instatus', consent: 'confirm' });
    if (!result.ok) throw new Error(result.message);
    expect(result.counts).toEqual({ rows: 4, imported: 3, carriedOver: 0, confirmationRequested: 3, unchanged: 0, refused: 1 });
    expect(result.refused).toEqual([{ line: 5, address: expect.any(String), reason: 'Not a valid email address.' }]);
    expect((await tableCounts()).notifications).toBe(before.notifications + 3);
    const dan = await byAddress('dan@customer.example');
    expect(dan).toMatchObject({ status: 'pending' });
    expect(await consentOf(dan?.id ?? 0)).toEqual([
      {
        source: 'import',
        method: 'confirmation_requested',
        // not opted in until the link is used: the file's date is when they joined the other status page
        optedInAt: null,
        optedInVia: 'instatus export',
        importRow: 2,
      },
    ]);
    expect(await topicsOf((await byAddress('erin@customer.example'))?.subscriberId ?? 0)).toEqual([
      'incidents:search',
      'maintenance:search',
    ]);
    expect(await topicsOf((await byAddress('+14155552671'))?.subscriberId ?? 0)).toEqual([
      'incidents:public-api',
      'incidents:web-app',
      'maintenance:public-api',
      'maintenance:web-app',
    ]);
    // the confirmation email, as the dispatcher will send it to the pending address
    const messages = await database.read(async (r) => {
      const q = reading(r);
      const n = q.t.notifications;
      return q.db.select({ content: n.content, audience: n.audience }).from(n).where(eq(n.kind, 'subscription')).orderBy(asc(n.id));
    });
    const toDan = messages.find((m) => JSON.stringify(m.audience).includes(`[${dan?.id}]`));
    expect(toDan?.audience).toEqual({ kind: 'recipients', ids: [dan?.id], includePending: true });
    const text = (toDan?.content as { email?: { text: string } } | undefined)?.email?.text;
    expect(text).toContain('Confirm my subscription');
    expect((await confirmEmail(sub, await tokenFor(dan?.id ?? 0))).ok).toBe(true);
    expect(await byAddress('dan@customer.example')).toMatchObject({ status: 'active' });
    expect((await consentOf(dan?.id ?? 0)).map((c) => [c.source, c.method, c.optedInVia])).toEqual([
      ['import', 'confirmation_requested', 'instatus export'],
      ['import', 'confirmed', 'instatus export'],
    ]);
    // the opt-in is the confirmation, when it happened
    expect((await consentOf(dan?.id ?? 0)).map((c) => c.optedInAt)).toEqual([null, NOW]);
  });

  it('carry-over still asks a row the file marks unconfirmed', async () => {
    const file = 'email,phone,confirmed,all,components,createdAt\nkim@customer.example,,false,true,,2024-06-01T00:00:00Z\n';
    const result = await run(file, { format: 'instatus', consent: 'carry_over' });
    if (!result.ok) throw new Error(result.message);
    expect(result.counts).toMatchObject({ imported: 1, carriedOver: 0, confirmationRequested: 1 });
    expect(await byAddress('kim@customer.example')).toMatchObject({ status: 'pending' });
  });

  it('reads Candor’s own file: one subscriber per subscriber id across batches, its topics, refusing what cannot come back', async () => {
    const result = await run(fixture('candor.csv'), { format: 'candor', consent: 'carry_over' });
    if (!result.ok) throw new Error(result.message);
    expect(result.counts).toMatchObject({ rows: 6, imported: 3, carriedOver: 2, confirmationRequested: 1, refused: 3 });
    expect(result.refused.map((r) => [r.line, r.reason])).toEqual([
      [5, 'The file marks this address as suppressed or unsubscribed: not imported.'],
      [6, expect.stringContaining('Slack subscribers are not imported')],
      [7, 'Unknown topic "weather".'],
    ]);
    const gina = await byAddress('gina@acme.example');
    const sms = await byAddress('+447911123457');
    expect(sms?.subscriberId).toBe(gina?.subscriberId);
    expect(await topicsOf(gina?.subscriberId ?? 0)).toEqual(['incidents:web-app', 'maintenance']);
    expect(await consentOf(gina?.id ?? 0)).toEqual([
      { source: 'import', method: 'carried_over', optedInAt: new Date('2025-01-10T09:05:00.000Z'), optedInVia: 'web form', importRow: 2 },
    ]);
    expect(await byAddress('hal@example.org')).toMatchObject({ status: 'pending' });
  });

  it('a NUL or another control character in a cell is no text: the row is refused as invalid or the character dropped, never a failed batch', async () => {
    const file = fixture('candor.csv').toString('utf8').split('\n');
    const header = (file[0] ?? '').trimEnd();
    const columns = header.split(',');
    const cellsOf = (id: string, address: string, organisation: string) =>
      columns
        .map((c) => ({ subscriber_id: id, organisation, channel: 'email', address, status: 'active', topics: 'incidents' })[c] ?? '')
        .join(',');
    const csv = `${header}\n${cellsOf('901', 'nul\u0000@customer.example', 'Acme')}\n${cellsOf('902', 'ivy@customer.example', 'Ac\u0000me')}\n`;
    const result = await run(csv, { format: 'candor', consent: 'carry_over' });
    if (!result.ok) throw new Error(result.message);
    expect(result.stoppedAt ?? null).toBeNull();
    expect(result.counts).toMatchObject({ rows: 2, imported: 1, refused: 1 });
    expect(result.refused.map((r) => r.reason)).toEqual(['Not a valid email address.']);
    expect(await byAddress('ivy@customer.example')).toMatchObject({ status: 'active' });
  });

  it('a file that is not of the format chosen is refused with what is missing', async () => {
    const result = await run(fixture('statuspage.csv'), { format: 'candor' });
    expect(result).toEqual({
      ok: false,
      message: expect.stringContaining('This is not a Candor subscriber export: it has no subscriber_id'),
    });
    const broken = await run('Email,Created At\n"ok@customer.example,2024\n', { format: 'statuspage', dryRun: true });
    expect(broken.ok && broken.stoppedAt?.message).toMatch(/not readable as CSV/);
  });

  it('a sign-up writes its consent record when the address is confirmed', async () => {
    expect((await subscribeEmail(sub, 'Lee@Customer.example', { topics: ['incidents'], components: [], organisation: null })).ok).toBe(
      true,
    );
    const lee = await byAddress('lee@customer.example');
    expect(await consentOf(lee?.id ?? 0)).toEqual([]);
    expect((await confirmEmail(sub, await tokenFor(lee?.id ?? 0))).ok).toBe(true);
    expect(await consentOf(lee?.id ?? 0)).toEqual([
      { source: 'signup', method: 'confirmed', optedInAt: NOW, optedInVia: 'web form', importRow: null },
    ]);
  });

  it('exports the consent columns as CSV and JSON, and Candor’s CSV re-imports losslessly', async () => {
    // a webhook subscriber too, which the export lists and the import refuses (it must verify again)
    await signUp(
      database,
      TEST_KEYS,
      { channel: 'webhook', address: 'https://hooks.example/in', secret: 'whsec_x', status: 'active' },
      { topics: ['incidents'], components: [], organisation: null },
      NOW,
    );
    const csv = await collect(subscribersCsv(database, TEST_KEYS, 3));
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe(
      'subscriber_id,organisation,channel,address,status,topics,subscribed_at,consent_source,consent_method,opted_in_at,opted_in_via',
    );
    expect(lines.find((l) => l.includes('gina@acme.example'))).toMatch(
      /,Acme Ltd,email,gina@acme\.example,active,incidents:web-app maintenance,2025-01-10T09:00:00\.000Z,import,carried_over,2025-01-10T09:05:00\.000Z,web form$/,
    );
    const json = JSON.parse(await collect(subscribersJson(database, TEST_KEYS, 3))) as { address: string; consent: unknown }[];
    expect(json).toHaveLength(lines.length - 1);
    expect(json.find((r) => r.address === 'dan@customer.example')?.consent).toEqual({
      source: 'import',
      method: 'confirmed',
      // opted in when the confirmation link was used
      optedInAt: NOW.toISOString(),
      optedInVia: 'instatus export',
    });

    // into a fresh database, and out again: every subscriber, address, status, topic, time and opt-in comes back
    const other = await engine.open();
    try {
      const second = bindAuditKeys(other.database, KEYRING);
      const result = await importSubscribers(ctx({ database: second, batchRows: 500 }), chunked(csv, 101), {
        format: 'candor',
        consent: 'carry_over',
        dryRun: false,
        fileName: 'candor.csv',
      });
      if (!result.ok) throw new Error(result.message);
      const exportable = lines.slice(1).filter((l) => /,(email|sms),/.test(l) && !/,suppressed,/.test(l));
      expect(result.counts).toMatchObject({ imported: exportable.length, refused: lines.length - 1 - exportable.length });
      const back = (await collect(subscribersCsv(second, TEST_KEYS))).trim().split('\r\n');
      // the subscriber ids are the new database's; the consent source and method say it was imported
      const comparable = (l: string) => {
        const cells = l.split(',');
        return [...cells.slice(1, 7), cells[9], cells[10]].join(',');
      };
      expect(back.slice(1).map(comparable).sort()).toEqual(
        exportable
          .map((l) => {
            const cells = l.split(',');
            // a pending address is asked again, so it has not opted in; an active one with no consent record gets its sign-up time
            const optedIn = cells[4] === 'pending' ? '' : cells[9] || cells[6];
            return [...cells.slice(1, 7), optedIn, cells[10] || 'candor export'].join(',');
          })
          .sort(),
      );
    } finally {
      await other.close();
    }
  });

  it('text from a file that a spreadsheet would run is defused in the export, and the import undoes that', async () => {
    const file = [
      'subscriber_id,organisation,channel,address,status,topics,subscribed_at,consent_source,consent_method,opted_in_at,opted_in_via',
      '9,"=HYPERLINK(""https://evil.example"",""x"")",email,formula@customer.example,active,incidents,2025-03-01T00:00:00.000Z,,,,@SUM(1+1)',
    ].join('\r\n');
    const result = await run(file, { format: 'candor' });
    if (!result.ok) throw new Error(result.message);
    expect(result.counts.imported).toBe(1);
    const csv = await collect(subscribersCsv(database, TEST_KEYS));
    const line = csv.split('\r\n').find((l) => l.includes('formula@customer.example')) ?? '';
    expect(line).toContain(`"'=HYPERLINK(""https://evil.example"",""x"")"`);
    expect(line.endsWith(",'@SUM(1+1)")).toBe(true);
    const other = await engine.open();
    try {
      const second = bindAuditKeys(other.database, KEYRING);
      const back = await importSubscribers(ctx({ database: second }), chunked(`${csv.split('\r\n')[0]}\r\n${line}\r\n`), {
        format: 'candor',
        consent: 'carry_over',
        dryRun: false,
        fileName: 'x.csv',
      });
      expect(back.ok && back.counts.imported).toBe(1);
      const again = (await collect(subscribersCsv(second, TEST_KEYS))).split('\r\n')[1] ?? '';
      expect(
        again
          .split(',')
          .slice(1)
          .join(',')
          .replace(/,import,carried_over,/, ','),
      ).toBe(
        line
          .split(',')
          .slice(1)
          .join(',')
          .replace(/,import,carried_over,/, ','),
      );
    } finally {
      await other.close();
    }
  });

  it('the import run records its file hash and counts', async () => {
    const runs = await database.read(async (r) => {
      const q = reading(r);
      const i = q.t.subscriberImports;
      return q.db
        .select()
        .from(i)
        .where(and(eq(i.format, 'statuspage'), eq(i.dryRun, true)));
    });
    expect(runs[0]).toMatchObject({
      fileName: 'statuspage.csv',
      consent: 'carry_over',
      createdBy: 7,
      counts: { rows: 8, imported: 3, refused: 5 },
      fileSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });
});
