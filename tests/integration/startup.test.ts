import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, cpSync, mkdirSync, openSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { editYaml } from '../helpers/content-fixture.ts';
import { addSubscribers, TEST_KEYS } from '../helpers/notify.ts';
import { ROOT, runServerExpectingExit, startServer, tempDir } from '../helpers/server.ts';

const oneLine = (output: string) =>
  output
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('[candor]'));

describe('start-up configuration checks', () => {
  it.each([
    [{ PORT: 'http' }, /^\[candor\] configuration error: PORT must be a whole number/],
    [{ PORT: '99999' }, /^\[candor\] configuration error: PORT must be a whole number from 1 to 65535/],
    [{ CANDOR_ENCRYPTION_KEY: 'not-a-key' }, /^\[candor\] configuration error: CANDOR_ENCRYPTION_KEY must be a 32-byte key/],
    [{ CANDOR_SECRET: 'too-short' }, /^\[candor\] configuration error: CANDOR_SECRET must be at least 32 characters/],
    [{ CANDOR_PUBLIC_URL: 'javascript:alert(1)' }, /^\[candor\] configuration error: CANDOR_PUBLIC_URL must start with https:\/\//],
    [
      { CANDOR_DATABASE_URL: 'mysql://root:hunter2@db/candor' },
      /^\[candor\] configuration error: CANDOR_DATABASE_URL must start with postgres:\/\/ or postgresql:\/\/ \(it starts with mysql:\), or be unset for SQLite$/,
    ],
  ])('refuses %o with one line naming the variable', async (env, message) => {
    const { code, output } = await runServerExpectingExit({ env });
    expect(code).not.toBe(0);
    const lines = oneLine(output);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(output).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('refuses an unwritable data dir', async () => {
    const parent = tempDir();
    const dataDir = join(parent, 'locked');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o500);
    // root ignores permissions; a path under a regular file can never be created
    const file = join(parent, 'file');
    writeFileSync(file, '');
    const { code, output } = await runServerExpectingExit({ dataDir: join(file, 'data') });
    expect(code).not.toBe(0);
    expect(oneLine(output)[0]).toMatch(/^\[candor\] configuration error: CANDOR_DATA_DIR is not a writable folder/);
  });

  it('refuses a damaged database file with a clear message', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'candor.db'), 'this is not an sqlite database, just text '.repeat(200));
    const { code, output } = await runServerExpectingExit({ dataDir });
    expect(code).not.toBe(0);
    expect(oneLine(output)[0]).toMatch(/^\[candor\] database error: .*candor\.db is damaged/);
  });

  it('refuses a real database whose pages in the middle were overwritten', async () => {
    const dataDir = tempDir();
    const file = join(dataDir, 'candor.db');
    const db = openDatabase(file);
    addSubscribers(db, TEST_KEYS, { count: 2000, channel: 'email' });
    db.$client.close();
    // Three pages at the middle of the file: a disk or copy gone wrong, not a file that was never a database.
    const page = 4096;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(3 * page, 0xa5), 0, 3 * page, Math.floor(statSync(file).size / 2 / page) * page);
    closeSync(fd);
    const { code, output } = await runServerExpectingExit({ dataDir });
    expect(code).toBe(1);
    const lines = oneLine(output);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[candor\] database error: .*candor\.db is damaged \(.*\); restore it from a backup$/);
    expect(output).not.toMatch(/\n\s+at /);
  });
});

describe('a running server', () => {
  it('keeps its generated secrets across restarts and stops cleanly on SIGTERM', async () => {
    const dataDir = tempDir();
    const first = await startServer({ dataDir });
    expect((await fetch(`${first.url}/`)).status).toBe(200);
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.output()).toContain('SIGTERM received');
    const secrets = (await import('node:fs')).readFileSync(join(dataDir, 'secrets.json'), 'utf8');
    const second = await startServer({ dataDir });
    expect(await second.stop()).toBe(0);
    expect((await import('node:fs')).readFileSync(join(dataDir, 'secrets.json'), 'utf8')).toBe(secrets);
  });

  it('finishes a request in flight when told to stop', async () => {
    const server = await startServer();
    // A request whose headers have arrived but whose body has not: in flight when SIGTERM lands.
    const req = request(`${server.url}/api/v1/trust.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '2' },
    });
    const response = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    req.flushHeaders();
    await sleep(300);
    const stopped = server.stop('SIGTERM');
    await sleep(300);
    req.end('{}');
    const status = await response;
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(500);
    expect(await stopped).toBe(0);
  });
});

describe('malformed content', () => {
  /** A copy of the project whose content can be broken without touching the real one. */
  function projectCopy(): string {
    const dir = tempDir('candor-project-');
    for (const entry of ['src', 'content', 'db', 'public', 'astro.config.mjs', 'package.json', 'package-lock.json', 'tsconfig.json']) {
      cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    return dir;
  }

  it('stops `npm start` and `npm run build` with a message naming the file and the field', async () => {
    const project = projectCopy();
    editYaml<Record<string, unknown>[]>(join(project, 'content'), 'subprocessors.yaml', (rows) => {
      delete rows[0]?.transferMechanism;
    });
    const start = await runServerExpectingExit({ cwd: project });
    expect(start.code).not.toBe(0);
    expect(start.output).toContain('content/subprocessors.yaml: [0].transferMechanism:');

    const build = spawnSync('npx', ['astro', 'build'], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    });
    expect(build.status).not.toBe(0);
    expect(`${build.stdout}${build.stderr}`).toContain('content/subprocessors.yaml: [0].transferMechanism:');
  });
});
