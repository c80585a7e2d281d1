/**
 * Exactly once after a crash, the engine's side, on each engine: a delivery whose sender died holding
 * its lease (or whose retry's answer said the provider may have acted) comes back from the claim with
 * `unknownSince`, and the dispatcher asks a channel that can reconcile before sending again. `found`
 * records it sent without a second send; `absent` sends it once; `unknown` puts it back unsent. Each
 * question is an attempt row of kind `reconcile`, not counted as a send.
 *
 * The channel here is a small object implementing our own Channel interface (the SMS and Slack
 * reconcile() against their providers' fakes are tested with those channels): it scripts the
 * provider's answers, so each branch of the dispatcher is reached on purpose.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { Dispatcher, RECONCILE_GIVE_UP_MS } from '../../src/core/notify/dispatcher.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import type { Channel, Reconciliation, SendJob, SendResult } from '../../src/core/notify/types.ts';
import { attemptRows, claimDue, deliveryRows } from '../../src/stores/deliveries.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

/** An SMS provider with scripted answers: what it is asked, what it sends. */
class ScriptedChannel implements Channel {
  readonly name = 'sms' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits = { ratePerSecond: 1000, burst: 1000, concurrency: 4 };
  /** answers to reconcile(), in order; `absent` once they run out */
  answers: Reconciliation['outcome'][] = [];
  /** the send's outcome per delivery id; `sent` when not set */
  sendAs = new Map<number, { outcome: 'retry'; mayHaveSent: boolean }>();
  readonly asked: { deliveryId: number; unknownSince: Date | null }[] = [];
  readonly sent: number[] = [];
  async send(jobs: SendJob[]): Promise<SendResult[]> {
    return jobs.map((job) => {
      this.sent.push(job.deliveryId);
      const as = this.sendAs.get(job.deliveryId);
      if (as) return { deliveryId: job.deliveryId, outcome: 'retry', error: 'timed out', mayHaveSent: as.mayHaveSent, durationMs: 5 };
      return { deliveryId: job.deliveryId, outcome: 'sent', providerMessageId: `SM-sent-${job.deliveryId}`, durationMs: 5 };
    });
  }
  async reconcile(job: SendJob): Promise<Reconciliation> {
    this.asked.push({ deliveryId: job.deliveryId, unknownSince: job.unknownSince });
    const answer = this.answers.shift() ?? 'absent';
    if (answer === 'found') return { outcome: 'found', providerMessageId: `SM-found-${job.deliveryId}`, durationMs: 3 };
    if (answer === 'unknown') return { outcome: 'unknown', error: 'listing not ready', retryAfterMs: 30_000, durationMs: 3 };
    return { outcome: 'absent', durationMs: 3 };
  }
}

async function enqueueSms(database: Database, at: Date): Promise<{ notificationId: number; ids: number[] }> {
  const input = {
    kind: 'incident.update',
    title: 't',
    content: { sms: { body: 'API errors elevated', link: 'https://trust.candor.test/incidents/1' } },
    audience: { kind: 'topic' as const, topic: 'incidents' },
  };
  const { notificationId } =
    database.engine === 'sqlite'
      ? await database.transaction((tx) => enqueueNotification(tx, input, at))
      : await database.transaction((tx) => enqueueNotification(tx, input, at));
  const rows = await database.read((r) => deliveryRows(r, notificationId, { afterId: 0, limit: 100 }));
  return { notificationId, ids: rows.map((row) => row.id) };
}

