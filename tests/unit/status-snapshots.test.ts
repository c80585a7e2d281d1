/**
 * The in-memory status pages as src/server.ts serves them: the final headers
 * in the order an Astro-served answer has, negotiation, one render shared by
 * the requests that arrive during it, and a new status version missing. On
 * each engine (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set,
 * as the application role under row-level security); one database for the cases.
 */
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { StatusSnapshots } from '../../src/runtime/status-snapshots.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';

const BODY = Buffer.from(`<!doctype html><title>Status</title>${'<p>All services are operational.</p>'.repeat(200)}`);
const RENDERED_HEADERS: [string, string][] = [
  ['content-type', 'text/html'],
  ['cache-control', 'public, max-age=15'],
  ['content-security-policy', "default-src 'self'; frame-ancestors 'none'"],
  ['x-content-type-options', 'nosniff'],
];

interface Answer {
  status: number;
  rawHeaders: string[];
  body: Buffer;
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A server that answers from the snapshots first, as src/server.ts does; `fallback` stands for Astro. */
async function serving(snapshots: StatusSnapshots, fallback: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer((req, res) => {
    if (!snapshots.serve(req, res, () => fallback(req, res))) fallback(req, res);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const names = (answer: Answer) => answer.rawHeaders.filter((_, i) => i % 2 === 0);
const header = (answer: Answer, name: string) => answer.rawHeaders[answer.rawHeaders.indexOf(name) + 1];

describe.each(enginesUnderTest())('status snapshots on $name', (engine) => {
  let opened: OpenedEngine;
  let database: Database;
  beforeAll(async () => {
    opened = await engine.open();
    database = opened.database;
  });
  afterAll(() => opened?.close());

  it('answers from memory with the final headers, security headers first, and the negotiated body', async () => {
    const snapshots = new StatusSnapshots(database, () => new Date('2026-03-01T12:00:00Z'));
    snapshots.begin('/status', await snapshots.version('/status')).keep({ status: 200, headers: RENDERED_HEADERS, body: BODY });
    const url = await serving(snapshots, (_req, res) => res.writeHead(500).end());

    const br = await get(`${url}/status`, { 'accept-encoding': 'br, gzip' });
    expect(br.status).toBe(200);
    expect(names(br).slice(0, 7)).toEqual([
      'content-security-policy',
      'x-content-type-options',
      'cache-control',
      'content-encoding',
      'content-length',
      'content-type',
      'vary',
    ]);
    expect(header(br, 'content-encoding')).toBe('br');
    expect(header(br, 'vary')).toBe('Accept-Encoding');
    expect(header(br, 'content-length')).toBe(String(br.body.length));
    expect(brotliDecompressSync(br.body)).toEqual(BODY);

    const gzip = await get(`${url}/status`, { 'accept-encoding': 'gzip' });
    expect(header(gzip, 'content-encoding')).toBe('gzip');
    expect(gunzipSync(gzip.body)).toEqual(BODY);

    const plain = await get(`${url}/status`);
    expect(names(plain)).not.toContain('content-encoding');
    expect(plain.body).toEqual(BODY);
  });

  it('leaves to the app what it does not hold: a query string, another method, another page', async () => {
    const snapshots = new StatusSnapshots(database, () => new Date('2026-03-01T12:00:00Z'));
    snapshots.begin('/status', await snapshots.version('/status')).keep({ status: 200, headers: RENDERED_HEADERS, body: BODY });
    const url = await serving(snapshots, (_req, res) => res.writeHead(418).end());
    expect((await get(`${url}/status?fresh=1`)).status).toBe(418);
    expect((await get(`${url}/status`, {}, 'HEAD')).status).toBe(418);
    expect((await get(`${url}/incidents/1`)).status).toBe(418);
    expect((await get(`${url}/status`)).status).toBe(200);
  });

  it('a new status version is not answered from memory', async () => {
    let now = new Date('2026-03-01T23:59:59Z');
    const snapshots = new StatusSnapshots(database, () => now);
    snapshots.begin('/status', await snapshots.version('/status')).keep({ status: 200, headers: RENDERED_HEADERS, body: BODY });
    const url = await serving(snapshots, (_req, res) => res.writeHead(418).end());
    expect((await get(`${url}/status`)).status).toBe(200);
    // The UTC day is part of the version: the 90-day bars move.
    now = new Date('2026-03-02T00:00:01Z');
    await nextTurn();
    expect((await get(`${url}/status`)).status).toBe(418);
  });

  it('/documents is kept until the UTC day turns, when a document may have expired', async () => {
    let now = new Date('2026-03-01T23:59:59Z');
    const snapshots = new StatusSnapshots(database, () => now);
    snapshots.begin('/documents', await snapshots.version('/documents')).keep({ status: 200, headers: RENDERED_HEADERS, body: BODY });
    const url = await serving(snapshots, (_req, res) => res.writeHead(418).end());
    expect((await get(`${url}/documents`)).status).toBe(200);
    now = new Date('2026-03-02T00:00:01Z');
    await nextTurn();
    expect((await get(`${url}/documents`)).status).toBe(418);
  });

  it('requests arriving during a render wait for it; when it is not kept, they go to the app', async () => {
    const snapshots = new StatusSnapshots(database, () => new Date('2026-03-01T12:00:00Z'));
    let appAnswers = 0;
    const url = await serving(snapshots, (_req, res) => {
      appAnswers++;
      res.writeHead(503).end();
    });

    const kept = snapshots.begin('/status', await snapshots.version('/status'));
    const waiting = Promise.all(Array.from({ length: 20 }, () => get(`${url}/status`)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    kept.keep({ status: 200, headers: RENDERED_HEADERS, body: BODY });
    const answers = await waiting;
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(appAnswers).toBe(0);

    await nextTurn();
    const dropped = snapshots.begin('/incidents/7', await snapshots.version('/status'));
    const others = Promise.all(Array.from({ length: 5 }, () => get(`${url}/incidents/7`)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    dropped.abandon();
    expect((await others).map((a) => a.status)).toEqual(Array(5).fill(503));
    expect(appAnswers).toBe(5);
  });
});
