/**
 * `candor db migrate`: the schema is brought up to date as the owner, the application role gets its
 * rows and nothing more, running it again changes nothing, and bad input is answered with a message
 * naming what is wrong.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkApplicationRole } from '../../db/engine/postgres-setup.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';

const ROOT = join(import.meta.dirname, '../..');

function candor(args: string[]) {
  const result = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(!TEST_POSTGRES_URL)('candor db migrate', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await createTestPostgres({ migrate: false });
  }, 60_000);
  afterAll(() => db?.drop());

  it('migrates as the owner and grants the application role its rows, once however often it runs', async () => {
    const before = await db.app.query('SELECT count(*) FROM incidents').catch((e: Error) => e.message);
    expect(before).toMatch(/relation "incidents" does not exist/);

    const first = candor(['db', 'migrate', '--owner', db.ownerUrl, '--grant', db.appRole]);
    expect(first.stderr).toMatch(/contains a password/);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      new RegExp(`schema up to date \\(\\d+ migrations applied in all\\); ${db.appRole} may read and write the rows`),
    );
    const again = candor(['db', 'migrate', '--owner', db.ownerUrl, '--grant', db.appRole]);
    expect(again.code).toBe(0);
    expect(again.stdout.match(/\((\d+) migrations/)?.[1]).toBe(first.stdout.match(/\((\d+) migrations/)?.[1]);

    // The application role passes the start-up check and reads rows (none visible without a trust center set).
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    try {
      await expect(checkApplicationRole(client)).resolves.toMatchObject({ role: db.appRole });
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM incidents');
      expect(rows[0]?.n).toBe('0');
      await expect(client.query('ALTER TABLE incidents DISABLE ROW LEVEL SECURITY')).rejects.toThrow(/must be owner/);
      await expect(client.query('CREATE TABLE sneaky (id int)')).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }
  }, 120_000);

  it('names what is wrong with its input', () => {
    expect(candor(['db', 'migrate', '--grant', 'x'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/needs --owner postgres:\/\//),
    });
    expect(candor(['db', 'migrate', '--owner', db.ownerUrl])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/needs --grant <role>/),
    });
    expect(candor(['db', 'migrate', '--owner', 'mysql://x@y/z', '--grant', 'app'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--owner /),
    });
    const injected = candor(['db', 'migrate', '--owner', db.ownerUrl, '--grant', 'app; DROP TABLE incidents']);
    expect(injected).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--grant "app; DROP TABLE incidents" is not a plain role name/),
    });
    const unreachable = candor(['db', 'migrate', '--owner', 'postgres://nobody@127.0.0.1:5432/none', '--grant', 'app']);
    expect(unreachable).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^candor: --owner cannot reach PostgreSQL at nobody@127\.0\.0\.1:5432\/none/),
    });
    const owner = candor(['db', 'migrate', '--owner', db.ownerUrl, '--grant', db.ownerRole]);
    expect(owner.stderr).toMatch(/it is the owner/);
    for (const r of [injected, unreachable, owner]) expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 300_000);
});
