/**
 * What the build and the server give away without being asked: source maps
 * and sources in the build, stack traces and internal paths in answers to
 * malformed requests, secrets in answers and log lines, and known
 * vulnerabilities in the production dependencies (npm audit).
 *
 * Security headers, CORS and cache rules on every route are checked route
 * by route in tests/security/routes.test.ts; each security test file also
 * reads its own server's log for the secrets it handled.
 *
 * The build and the dependencies are checked once; what the server answers and logs, on each engine
 * (tests/helpers/engine-server.ts): SQLite, and PostgreSQL when CANDOR_TEST_POSTGRES_URL is set.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { expectNoStackTrace, expectSecurityHeaders, leaked, send, serverSecrets } from '../helpers/security.ts';
import { ROOT, type RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('the build', () => {
  const dist = join(ROOT, 'dist');

  it('ships no source map, no source file, no secret and no database', () => {
    const all = files(dist).map((f) => relative(dist, f));
    expect(all.filter((f) => /\.map$/.test(f))).toEqual([]);
    expect(all.filter((f) => /\.(ts|tsx|astro|env|db|sqlite|pem|key)$|secrets\.json$|(^|\/)\.git\//.test(f))).toEqual([]);
    for (const f of all.filter((f) => /\.(js|mjs|css|html|json)$/.test(f))) {
      const text = readFileSync(join(dist, f), 'utf8');
      expect(text.includes('sourceMappingURL='), `${f} points to a source map`).toBe(false);
    }
  });

  it('serves to browsers no dev toolbar, no Vite client, no stack-trace overlay and no server code', () => {
    const client = files(join(dist, 'client'));
    for (const f of client.filter((f) => /\.(js|mjs|html)$/.test(f))) {
      const text = readFileSync(f, 'utf8');
      expect(text, relative(dist, f)).not.toMatch(
        /__astro_dev_toolbar__|\/@vite\/client|vite-error-overlay|better-sqlite3|CANDOR_SECRET|process\.env/,
      );
    }
    // dist/client is what the server serves as files: nothing else is reachable that way
    expect(statSync(join(dist, 'server')).isDirectory()).toBe(true);
  });
});

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  const tokens: string[] = [];

  beforeAll(async () => {
    running = await engine.start({ env: { CANDOR_PUBLIC_URL: 'https://trust.lumenwork.example' } });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
  });

  /**
   * The server's secrets: generated into its data dir, the test keys, and what its engine was given
   * besides (on PostgreSQL the secrets, the database URL and the password in it).
   */
  const secretsOfServer = () => {
    const url = running.env.CANDOR_DATABASE_URL;
    return [...serverSecrets(server.dataDir), ...Object.values(running.env), ...(url ? [decodeURIComponent(new URL(url).password)] : [])];
  };

  /**
   * A request written byte for byte, for what an HTTP client library would refuse to send; the answer is
   * whatever arrived before the server closed the connection (it may close early on a body it will not read).
   */
  function raw(request: string | Buffer): Promise<string> {
    const { port } = new URL(server.url);
    return new Promise((resolve, reject) => {
      let answer = '';
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('close', () => resolve(answer));
      socket.on('error', (err) => (answer ? undefined : reject(err)));
      socket.setTimeout(10_000, () => socket.destroy());
    });
  }
  const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

  describe('malformed requests', () => {
    const requests: [string, () => Promise<{ status: number; body: string; headers?: Headers }>][] = [
      [
        'an action given broken JSON',
        () =>
          send(`${server.url}/_actions/signIn`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', origin: server.url },
            body: '{"email":',
          }),
      ],
      [
        'an action given JSON that is not an object',
        () =>
          send(`${server.url}/_actions/subscribe`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', origin: server.url },
            body: '"x"',
          }),
      ],
      [
        'a form with a broken multipart boundary',
        () =>
          send(`${server.url}/subscribe?_action=subscribe`, {
            method: 'POST',
            headers: { 'content-type': 'multipart/form-data; boundary=x', origin: server.url },
            body: '--y\r\nbroken',
          }),
      ],
      [
        'a form with broken percent-encoding',
        () =>
          send(`${server.url}/subscribe?_action=subscribe`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
            body: 'channel=%E0%A4%A&address=%',
          }),
      ],
      ['a path with broken percent-encoding', () => send(`${server.url}/docs/%E0%A4%A`)],
      ['a token with broken percent-encoding', () => send(`${server.url}/subscription/%E0%A4%A`)],
      ['a lone percent sign', () => send(`${server.url}/%`)],
      ['a double slash inside the console', () => send(`${server.url}/console//staff`)],
      [
        'a double slash before a callback',
        () => send(`${server.url}/webhooks//resend`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }),
      ],
      ['a NUL in the path', () => send(`${server.url}/docs/%00`)],
      ['an overlong path', () => send(`${server.url}/docs/${'a'.repeat(8000)}`)],
      ['a cookie that does not parse', () => send(`${server.url}/console`, { headers: { cookie: 'candor_session=%%%; =; ;;x' } })],
      [
        'a huge session cookie',
        () => send(`${server.url}/console`, { headers: { cookie: `candor_session=${'a'.repeat(6000)}.${'b'.repeat(6000)}` } }),
      ],
      [
        'a declared body over the limit',
        () =>
          send(`${server.url}/webhooks/resend`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: 'a'.repeat(70_000),
          }),
      ],
      [
        'a query string of ten thousand parameters',
        () => send(`${server.url}/subprocessors?${Array.from({ length: 10_000 }, (_, i) => `p${i}=x`).join('&')}`.slice(0, 15_000)),
      ],
      ['an unknown method', () => send(`${server.url}/status`, { method: 'PROPFIND' })],
      ['TRACE', () => send(`${server.url}/status`, { method: 'TRACE', headers: { cookie: 'candor_session=trace-me-secret' } })],
      [
        'a Host header for another site',
        () => send(`${server.url}/.well-known/security.txt`, { headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' } }),
      ],
    ];

    it.each(requests)('%s: refused without a 5xx, a stack trace or an internal path', async (_what, request) => {
      const res = await request();
      expect(res.status).toBeLessThan(500);
      expectNoStackTrace(res.body, _what);
      expect(res.body).not.toContain('trace-me-secret');
      expect(res.body).not.toContain('evil.example');
      if (res.headers && res.status !== 431) expectSecurityHeaders({ status: res.status, headers: res.headers, body: res.body }, _what);
    });

    it('broken JSON posted to a page’s form action is the client’s error: 400, as for /_actions', async () => {
      for (const path of ['/subscribe?_action=subscribe', '/console/sign-in?_action=signIn', '/_actions/subscribe']) {
        for (const type of ['application/json', 'Application/JSON; charset=utf-8']) {
          for (const body of ['{"channel":', '{', 'not json at all']) {
            const res = await send(`${server.url}${path}`, {
              method: 'POST',
              headers: { 'content-type': type, origin: server.url, 'sec-fetch-site': 'same-origin' },
              body,
            });
            expect(res.status, `${path} ${type} ${body}`).toBe(400);
            expect(res.body).toBe('The request body is not valid JSON.');
          }
        }
      }
    });

    it('a chunked body, which declares no length, is refused before it is read', async () => {
      const chunk = 'a'.repeat(0x4000);
      const body = `${`${(0x4000).toString(16)}\r\n${chunk}\r\n`.repeat(20)}0\r\n\r\n`;
      const answer = await raw(
        `POST /subscribe?_action=subscribe HTTP/1.1\r\nHost: x\r\nOrigin: http://x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`,
      );
      expect(statusOf(answer)).toBe(411);
    });

    it('requests no HTTP library would send are answered by the server, not by a crash', async () => {
      for (const request of [
        'GET /status HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n',
        'GET /status HTTP/1.1\r\nConnection: close\r\n\r\n',
        'POST /subscribe?_action=subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
        'GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        'GET http://evil.example/console HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        'TRACE /status HTTP/1.1\r\nHost: x\r\nCookie: candor_session=trace-me-secret\r\nConnection: close\r\n\r\n',
        'GET /status HTTP/1.1\r\nHost: x\r\nX-Long: '.concat('a'.repeat(20_000), '\r\nConnection: close\r\n\r\n'),
      ]) {
        const answer = await raw(request);
        const status = statusOf(answer);
        expect(status, request.slice(0, 60)).toBeGreaterThanOrEqual(200);
        expect(status, request.slice(0, 60)).toBeLessThan(500);
        expect(answer).not.toMatch(/root:x:0:0|trace-me-secret/);
        expectNoStackTrace(answer, request.slice(0, 60));
      }
      // the server is still there
      expect((await send(`${server.url}/status`)).status).toBe(200);
    });
  });

  describe('secrets and personal data', () => {
    it('no answer carries the server’s secret or encryption key, nor a session token', async () => {
      const { token } = await signedInStaffOn(db, 'owner');
      tokens.push(token);
      const own = secretsOfServer();
      const secrets = [...own, token, token.split('.')[1] ?? token];
      for (const path of [
        '/',
        '/status',
        '/api/v1/trust.json',
        '/api/v1/status.json',
        '/console',
        '/console/account',
        '/console/settings',
        '/console/staff',
        '/console/audit',
      ]) {
        const res = await send(`${server.url}${path}`, { headers: { cookie: `__Host-candor_session=${token}` } });
        expect(res.status, path).toBeLessThan(400);
        expect(leaked(res.body, secrets), path).toEqual([]);
        expect(leaked(JSON.stringify([...res.headers]), own), path).toEqual([]);
      }
    });

    it('the log holds no secret, token or address', () => {
      const output = server.output();
      expect(output).toContain('serving ');
      expect(leaked(output, [...secretsOfServer(), ...tokens, 'trace-me-secret'])).toEqual([]);
    });
  });
});

