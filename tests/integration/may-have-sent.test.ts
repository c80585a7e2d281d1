/**
 * Whether a retried webhook or chat post may have reached its receiver (`mayHaveSent`), which decides
 * whether the next attempt reconciles first and what the delivery's `unknown_since` keeps: a 5xx or
 * a connection lost after the request was written may have; a refused connection or a 429 has not.
 * Through the real channels against the loopback fakes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiscordChannel } from '../../src/core/notify/channels/discord.ts';
import { TeamsChannel } from '../../src/core/notify/channels/teams.ts';
import { WebhookChannel } from '../../src/core/notify/channels/webhook.ts';
import type { Channel, SendJob, SendResult } from '../../src/core/notify/types.ts';
import { type ChatWebhooksFake, startChatWebhooksFake } from '../fakes/chat-webhooks.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import { freePort } from '../helpers/server.ts';

const SECRET = `whsec_${Buffer.alloc(24, 7).toString('base64')}`;

function job(address: string, secret: string | null): SendJob {
  return {
    deliveryId: 41,
    notificationId: 1,
    recipientId: 1,
    address,
    secret,
    content: { webhook: { type: 'incident.updated', data: {} }, slack: { text: 'API errors elevated', blocks: [] } },
    threadKey: null,
    batchKey: null,
    attempt: 1,
    unknownSince: null,
    links: { unsubscribe: null, manage: null },
  };
}

const once = async (
  channel: Channel,
  address: string,
  secret: string | null = null,
): Promise<Pick<SendResult, 'outcome' | 'mayHaveSent'>> => {
  const [result] = await channel.send([job(address, secret)]);
  return { outcome: result?.outcome ?? 'failed', mayHaveSent: result?.mayHaveSent };
};

describe('mayHaveSent on retries', () => {
  let receiver: WebhookReceiver;
  let chats: ChatWebhooksFake;
  let closedPort: number;
  beforeAll(async () => {
    receiver = await startWebhookReceiver({ secret: SECRET });
    chats = await startChatWebhooksFake();
    closedPort = await freePort();
  });
  afterAll(async () => {
    await receiver.close();
    await chats.close();
  });

  it('signed webhooks: 5xx and a lost answer may have; 503, refused connection and 429 have not', async () => {
    const host = new URL(receiver.url).host;
    const webhook = new WebhookChannel({ allowHosts: [host, `127.0.0.1:${closedPort}`] });
    const at = `${receiver.url}/hook`;
    receiver.failNext(1, 500);
    expect(await once(webhook, at, SECRET)).toEqual({ outcome: 'retry', mayHaveSent: true });
    // 503: unavailable, the request was not processed
    receiver.failNext(1, 503);
    expect(await once(webhook, at, SECRET)).toEqual({ outcome: 'retry', mayHaveSent: false });
    receiver.loseResponseNext(1);
    expect(await once(webhook, at, SECRET)).toEqual({ outcome: 'retry', mayHaveSent: true });
    receiver.failNext(1, 429);
    expect(await once(webhook, at, SECRET)).toEqual({ outcome: 'retry', mayHaveSent: false });
    expect(await once(webhook, `http://127.0.0.1:${closedPort}/hook`, SECRET)).toEqual({ outcome: 'retry', mayHaveSent: false });
    expect(await once(webhook, at, SECRET)).toEqual({ outcome: 'sent', mayHaveSent: undefined });
  });

  it('Teams and Discord: the same', async () => {
    const teams = new TeamsChannel([chats.host, `127.0.0.1:${closedPort}`]);
    const discord = new DiscordChannel([chats.host, `127.0.0.1:${closedPort}`]);
    chats.failNext(1, 502);
    expect(await once(teams, chats.teamsUrl('flow1'))).toEqual({ outcome: 'retry', mayHaveSent: true });
    chats.loseResponseNext(1);
    expect(await once(discord, chats.discordUrl('1'))).toEqual({ outcome: 'retry', mayHaveSent: true });
    chats.failNext(1, 429);
    expect(await once(discord, chats.discordUrl('1'))).toEqual({ outcome: 'retry', mayHaveSent: false });
    const refused = chats.teamsUrl('flow1').replace(chats.host, `127.0.0.1:${closedPort}`);
    expect(await once(teams, refused)).toEqual({ outcome: 'retry', mayHaveSent: false });
  });
});
