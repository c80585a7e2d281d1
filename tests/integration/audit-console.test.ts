/**
 * The keyed audit chain and repeated refusals in the running server: an
 * upgraded log is sealed at start, a burst of refused sign-ins is a few
 * entries and counts (shown on the console's audit page while counting),
 * and shutdown puts the counts under the chain.
 */

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import { verifyAuditChain } from '../../src/core/audit/log.ts';
import { ConsoleClient, type PageResponse } from '../helpers/browser-less.ts';
import { legacyDatabase } from '../helpers/legacy-audit.ts';
import { type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';

const dataDir = tempDir('candor-audit-console-');
let server: RunningServer;
let db: Db;

beforeAll(async () => {
  legacyDatabase(dataDir, 2);
  server = await startServer({ dataDir });
  db = openTestDb(dataDir);
});
afterAll(async () => {
  db?.$client.close();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const text = (page: PageResponse) => page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

interface Entry {
  id: number;
  action: string;
  ip: string | null;
  summary: string;
}

const signInEntries = () =>
  db.$client
    .prepare(`SELECT id, action, ip, summary FROM audit_log WHERE action IN ('auth.sign_in.failed', 'auth.sign_in.locked') ORDER BY id`)
    .all() as Entry[];

/** Refusals the log accounts for: an entry once, a "repeated N more times" entry N times. */
const accountedFor = (entries: Entry[]) =>
  entries.reduce((sum, e) => sum + ((JSON.parse(e.summary) as { repeated?: { times: number } }).repeated?.times ?? 1), 0);

describe('the audit chain in the running server', () => {
  it('seals the plain entries of an upgraded log at start, once', async () => {
    expect(server.output()).toContain('[candor] audit log: older plain entries sealed under CANDOR_SECRET as entry #3');
    expect(db.$client.prepare('SELECT id, action, summary FROM audit_log WHERE id = 3').get()).toEqual({
      id: 3,
      action: 'audit.chain_keyed',
      summary: '{"lastPlainId":2}',
    });
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true, plain: { count: 2, sealedBy: 3 } });
  });

  it('a burst of refused sign-ins from one address: one entry per kind, counted on the audit page, all of it in the log after shutdown', async () => {
    const attempts = 24;
    const answers: string[] = [];
    for (let i = 0; i < attempts; i++) {
      const res = await new ConsoleClient(server.url).post('/console/sign-in?_action=signIn', {
        email: 'someone@lumenwork.example',
        password: `guess number ${i}`,
        next: '/console',
      });
      answers.push(
        /Too many attempts/.test(text(res)) ? 'locked' : /Email or password is incorrect/.test(text(res)) ? 'failed' : text(res),
      );
    }
    expect(answers.filter((a) => a !== 'locked' && a !== 'failed')).toEqual([]);
    const kinds = new Set(signInEntries().map((e) => `${e.action} ${e.summary}`));
    expect(signInEntries()).toHaveLength(kinds.size);
    expect(kinds.size).toBeLessThanOrEqual(3);

    const viewer = new ConsoleClient(server.url);
    viewer.setCookie('candor_session', signedInStaff(db, 'viewer').token);
    const page = await viewer.get('/console/audit');
    expect(page.status).toBe(200);
    const table = /<table class="data" id="audit-repeats">([\s\S]*?)<\/table>/.exec(page.html)?.[1] ?? '';
    expect(table).toContain('Refusals still being counted');
    const counted = [...table.matchAll(/data-repeats="(\d+)"/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(counted + signInEntries().length).toBe(attempts);
    const failed = answers.filter((a) => a === 'failed').length;
    expect(text(await viewer.get('/console'))).toContain(`${failed} failed sign-ins in 24 h`);

    expect(await server.stop()).toBe(0);
    expect(db.$client.prepare('SELECT count(*) AS n FROM audit_repeats').get()).toEqual({ n: 0 });
    const entries = signInEntries();
    expect(entries.length).toBeLessThanOrEqual(2 * kinds.size);
    expect(accountedFor(entries)).toBe(attempts);
    expect(accountedFor(entries.filter((e) => e.action === 'auth.sign_in.failed'))).toBe(failed);
    expect(await verifyAuditChain(databaseOf(db))).toMatchObject({ ok: true });
  });
});