describe('npm audit --omit=dev', () => {
  it('finds no high or critical vulnerability in the production dependencies', async (ctx) => {
    const child = spawn('npm', ['audit', '--omit=dev', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    await new Promise((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    const report = (() => {
      try {
        return JSON.parse(stdout) as {
          error?: { code?: string; summary?: string; detail?: string };
          message?: string;
          metadata?: { vulnerabilities?: Record<string, number> };
          vulnerabilities?: Record<string, { severity: string; via: unknown[] }>;
        };
      } catch {
        return null;
      }
    })();
    // A registry without the audit endpoint (this project's mirror answers 405), or no network: nothing to judge, and it says so.
    const counts = report?.metadata?.vulnerabilities;
    if (!report || !counts) {
      const why = report?.message ?? report?.error?.summary ?? stderr.split('\n').find((l) => /error|ERR/i.test(l)) ?? 'no report';
      console.warn(`[security] npm audit skipped: the registry gave no audit report (${why.trim()})`);
      ctx.skip(`npm audit unavailable: ${why.trim()}`);
      return;
    }
    const { high = 0, critical = 0 } = counts;
    const serious = Object.entries(report.vulnerabilities ?? {})
      .filter(([, v]) => v.severity === 'high' || v.severity === 'critical')
      .map(([name, v]) => `${name} (${v.severity})`);
    expect(serious, 'run `npm audit --omit=dev` and upgrade or replace these').toEqual([]);
    expect(high + critical).toBe(0);
  }, 60_000);
});
