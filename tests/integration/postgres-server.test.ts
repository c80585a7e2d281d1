/**
 * `npm start` with CANDOR_DATABASE_URL naming PostgreSQL: one line naming the setting when the server
 * cannot be reached (never the password), when the role could get around row-level security, or when
 * the database is behind this version's migrations; otherwise two nodes on one database start
 * together, record what start-up records once, and serve the trust center from it, each following
 * what the other commits.
 */

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import { query } from '../../db/engine/query.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';
import { ROOT, type RunningServer, runServerExpectingExit, startServer, tempDir } from '../helpers/server.ts';

const SECRETS = { CANDOR_SECRET: 'postgres-server-integration-secret-long-enough', CANDOR_ENCRYPTION_KEY: 'cd'.repeat(32) };
const TITLE = 'Checkout requests failing in eu-west';
const lines = (output: string) => output.split('\n').filter((l) => l.startsWith('[candor]'));

describe('start-up on PostgreSQL', () => {
  it('refuses a server it cannot reach with one line naming the setting, and never prints the password', async () => {
    const { code, output } = await runServerExpectingExit({
      env: { ...SECRETS, CANDOR_DATABASE_URL: 'postgres://candor:hunter2@127.0.0.1:1/candor' },
    });
    expect(code).not.toBe(0);
    expect(lines(output)).toHaveLength(1);
    expect(lines(output)[0]).toMatch(
      /^\[candor\] configuration error: CANDOR_DATABASE_URL cannot reach PostgreSQL at candor@127\.0\.0\.1:1\/candor: .*ECONNREFUSED/,
    );
    expect(output).not.toContain('hunter2');
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('needs CANDOR_SECRET and CANDOR_ENCRYPTION_KEY from the environment', async () => {
    const { code, output } = await runServerExpectingExit({ env: { CANDOR_DATABASE_URL: 'postgres://candor@127.0.0.1:1/candor' } });
    expect(code).not.toBe(0);
    expect(lines(output)[0]).toMatch(
      /^\[candor\] configuration error: CANDOR_SECRET must be set when CANDOR_DATABASE_URL names PostgreSQL/,
    );
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('the server on PostgreSQL', () => {
  let pg: TestPostgres;
  const servers: RunningServer[] = [];
  beforeAll(async () => {
    pg = await createTestPostgres();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await pg?.drop();
  });

  it('refuses a superuser, which row-level security would not hold, naming what to change', async () => {
    const { code, output } = await runServerExpectingExit({ env: { ...SECRETS, CANDOR_DATABASE_URL: pg.superUrl } });
    expect(code).not.toBe(0);
    expect(lines(output)).toHaveLength(1);
    expect(lines(output)[0]).toMatch(
      /^\[candor\] configuration error: CANDOR_DATABASE_URL connects as "\w+", a superuser.*NOSUPERUSER NOBYPASSRLS/,
    );
  });

  it('refuses a database that has not been migrated, naming the command that does it', async () => {
    const empty = await createTestPostgres({ migrate: false });
    try {
      const { code, output } = await runServerExpectingExit({ env: { ...SECRETS, CANDOR_DATABASE_URL: empty.appUrl } });
      expect(code).not.toBe(0);
      expect(lines(output)[0]).toMatch(
        /^\[candor\] configuration error: CANDOR_DATABASE_URL names a database \d+ migration\(s\) behind.*candor db migrate/,
      );
    } finally {
      await empty.drop();
    }
  });

  it('a node that says it is serving stops cleanly on SIGTERM at once (a rolling deploy stopping a fresh node)', async () => {
    const server = await startServer({ env: { ...SECRETS, CANDOR_DATABASE_URL: pg.appUrl } });
    // the moment "serving" is printed: start-up's last steps may still be running
    const code = await server.stop('SIGTERM');
    expect(code, server.output()).toBe(0);
    expect(lines(server.output()).at(-1)).toBe('[candor] stopped');
  }, 120_000);

  it('runs `candor worker --once` on it: due jobs, then the queue drained (the daily backup is not run there)', async () => {
    const worker = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', '--once'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...SECRETS, CANDOR_DATABASE_URL: pg.appUrl, CANDOR_DATA_DIR: tempDir() },
    });
    expect(worker.status, worker.stderr).toBe(0);
    expect(worker.stdout).toMatch(/\[candor worker\] ran \d+ due jobs/);
    expect(worker.stdout).toMatch(/\[candor worker\] sent 0 deliveries/);
  }, 60_000);

  it('starts two nodes on one database, which record start-up facts once and serve the trust center', async () => {
    const env = { ...SECRETS, CANDOR_DATABASE_URL: pg.appUrl };
    servers.push(...(await Promise.all([startServer({ env }), startServer({ env })])));
    for (const server of servers) {
      for (const path of ['/', '/status', '/subprocessors', '/changes', '/api/v1/trust.json']) {
        const res = await fetch(new URL(path, server.url));
        expect(res.status, `${path} on ${server.url}`).toBe(200);
      }
    }
    // Both nodes recorded the content baseline and the listed services at start: once each (advisory locks).
    const { rows: baselines } = await pg.superuser.query<{ kind: string; n: string }>(
      'SELECT kind, count(*) AS n FROM content_snapshots GROUP BY kind ORDER BY kind',
    );
    expect(baselines.length).toBeGreaterThan(0);
    for (const row of baselines) expect(Number(row.n), row.kind).toBe(1);
    const { rows: listed } = await pg.superuser.query<{ component_id: string; n: string }>(
      'SELECT component_id, count(*) AS n FROM component_states GROUP BY component_id',
    );
    expect(listed.length).toBeGreaterThan(0);
    for (const row of listed) expect(Number(row.n), row.component_id).toBe(1);
    // Every listed service, operational, with a history that begins at this start (read from PostgreSQL).
    const status = (await (await fetch(new URL('/api/v1/status.json', servers[0]?.url))).json()) as {
      components: { id: string; status: string; history: { since: string | null } | null }[];
    };
    expect(status.components.map((c) => c.id).sort()).toEqual(listed.map((r) => r.component_id).sort());
    for (const c of status.components) {
      expect(c.status, c.id).toBe('operational');
      expect(c.history?.since, c.id).not.toBeNull();
    }
  }, 240_000);

  it("shows on every node's status page, within a second, an incident another node committed", async () => {
    expect(servers).toHaveLength(2);
    const pages = async () =>
      Promise.all(servers.map(async (server) => (await (await fetch(new URL('/status', server.url))).text()).includes(TITLE)));
    expect(await pages()).toEqual([false, false]); // both pages are now in memory, without the incident
    const elsewhere = openPostgresDatabase({ url: pg.appUrl });
    try {
      await elsewhere.transaction(async (tx) => {
        const q = query(tx);
        const now = new Date();
        await q.db.insert(q.t.incidents).values({
          kind: 'outage',
          severity: 'major',
          title: TITLE,
          status: 'investigating',
          public: true,
          startedAt: now,
          createdAt: now,
          trustCenterId: q.trustCenter,
        });
      });
    } finally {
      await elsewhere.close();
    }
    let seen = [false, false];
    for (let i = 0; i < 20 && !seen.every(Boolean); i++) {
      await sleep(50);
      seen = await pages();
    }
    expect(seen).toEqual([true, true]);
    for (const server of servers) expect(server.output()).not.toContain('not following');
  }, 60_000);
});
