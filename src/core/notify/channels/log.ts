/**
 * The embedded default for a channel without provider keys: the message is
 * recorded in the database, where the console shows it, instead of sent.
 */
import type { Database } from '../../../../db/engine/types.ts';
import { insertLoggedMessages } from '../../../stores/deliveries.ts';
import { maskAddress } from '../recipients.ts';
import type { Channel, ChannelName, LimitSettings, SendJob, SendResult } from '../types.ts';
import { contentFor } from './chat-from-slack.ts';
import { renderEmail } from './email-render.ts';

/** The provider message id of what the log transport wrote down: how a delivery is known to have been logged, not sent. */
export const LOGGED_MESSAGE_ID_PREFIX = 'log-';

export class LogChannel implements Channel {
  readonly mode = 'log' as const;
  readonly batchSize = 100;
  readonly limits: LimitSettings = { ratePerSecond: 10_000, burst: 10_000, concurrency: 1 };
  readonly name: ChannelName;
  private readonly database: Database;

  constructor(name: ChannelName, database: Database) {
    this.name = name;
    this.database = database;
  }

  async send(jobs: SendJob[]): Promise<SendResult[]> {
    const started = performance.now();
    // Rendered before the transaction, which then holds nothing but its one insert.
    const messages = jobs.map((job) => ({
      deliveryId: job.deliveryId,
      channel: this.name,
      to: maskAddress(this.name, job.address),
      payload: this.name === 'email' && job.content.email ? renderEmail(job.content.email, job.links) : contentFor(job.content, this.name),
    }));
    const ids = await this.database.transaction((tx) => insertLoggedMessages(tx, new Date(), messages));
    const durationMs = performance.now() - started;
    return jobs.map((job) => ({
      deliveryId: job.deliveryId,
      outcome: 'sent',
      providerMessageId: `${LOGGED_MESSAGE_ID_PREFIX}${ids.get(job.deliveryId)}`,
      durationMs,
    }));
  }
}
