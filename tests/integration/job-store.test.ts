/**
 * Durable jobs on each engine: rescheduling moves a job, a due job runs once and is marked done, a
 * failing one is retried later and given up after its attempts, a cancelled one never runs, a lease
 * that ran out is taken over, and concurrent runners (two nodes on one PostgreSQL database) run each
 * due job exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { Database, Tx } from '../../db/engine/types.ts';
import { cancelJob, type Job, runDueJobs, scheduleJob } from '../../src/core/jobs/jobs.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const T0 = new Date('2026-12-03T09:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

describe.each(enginesUnderTest())('jobs on $name', (engine) => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ database, close } = await engine.open());
  }, 60_000);
  afterAll(() => close());
  beforeEach(() =>
    database.transaction(async (tx) => {
      const q = query(tx);
      await q.db.delete(q.t.jobs);
    }),
  );

  const rows = () =>
    database.read(async (r) => {
      const q = query(r as Tx);
      const j = q.t.jobs;
      return q.db
        .select({ key: j.key, status: j.status, attempts: j.attempts, runAt: j.runAt, lastError: j.lastError })
        .from(j)
        .orderBy(j.key);
    });
  const schedule = (key: string, runAt: Date, payload: Record<string, unknown> = {}) =>
    database.transaction((tx) => scheduleJob(tx, key, 'test', runAt, payload, T0));

  it('runs a due job once with its payload, leaves one not yet due, and moves a rescheduled one', async () => {
    await schedule('due', at(0), { n: 1 });
    await schedule('later', at(60));
    await schedule('moved', at(0));
    await schedule('moved', at(120), { n: 2 });
    const ran: Job[] = [];
    expect(await runDueJobs(database, { test: (job) => void ran.push(job) }, at(1))).toBe(1);
    expect(ran.map((j) => [j.key, j.payload, j.attempts])).toEqual([['due', { n: 1 }, 1]]);
    expect(await runDueJobs(database, { test: (job) => void ran.push(job) }, at(2))).toBe(0);
    expect((await rows()).map((r) => [r.key, r.status])).toEqual([
      ['due', 'done'],
      ['later', 'pending'],
      ['moved', 'pending'],
    ]);
    expect((await rows()).find((r) => r.key === 'moved')?.runAt).toEqual(at(120));
  });

  it('retries a failing job later with its error recorded, and gives up after five attempts', async () => {
    await schedule('flaky', at(0));
    const log: string[] = [];
    const fail = () => {
      throw new Error('provider down');
    };
    let now = at(0);
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect(await runDueJobs(database, { test: fail }, now, (line) => log.push(line))).toBe(1);
      const [row] = await rows();
      expect(row).toMatchObject({ attempts: attempt, lastError: 'provider down', status: attempt < 5 ? 'pending' : 'failed' });
      // not before its backoff
      expect(await runDueJobs(database, { test: fail }, now)).toBe(0);
      now = row?.runAt ?? now;
    }
    expect(await runDueJobs(database, { test: fail }, at(86_400))).toBe(0);
    expect(log).toHaveLength(5);
    expect(log[0]).toContain('job flaky failed: provider down');
  });

  it('never runs a cancelled job, and takes over one whose runner died holding its lease', async () => {
    await schedule('cancelled', at(0));
    await database.transaction((tx) => cancelJob(tx, 'cancelled', T0));
    await schedule('orphan', at(0));
    // A runner claimed it and died: no handler finishes, the lease (5 minutes) runs out.
    void runDueJobs(database, { test: () => new Promise<void>(() => {}) }, at(0));
    await vi.waitFor(async () => expect((await rows()).find((r) => r.key === 'orphan')?.status).toBe('running'));
    const ran: string[] = [];
    expect(await runDueJobs(database, { test: (job) => void ran.push(job.key) }, at(60))).toBe(0);
    expect(await runDueJobs(database, { test: (job) => void ran.push(job.key) }, at(301))).toBe(1);
    expect(ran).toEqual(['orphan']);
    expect((await rows()).map((r) => [r.key, r.status])).toEqual([
      ['cancelled', 'cancelled'],
      ['orphan', 'done'],
    ]);
  });

  it('runs each of 120 due jobs exactly once under four concurrent runners', async () => {
    for (let i = 0; i < 120; i++) await schedule(`job-${String(i).padStart(3, '0')}`, at(0));
    const runs = new Map<string, number>();
    const handler = async (job: Job) => {
      runs.set(job.key, (runs.get(job.key) ?? 0) + 1);
      await sleep(1);
    };
    const runner = async () => {
      let total = 0;
      for (let n = -1; n !== 0; ) {
        n = await runDueJobs(database, { test: handler }, at(1));
        total += n;
      }
      return total;
    };
    const totals = await Promise.all([runner(), runner(), runner(), runner()]);
    expect(totals.reduce((a, b) => a + b, 0)).toBe(120);
    expect(runs.size).toBe(120);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(new Set((await rows()).map((r) => r.status))).toEqual(new Set(['done']));
    const done = await database.read(async (r) => {
      const q = query(r as Tx);
      return q.db.$count(q.t.jobs, eq(q.t.jobs.status, 'done'));
    });
    expect(done).toBe(120);
  }, 60_000);
});
