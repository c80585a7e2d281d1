/**
 * Which implementation each channel uses: the provider's when its keys are
 * configured, the log transport otherwise. Webhooks, Teams and Discord need no
 * account (their URL is the credential) and are always sent.
 */
import type { Database } from '../../../../db/engine/types.ts';
import type { Providers } from '../../config/env.ts';
import type { Channel, ChannelName } from '../types.ts';
import { DiscordChannel } from './discord.ts';
import { LogChannel } from './log.ts';
import { TeamsChannel } from './teams.ts';
import { WebhookChannel } from './webhook.ts';

/** Provider SDKs are loaded only for the channels that use them: the Twilio SDK alone weighs tens of megabytes. */
export async function buildChannels(providers: Providers, database: Database, publicUrl: URL): Promise<Record<ChannelName, Channel>> {
  const { email, sms, slack, limits } = providers;
  return {
    email: email
      ? new (await import('./email-resend.ts')).ResendEmailChannel({
          apiKey: email.apiKey,
          from: email.from,
          baseUrl: email.baseUrl,
          limits: limits.email ?? {},
        })
      : new LogChannel('email', database),
    sms: sms
      ? new (await import('./sms-twilio.ts')).TwilioSmsChannel({
          ...sms,
          statusCallbackUrl: new URL('webhooks/twilio/status', publicUrl).href,
          limits: limits.sms ?? {},
          reconcileSettleMs: providers.reconcileSettleMs,
        })
      : new LogChannel('sms', database),
    slack: slack
      ? new (await import('./slack.ts')).SlackChannel(database, {
          apiUrl: slack.apiUrl,
          limits: limits.slack ?? {},
          reconcileSettleMs: providers.reconcileSettleMs,
        })
      : new LogChannel('slack', database),
    webhook: new WebhookChannel({ allowHosts: providers.webhookAllowHosts }, limits.webhook ?? {}),
    teams: new TeamsChannel(providers.webhookAllowHosts, limits.teams ?? {}),
    discord: new DiscordChannel(providers.webhookAllowHosts, limits.discord ?? {}),
  };
}

export function describeChannels(channels: Record<ChannelName, Channel>): string {
  return Object.values(channels)
    .map((c) => `${c.name} ${c.mode === 'live' ? 'live' : 'logged to the database (no provider keys)'}`)
    .join(', ');
}

/** Which channels send for real, from configuration alone (the console's Settings page). */
export function channelModes(providers: Providers): Record<ChannelName, { live: boolean; provider: string }> {
  return {
    email: { live: providers.email !== null, provider: providers.email ? `Resend, from ${providers.email.from}` : 'log transport' },
    sms: {
      live: providers.sms !== null,
      provider: providers.sms ? `Twilio, from ${providers.sms.from ?? providers.sms.messagingServiceSid}` : 'log transport',
    },
    slack: { live: providers.slack !== null, provider: providers.slack ? 'Slack' : 'log transport' },
    webhook: { live: true, provider: 'signed webhooks (Standard Webhooks)' },
    teams: { live: true, provider: 'Microsoft Teams Workflows webhooks' },
    discord: { live: true, provider: 'Discord webhooks' },
  };
}
