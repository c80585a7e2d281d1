/**
 * "Add to Slack" (OAuth v2): the state parameter is random, signed and
 * single-use, and carries nothing but a reference to the choices stored
 * here; the code is exchanged with oauth.v2.access through the Slack SDK.
 * The app's incoming webhook picks the channel; the bot token lets Candor
 * thread and edit messages there.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { LogLevel, WebClient } from '@slack/web-api';
import { randomToken } from '../crypto/random.ts';
import { seal } from '../crypto/seal.ts';
import { addRecipient, enqueueNotification, findRecipient } from '../notify/legacy.ts';
import { recipientLinks } from '../notify/links.ts';
import type { Choices, Result, SubscriptionContext } from './context.ts';
import { slackWelcome } from './messages.ts';
import { createSubscriber, setTopics } from './subscribers.ts';
import { isTopic } from './topics.ts';

export const SLACK_SCOPES = 'incoming-webhook,chat:write';
const STATE_TTL_MS = 10 * 60_000;

export interface SlackApp {
  clientId: string;
  clientSecret: string;
  /** SLACK_API_URL, for oauth.v2.access; default Slack itself */
  apiUrl?: string | undefined;
}

const sign = (secret: string, id: string) => createHmac('sha256', secret).update(`slack-state:${id}`).digest('base64url').slice(0, 32);
export const slackRedirectUri = (publicUrl: URL) => new URL('subscribe/slack/callback', publicUrl).href;

export function startSlackOAuth(ctx: SubscriptionContext, choices: Choices, app: SlackApp): string {
  const id = randomToken();
  ctx.db.$client
    .prepare('INSERT INTO slack_oauth_states (id, choices, created_at, expires_at) VALUES (?, ?, ?, ?)')
    .run(id, JSON.stringify(choices), ctx.now.getTime(), ctx.now.getTime() + STATE_TTL_MS);
  const url = new URL('https://slack.com/oauth/v2/authorize');
  url.searchParams.set('client_id', app.clientId);
  url.searchParams.set('scope', SLACK_SCOPES);
  url.searchParams.set('state', `${id}.${sign(ctx.keys.secret, id)}`);
  url.searchParams.set('redirect_uri', slackRedirectUri(ctx.publicUrl));
  return url.href;
}

function takeState(ctx: SubscriptionContext, state: string): Choices | null {
  const [id, mac, extra] = state.split('.');
  if (!id || !mac || extra !== undefined || id.length > 40) return null;
  const expected = Buffer.from(sign(ctx.keys.secret, id));
  if (Buffer.from(mac).length !== expected.length || !timingSafeEqual(Buffer.from(mac), expected)) return null;
  const row = ctx.db.$client.prepare('SELECT choices, expires_at, used_at FROM slack_oauth_states WHERE id = ?').get(id) as
    | { choices: string; expires_at: number; used_at: number | null }
    | undefined;
  if (!row || row.used_at !== null || row.expires_at <= ctx.now.getTime()) return null;
  if (
    ctx.db.$client.prepare('UPDATE slack_oauth_states SET used_at = ? WHERE id = ? AND used_at IS NULL').run(ctx.now.getTime(), id)
      .changes !== 1
  )
    return null;
  const parsed = JSON.parse(row.choices) as Choices;
  return { topics: parsed.topics.filter(isTopic), components: parsed.components, organisation: parsed.organisation };
}

export async function completeSlackOAuth(
  ctx: SubscriptionContext,
  app: SlackApp,
  params: { code: string | null; state: string | null; error: string | null },
): Promise<Result<{ channel: string; manageUrl: string }>> {
  const choices = params.state ? takeState(ctx, params.state) : null;
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
  const existing = findRecipient(ctx.db, ctx.keys, 'slack', channelId);
  let recipientId: number;
  if (existing) {
    const [key] = ctx.keys.keys;
    if (!key) throw new Error('no encryption key configured');
    ctx.db.$client
      .prepare(`UPDATE recipients SET secret = ?, status = 'active', suppressed_at = NULL, suppressed_reason = NULL WHERE id = ?`)
      .run(seal(key, token, 'recipient:slack:secret'), existing.id);
    if (existing.subscriberId) setTopics(ctx.db, existing.subscriberId, choices);
    recipientId = existing.id;
  } else {
    recipientId = addRecipient(
      ctx.db,
      ctx.keys,
      { channel: 'slack', address: channelId, secret: token, subscriberId: createSubscriber(ctx.db, choices, ctx.now), status: 'active' },
      ctx.now,
    ).id;
  }
  const manageUrl = recipientLinks(ctx.keys.secret, ctx.publicUrl, recipientId).manage;
  enqueueNotification(
    ctx.db,
    {
      kind: 'subscription',
      title: 'Slack welcome',
      content: slackWelcome(ctx.organisation, choices.topics, manageUrl),
      audience: { kind: 'recipients', ids: [recipientId] },
    },
    ctx.now,
  );
  return { ok: true, channel: access.incoming_webhook?.channel ?? channelId, manageUrl };
}
