/**
 * The keyed audit chain and repeated refusals in the running server: an
 * upgraded log is sealed at start, a burst of refused sign-ins is a few
 * entries and counts (shown on the console's audit page while counting),
 * and shutdown puts the counts under the chain. On each engine
 * (tests/helpers/engine-server.ts): SQLite, and PostgreSQL when
 * CANDOR_TEST_POSTGRES_URL is set; the upgraded log is SQLite's only.
 */

import { rmSync } from 'node:fs';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { verifyAuditChain } from '../../src/core/audit/log.ts';
import { ConsoleClient, type PageResponse } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { legacyDatabase } from '../helpers/legacy-audit.ts';
import { type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const text = (page: PageResponse) => page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

interface Entry {
  id: number;
  action: string;
  ip: string | null;
  summary: string;
}

/** Refusals the log accounts for: an entry once, a "repeated N more times" entry N times. */
const accountedFor = (entries: Entry[]) =>
  entries.reduce((sum, e) => sum + ((JSON.parse(e.summary) as { repeated?: { times: number } }).repeated?.times ?? 1), 0);

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  const dataDir = tempDir('candor-audit-console-');
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;

  beforeAll(async () => {
    // A log from before the keyed chain is a SQLite file (legacy-audit.ts); a PostgreSQL database is made at today's schema.
    if (engine.name === 'sqlite') legacyDatabase(dataDir, 2);
    running = await engine.start({ dataDir });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The audit entries of the given ids or actions, oldest first, the summary as JSON text. */
  const entries = (where: { ids?: number[]; actions?: string[] }): Promise<Entry[]> =>
    readRows(db, async (q) => {
      const a = q.t.auditLog;
      const rows = await q.db
        .select({ id: a.id, action: a.action, ip: a.ip, summary: a.summary })
        .from(a)
        .where(
          and(
            eq(a.trustCenterId, q.trustCenter),
            where.ids ? inArray(a.id, where.ids) : undefined,
            where.actions ? inArray(a.action, where.actions) : undefined,
          ),
        )
        .orderBy(asc(a.id));
      return rows.map((r) => ({ ...r, summary: JSON.stringify(r.summary) }));
    });
  const signInEntries = () => entries({ actions: ['auth.sign_in.failed', 'auth.sign_in.locked'] });

  describe('the audit chain in the running server', () => {
    it.runIf(engine.name === 'sqlite')('seals the plain entries of an upgraded log at start, once', async () => {
      expect(server.output()).toContain('[candor] audit log: older plain entries sealed under CANDOR_SECRET as entry #3');
      const [sealed] = await entries({ ids: [3] });
      expect(sealed && { id: sealed.id, action: sealed.action, summary: sealed.summary }).toEqual({
        id: 3,
        action: 'audit.chain_keyed',
        summary: '{"lastPlainId":2}',
      });
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, plain: { count: 2, sealedBy: 3 } });
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
      const kinds = new Set((await signInEntries()).map((e) => `${e.action} ${e.summary}`));
      expect(await signInEntries()).toHaveLength(kinds.size);
      expect(kinds.size).toBeLessThanOrEqual(3);

      const viewer = new ConsoleClient(server.url);
      viewer.setCookie('candor_session', (await signedInStaffOn(db, 'viewer')).token);
      const page = await viewer.get('/console/audit');
      expect(page.status).toBe(200);
      const table = /<table class="data" id="audit-repeats">([\s\S]*?)<\/table>/.exec(page.html)?.[1] ?? '';
      expect(table).toContain('Refusals still being counted');
      const counted = [...table.matchAll(/data-repeats="(\d+)"/g)].reduce((sum, m) => sum + Number(m[1]), 0);
      expect(counted + (await signInEntries()).length).toBe(attempts);
      const failed = answers.filter((a) => a === 'failed').length;
      expect(text(await viewer.get('/console'))).toContain(`${failed} failed sign-ins in 24 h`);

      expect(await server.stop()).toBe(0);
      expect(await readRows(db, (q) => q.db.$count(q.t.auditRepeats, eq(q.t.auditRepeats.trustCenterId, q.trustCenter)))).toBe(0);
      const after = await signInEntries();
      expect(after.length).toBeLessThanOrEqual(2 * kinds.size);
      expect(accountedFor(after)).toBe(attempts);
      expect(accountedFor(after.filter((e) => e.action === 'auth.sign_in.failed'))).toBe(failed);
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true });
    });
  });
});
