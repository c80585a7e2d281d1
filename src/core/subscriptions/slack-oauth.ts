/**
 * "Add to Slack" (OAuth v2): the state parameter is random, signed and
 * single-use, and carries nothing but a reference to the choices stored
 * here; the code is exchanged with oauth.v2.access through the Slack SDK.
 * The app's incoming webhook picks the channel; the bot token lets Candor
 * thread and edit messages there.
 *
 * The state is spent in one conditional UPDATE (two callbacks with one state: one goes on); the
 * channel's subscriber, address and welcome message are written in one transaction after Slack
 * answered (no network I/O inside a transaction).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { LogLevel, WebClient } from '@slack/web-api';
import { insertSlackState, reinstallSlack, takeSlackState } from '../../stores/subscribers.ts';
import { randomToken } from '../crypto/random.ts';
import { recipientLinks } from '../notify/links.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { recordConfirmedConsent } from './consents.ts';
import type { Choices, Result, SubscriptionContext } from './context.ts';
import { slackWelcome } from './messages.ts';
import { sealSecret, setTopicsIn, signUpIn } from './subscribers.ts';
import { isTopic } from './topics.ts';

/**
 * incoming-webhook picks the channel; chat:write posts and edits; channels:history and groups:history
 * (public and private channels) let the Slack channel find a message whose answer was lost, by its
 * metadata, instead of posting it again (src/core/notify/channels/slack.ts). Installations made before
 * the history scopes were asked for cannot look (`missing_scope`): theirs are posted again after the
 * settle time, possibly twice, until they add the app again.
 */
export const SLACK_SCOPES = 'incoming-webhook,chat:write,channels:history,groups:history';
const STATE_TTL_MS = 10 * 60_000;

export interface SlackApp {
  clientId: string;
  clientSecret: string;
  /** SLACK_API_URL, for oauth.v2.access; default Slack itself */
  apiUrl?: string | undefined;
}

const sign = (secret: string, id: string) => createHmac('sha256', secret).update(`slack-state:${id}`).digest('base64url').slice(0, 32);
export const slackRedirectUri = (publicUrl: URL) => new URL('subscribe/slack/callback', publicUrl).href;

export async function startSlackOAuth(ctx: SubscriptionContext, choices: Choices, app: SlackApp): Promise<string> {
  const id = randomToken();
  await ctx.database.transaction((tx) =>
    insertSlackState(tx, { id, choices: { ...choices }, createdAt: ctx.now, expiresAt: new Date(ctx.now.getTime() + STATE_TTL_MS) }),
  );
  const url = new URL('https://slack.com/oauth/v2/authorize');
  url.searchParams.set('client_id', app.clientId);
  url.searchParams.set('scope', SLACK_SCOPES);
  url.searchParams.set('state', `${id}.${sign(ctx.keys.secret, id)}`);
  url.searchParams.set('redirect_uri', slackRedirectUri(ctx.publicUrl));
  return url.href;
}

async function takeState(ctx: SubscriptionContext, state: string): Promise<Choices | null> {
  const [id, mac, extra] = state.split('.');
  if (!id || !mac || extra !== undefined || id.length > 40) return null;
  const expected = Buffer.from(sign(ctx.keys.secret, id));
  if (Buffer.from(mac).length !== expected.length || !timingSafeEqual(Buffer.from(mac), expected)) return null;
  const stored = await ctx.database.transaction((tx) => takeSlackState(tx, id, ctx.now));
  if (!stored) return null;
  const parsed = stored as unknown as Choices;
  return { topics: parsed.topics.filter(isTopic), components: parsed.components, organisation: parsed.organisation };
}

export async function completeSlackOAuth(
  ctx: SubscriptionContext,
  app: SlackApp,
  params: { code: string | null; state: string | null; error: string | null },
): Promise<Result<{ channel: string; manageUrl: string }>> {
  const choices = params.state ? await takeState(ctx, params.state) : null;
  if (!choices)
    return { ok: false, message: 'This Slack sign-up link has expired or was already used. Start again from the subscribe page.' };
  if (params.error || !params.code)
    return { ok: false, message: 'Slack did not add the app (the request was cancelled). Nothing was changed.' };
  const client = new WebClient(undefined, {
    ...(app.apiUrl ? { slackApiUrl: `${app.apiUrl.replace(/\/+$/, '')}/api/` } : {}),
    retryConfig: { retries: 1 },
    logLevel: LogLevel.ERROR,
  });
  let access: { access_token?: string; incoming_webhook?: { channel?: string; channel_id?: string }; team?: { name?: string } };
  try {
    access = await client.oauth.v2.access({
      client_id: app.clientId,
      client_secret: app.clientSecret,
      code: params.code,
      redirect_uri: slackRedirectUri(ctx.publicUrl),
    });
  } catch (err) {
    const code = (err as { data?: { error?: string } }).data?.error;
    return { ok: false, message: `Slack refused the sign-up${code ? ` (${code})` : ''}. Start again from the subscribe page.` };
  }
  const token = access.access_token;
  const channelId = access.incoming_webhook?.channel_id;
  if (!token || !channelId) return { ok: false, message: 'Slack did not give us a channel to post in. Start again and pick a channel.' };
  // Installed again in a channel that has an address already: its new token, active again, the new choices.
  const manageUrl = await ctx.database.transaction(async (tx) => {
    const { recipient, created } = await signUpIn(
      tx,
      ctx.keys,
      { channel: 'slack', address: channelId, secret: token, status: 'active' },
      choices,
      ctx.now,
    );
    if (!created) {
      await reinstallSlack(tx, recipient.id, sealSecret(ctx.keys, 'slack', token));
      if (recipient.subscriberId) await setTopicsIn(tx, recipient.subscriberId, choices);
    } else await recordConfirmedConsent(tx, recipient.id, ctx.now);
    const url = recipientLinks(ctx.keys.secret, ctx.publicUrl, recipient.id).manage;
    await enqueueNotification(
      tx,
      {
        kind: 'subscription',
        title: 'Slack welcome',
        content: slackWelcome(ctx.organisation, choices.topics, url),
        audience: { kind: 'recipients', ids: [recipient.id] },
      },
      ctx.now,
    );
    return url;
  });
  return { ok: true, channel: access.incoming_webhook?.channel ?? channelId, manageUrl };
}
