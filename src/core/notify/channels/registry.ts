/**
 * Which implementation each channel uses: the provider's when its keys are
 * configured, the log transport otherwise.
 */
import type { Db } from '../../../../db/client.ts';
import type { Providers } from '../../config/env.ts';
import type { Channel, ChannelName } from '../types.ts';
import { ResendEmailChannel } from './email-resend.ts';
import { LogChannel } from './log.ts';

export function buildChannels(providers: Providers, db: Db): Record<ChannelName, Channel> {
  return {
    email: providers.email
      ? new ResendEmailChannel({
          apiKey: providers.email.apiKey,
          from: providers.email.from,
          ...(providers.email.baseUrl ? { baseUrl: providers.email.baseUrl } : {}),
        })
      : new LogChannel('email', db),
    sms: new LogChannel('sms', db),
    slack: new LogChannel('slack', db),
    webhook: new LogChannel('webhook', db),
  };
}

export function describeChannels(channels: Record<ChannelName, Channel>): string {
  return Object.values(channels)
    .map((c) => `${c.name} ${c.mode === 'live' ? 'live' : 'logged to the database (no provider keys)'}`)
    .join(', ');
}
