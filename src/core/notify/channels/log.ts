/**
 * The embedded default for a channel without provider keys: the message is
 * recorded in the database, where the console shows it, instead of sent.
 */
import type { Db } from '../../../../db/client.ts';
import { maskAddress } from '../recipients.ts';
import type { Channel, ChannelName, LimitSettings, SendJob, SendResult } from '../types.ts';
import { renderEmail } from './email-render.ts';

/** The provider message id of what the log transport wrote down: how a delivery is known to have been logged, not sent. */
export const LOGGED_MESSAGE_ID_PREFIX = 'log-';

export class LogChannel implements Channel {
  readonly mode = 'log' as const;
  readonly batchSize = 100;
  readonly limits: LimitSettings = { ratePerSecond: 10_000, burst: 10_000, concurrency: 1 };
  readonly name: ChannelName;
  private readonly db: Db;

  constructor(name: ChannelName, db: Db) {
    this.name = name;
    this.db = db;
  }

  async send(jobs: SendJob[]): Promise<SendResult[]> {
    const started = performance.now();
    const insert = this.db.$client.prepare(
      'INSERT INTO logged_messages (delivery_id, channel, "to", payload, at) VALUES (?, ?, ?, ?, ?) RETURNING id',
    );
    const now = Date.now();
    const ids = this.db.$client.transaction(() =>
      jobs.map((job) => {
        const payload = this.name === 'email' && job.content.email ? renderEmail(job.content.email, job.links) : job.content[this.name];
        const row = insert.get(job.deliveryId, this.name, maskAddress(this.name, job.address), JSON.stringify(payload ?? null), now) as {
          id: number;
        };
        return row.id;
      }),
    )();
    const durationMs = performance.now() - started;
    return jobs.map((job, i) => ({
      deliveryId: job.deliveryId,
      outcome: 'sent',
      providerMessageId: `${LOGGED_MESSAGE_ID_PREFIX}${ids[i]}`,
      durationMs,
    }));
  }
}
