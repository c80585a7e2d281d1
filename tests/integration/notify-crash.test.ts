/**
 * A dispatcher killed mid-send loses nothing and doubles nothing. `node src/cli.ts worker` runs
 * as a child process against the fake Resend (through the real `resend` SDK); it is SIGKILLed
 * while batches are in flight (the fake has stored them but not yet answered), then started
 * again: its expired leases return the deliveries to the queue, the batches are resent under
 * their idempotency keys, and every address has exactly one email.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { addSubscribers, deliveryCounts, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { enqueueNotification } from '../helpers/outbox-on-connection.ts';
import { ROOT, tempDir } from '../helpers/server.ts';

const COUNT = 10_000;
const KILL_AT = 3000;
const address = (i: number) => `crash${i}@customer.example`;

let resend: ResendFake;
let dataDir: string;
let db: Db;

beforeAll(async () => {
  resend = await startFakeResend();
  dataDir = tempDir('candor-crash-');
  db = openDatabase(join(dataDir, 'candor.db'));
});

afterAll(async () => {
  db?.$client.close();
  await resend?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

interface Worker {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startWorker(args: string[] = []): Worker {
  const key = TEST_KEYS.keys[0];
  if (!key) throw new Error('no test key');
  const child = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', ...args], {
    cwd: ROOT,
    // Only what the worker needs: no provider keys from the developer's shell leak in.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dataDir,
      CANDOR_DATA_DIR: dataDir,
      CANDOR_PUBLIC_URL: 'https://trust.candor.test/',
      CANDOR_SECRET: TEST_KEYS.secret,
      CANDOR_ENCRYPTION_KEY: key.toString('hex'),
      RESEND_API_KEY: resend.apiKey,
      RESEND_BASE_URL: resend.url,
      CANDOR_EMAIL_FROM: 'Candor Status <status@candor.test>',
      CANDOR_LIMIT_EMAIL: 'unlimited',
      CANDOR_LEASE_SECONDS: '2',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function until(predicate: () => boolean, timeoutMs: number, what: string, worker?: Worker): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${worker?.output() ?? ''}`);
    if (worker && worker.child.exitCode !== null)
      throw new Error(`worker exited (${worker.child.exitCode}) before ${what}\n${worker.output()}`);
    await sleep(1);
  }
}

const count = (sql: string) => (db.$client.prepare(sql).get() as { n: number }).n;

describe('a dispatcher killed mid-send', () => {
  it('loses nothing and sends no email twice after a restart', async () => {
    addSubscribers(db, TEST_KEYS, { count: COUNT, channel: 'email', address });
    const { notificationId, deliveries } = await enqueueNotification(
      db,
      { kind: 'incident.update', title: 'API degraded', content: emailContent(), audience: { kind: 'topic', topic: 'incidents' } },
      new Date(),
    );
    expect(deliveries).toBe(COUNT);
    // Answers take a while: at any moment several batches are stored at the fake but not yet answered.
    resend.latency(150);

    const first = startWorker();
    await until(() => resend.emails.length >= KILL_AT, 30_000, `${KILL_AT} emails at the fake`, first);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    expect(first.child.signalCode).toBe('SIGKILL');

    // The kill landed mid-batch: the fake holds emails whose deliveries the worker never recorded.
    const accepted = resend.emails.length;
    const recorded = count(`SELECT count(*) AS n FROM deliveries WHERE status = 'sent'`);
    const stranded = count(`SELECT count(*) AS n FROM deliveries WHERE status = 'sending'`);
    expect(accepted).toBeGreaterThan(recorded);
    expect(accepted).toBeLessThan(COUNT);
    expect(stranded).toBeGreaterThan(0);

    // Restart at once: the dead worker's leases hold for 2 s, then their deliveries return to the queue.
    const second = startWorker();
    await until(
      () => count(`SELECT count(*) AS n FROM deliveries WHERE status IN ('pending', 'sending')`) === 0,
      60_000,
      'an empty outbox',
      second,
    );
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.output()).toContain('stopping: finishing sends in flight');

    expect(deliveryCounts(db, notificationId)).toEqual({ sent: COUNT });
    // Exactly one email per address: the batches that were in flight were replayed, not resent.
    expect(resend.emails).toHaveLength(COUNT);
    expect(resend.duplicates()).toEqual([]);
    const perAddress = new Map<string, number>();
    for (const email of resend.emails) for (const to of email.to) perAddress.set(to, (perAddress.get(to) ?? 0) + 1);
    expect(perAddress.size).toBe(COUNT);
    expect([...perAddress.values()].every((n) => n === 1)).toBe(true);
    expect(resend.requests.filter((r) => r.outcome === 'idempotent-replay').length).toBeGreaterThan(0);
    // every delivery carries the id of the one email the fake accepted for it
    const ids = db.$client.prepare('SELECT provider_message_id AS id FROM deliveries WHERE notification_id = ?').all(notificationId) as {
      id: string | null;
    }[];
    expect(new Set(ids.map((r) => r.id))).toEqual(new Set(resend.emails.map((e) => e.id)));
  }, 90_000);
});
