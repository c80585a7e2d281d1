/**
 * The console's CSV export streams: the database is read a page at a time as the client pulls, never
 * the whole table at once, and a client that goes away stops the reading (src/lib/stream.ts,
 * src/core/subscriptions/directory.ts `subscribersCsv`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { subscribersCsv } from '../../src/core/subscriptions/directory.ts';
import { signUp } from '../../src/core/subscriptions/subscribers.ts';
import { textStream } from '../../src/lib/stream.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { tempSqliteEngine } from '../helpers/postgres.ts';

const decoder = new TextDecoder();

describe('textStream', () => {
  it('takes a generator or an async generator, one chunk per pull', async () => {
    async function* slow() {
      yield 'a';
      await new Promise((r) => setTimeout(r, 5));
      yield 'b';
    }
    for (const chunks of [['a', 'b'], slow()]) expect(await new Response(textStream(chunks)).text()).toBe('ab');
  });

  it('closes the iterator when the client goes away', async () => {
    let closed = false;
    async function* endless() {
      try {
        for (let i = 0; ; i++) yield `${i}\n`;
      } finally {
        closed = true;
      }
    }
    const reader = textStream(endless()).getReader();
    expect(decoder.decode((await reader.read()).value)).toBe('0\n');
    await reader.cancel();
    expect(closed).toBe(true);
  });
});

describe('subscribersCsv', () => {
  let engine: SqliteEngine;
  let reads = 0;
  let counted: Database;
  beforeAll(async () => {
    engine = tempSqliteEngine();
    for (let i = 0; i < 5; i++)
      await signUp(
        engine,
        TEST_KEYS,
        { channel: 'email', address: `p${i}@example.com`, status: 'active' },
        { topics: ['incidents'], components: [], organisation: null },
        new Date('2026-12-01T00:00:00Z'),
      );
    // the same handle, counting its reads
    counted = Object.assign(Object.create(engine) as SqliteEngine, {
      read: ((fn, options) => {
        reads++;
        return engine.read(fn, options);
      }) as SqliteEngine['read'],
    });
  });
  afterAll(async () => {
    await engine.close();
  });

  // The stream keeps one chunk ready ahead of the client (ReadableStream's high-water mark of 1): one page more at most.
  it('reads a page as the client pulls, in order, each address once', async () => {
    reads = 0;
    const reader = textStream(subscribersCsv(counted, TEST_KEYS, 1)).getReader();
    const chunks: string[] = [];
    const pull = async () => {
      const next = await reader.read();
      if (!next.done) chunks.push(decoder.decode(next.value));
      return next.done;
    };
    await pull(); // the header
    expect(reads).toBeLessThanOrEqual(1);
    await pull(); // the first address
    expect(reads).toBeLessThanOrEqual(2);
    while (!(await pull()));
    // 5 rows in pages of 1: five full pages and an empty one
    expect(reads).toBe(6);
    const rows = chunks.join('').trim().split('\r\n').slice(1);
    expect(rows.map((row) => row.split(',')[3])).toEqual([
      'p0@example.com',
      'p1@example.com',
      'p2@example.com',
      'p3@example.com',
      'p4@example.com',
    ]);
  });

  it('stops reading when the client goes away', async () => {
    reads = 0;
    const reader = textStream(subscribersCsv(counted, TEST_KEYS, 1)).getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    await new Promise((r) => setTimeout(r, 20));
    expect(reads).toBeLessThanOrEqual(2);
  });
});