describe.each(enginesUnderTest())('reconciling after a crash on $name', (engine) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  /** One SMS delivery per recipient; with `crashed`, claimed by a sender that then died (its lease ran out unrecorded). */
  async function setUp(recipients: number, options: { crashed: boolean }) {
    const { database, close } = await engine.open();
    cleanup.push(close);
    await addSubscribersTo(database, TEST_KEYS, { count: recipients, channel: 'sms', address: (i) => `+1555010${1000 + i}` });
    let clock = Date.now();
    const { notificationId, ids } = await enqueueSms(database, new Date(clock - 120_000));
    const crashedAt = new Date(clock - 60_000);
    if (options.crashed) {
      const claimed = await database.transaction((tx) => claimDue(tx, 'sms', 'dead', crashedAt, new Date(crashedAt.getTime() + 1000), 100));
      expect(claimed.map((c) => c.unknownSince)).toEqual(ids.map(() => null));
    }
    const channel = new ScriptedChannel();
    const dispatcher = new Dispatcher({
      database,
      channels: { sms: channel },
      keys: TEST_KEYS,
      publicUrl: new URL('https://trust.candor.test/'),
      now: () => clock,
      retry: { baseMs: 1000, capMs: 1000, maxAttempts: 5 },
    });
    const read = async () => {
      const rows = await database.read((r) => deliveryRows(r, notificationId, { afterId: 0, limit: 100 }));
      const attempts = await database.read((r) => attemptRows(r, ids));
      return rows.map((row) => ({
        status: row.status,
        attempts: row.attempts,
        providerMessageId: row.providerMessageId,
        unknownSince: row.unknownSince,
        tries: attempts
          .filter((a) => a.deliveryId === row.id)
          .map((a) => `${a.kind} ${a.outcome}${a.providerCode ? ` ${a.providerCode}` : ''}${a.error ? `: ${a.error}` : ''}`),
      }));
    };
    return {
      ids,
      crashedAt,
      channel,
      dispatcher,
      read,
      now: () => clock,
      advance: (ms: number) => {
        clock += ms;
      },
    };
  }

  it('found: the crashed send is recorded sent with the provider id, not sent again, and the question is no attempt', async () => {
    const w = await setUp(1, { crashed: true });
    w.channel.answers = ['found'];
    await w.dispatcher.drain();
    expect(w.channel.asked).toEqual([{ deliveryId: w.ids[0], unknownSince: w.crashedAt }]);
    expect(w.channel.sent).toEqual([]);
    // one attempt: the dead sender's; the question is recorded, not counted
    expect(await w.read()).toEqual([
      { status: 'sent', attempts: 1, providerMessageId: `SM-found-${w.ids[0]}`, unknownSince: null, tries: ['reconcile sent'] },
    ]);
  });

  it('absent: sent once, in the same round', async () => {
    const w = await setUp(1, { crashed: true });
    w.channel.answers = ['absent'];
    await w.dispatcher.drain();
    expect(w.channel.asked).toEqual([{ deliveryId: w.ids[0], unknownSince: w.crashedAt }]);
    expect(w.channel.sent).toEqual(w.ids);
    expect(await w.read()).toEqual([
      {
        status: 'sent',
        attempts: 2,
        providerMessageId: `SM-sent-${w.ids[0]}`,
        unknownSince: null,
        tries: ['reconcile retry absent', 'send sent'],
      },
    ]);
  });

  it('unknown: back to the queue unsent and still unknown, asked again after the delay, then found', async () => {
    const w = await setUp(1, { crashed: true });
    w.channel.answers = ['unknown', 'found'];
    await w.dispatcher.drain();
    expect(w.channel.sent).toEqual([]);
    expect(await w.read()).toEqual([
      { status: 'pending', attempts: 1, providerMessageId: null, unknownSince: w.crashedAt, tries: ['reconcile retry: listing not ready'] },
    ]);
    // not due again before the provider's delay
    w.advance(20_000);
    expect(await w.dispatcher.drain()).toBe(0);
    w.advance(15_000);
    await w.dispatcher.drain();
    expect(w.channel.asked.map((a) => a.unknownSince)).toEqual([w.crashedAt, w.crashedAt]);
    expect(w.channel.sent).toEqual([]);
    expect(await w.read()).toEqual([
      {
        status: 'sent',
        attempts: 1,
        providerMessageId: `SM-found-${w.ids[0]}`,
        unknownSince: null,
        tries: ['reconcile retry: listing not ready', 'reconcile sent'],
      },
    ]);
  });

  it('a provider that cannot say for an hour does not hold the message back for ever: it is sent, marked unverified', async () => {
    const w = await setUp(1, { crashed: true });
    w.channel.answers = ['unknown', 'unknown'];
    await w.dispatcher.drain();
    expect(w.channel.sent).toEqual([]);
    // an hour after the send of unknown outcome began (the crash was a minute ago)
    w.advance(RECONCILE_GIVE_UP_MS - 60_000);
    await w.dispatcher.drain();
    expect(w.channel.asked).toHaveLength(2);
    expect(w.channel.sent).toEqual(w.ids);
    const [row] = await w.read();
    expect(row?.status).toBe('sent');
    expect(row?.tries).toEqual([
      'reconcile retry: listing not ready',
      'reconcile retry unverified: could not be verified for an hour (listing not ready); sent again',
      'send sent',
    ]);
  });

  it('a retry that may have been sent keeps unknown_since and is reconciled next; one that proves nothing went is not', async () => {
    const w = await setUp(2, { crashed: false });
    const [maybe, surely] = w.ids as [number, number];
    w.channel.sendAs.set(maybe, { outcome: 'retry', mayHaveSent: true });
    w.channel.sendAs.set(surely, { outcome: 'retry', mayHaveSent: false });
    // the send that timed out began 5 ms (its duration) before its answer was recorded
    const sendBegan = new Date(w.now() - 5);
    await w.dispatcher.drain();
    // a fresh delivery is not reconciled
    expect(w.channel.asked).toEqual([]);
    expect((await w.read()).map((d) => [d.status, d.unknownSince])).toEqual([
      ['pending', sendBegan],
      ['pending', null],
    ]);
    w.channel.sendAs.clear();
    w.channel.answers = ['absent'];
    w.advance(5_000);
    await w.dispatcher.drain();
    expect(w.channel.asked).toEqual([{ deliveryId: maybe, unknownSince: sendBegan }]);
    // each sent twice: the timed-out try and the one that went through (the question is not a send)
    expect([...w.channel.sent].sort((a, b) => a - b)).toEqual([maybe, maybe, surely, surely].sort((a, b) => a - b));
    expect((await w.read()).map((d) => [d.status, d.attempts, d.unknownSince, d.tries])).toEqual([
      ['sent', 2, null, ['send retry: timed out', 'reconcile retry absent', 'send sent']],
      ['sent', 2, null, ['send retry: timed out', 'send sent']],
    ]);
  });

  it('absent, sent again, and that answer lost too: the next question looks from the new send, not the crashed one', async () => {
    const w = await setUp(1, { crashed: true });
    const [only] = w.ids as [number];
    w.channel.answers = ['absent'];
    w.channel.sendAs.set(only, { outcome: 'retry', mayHaveSent: true });
    const resentAt = new Date(w.now() - 5);
    await w.dispatcher.drain();
    expect(w.channel.sent).toEqual([only]);
    const [row] = await w.read();
    expect(row?.status).toBe('pending');
    // not the crashed send's time: a lookup from then would miss the new send's window
    expect(row?.unknownSince).toEqual(resentAt);
    expect(row?.unknownSince).not.toEqual(w.crashedAt);
  });
});
