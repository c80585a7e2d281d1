/**
 * Which URLs a Teams or Discord subscription may hold (src/core/notify/channels/teams.ts, discord.ts):
 * the provider's host over https and the provider's path. CANDOR_WEBHOOK_ALLOW_HOSTS stands in for the
 * host and scheme only (tests, private networks); the path is checked whatever the host. And which
 * content each channel sends (chat-from-slack.ts `contentFor`).
 */
import { describe, expect, it } from 'vitest';
import { contentFor } from '../../src/core/notify/channels/chat-from-slack.ts';
import { checkDiscordWebhookUrl, isDiscordWebhookUrl } from '../../src/core/notify/channels/discord.ts';
import { checkTeamsWebhookUrl, isTeamsWorkflowUrl } from '../../src/core/notify/channels/teams.ts';
import type { NotificationContent } from '../../src/core/notify/types.ts';

const allowed = ['127.0.0.1:9000'];
const TOKEN = 'abcdefghijklmnopqrstuvwxyz_0123';

describe('Teams workflow URLs', () => {
  it.each([
    ['https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x', true],
    [
      'https://default1.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke',
      true,
    ],
    ['http://prod-01.westus.logic.azure.com/workflows/abc', false],
    ['https://logic.azure.com.evil.example/workflows/abc', false],
    ['https://prod-01.westus.logic.azure.com/not-a-workflow', false],
    ['https://user:pw@prod-01.westus.logic.azure.com/workflows/abc', false],
    // an allowed host stands in for Microsoft's, not for the path
    ['http://127.0.0.1:9000/workflows/abc/triggers/manual/paths/invoke', true],
    ['http://127.0.0.1:9000/anything', false],
  ])('%s → %s', (url, ok) => {
    expect(isTeamsWorkflowUrl(new URL(url), allowed)).toBe(ok);
  });
});

describe('Discord webhook URLs', () => {
  it.each([
    [`https://discord.com/api/webhooks/123456789012345678/${TOKEN}`, true],
    [`https://discord.com/api/v10/webhooks/123/${TOKEN}`, true],
    [`https://discordapp.com/api/webhooks/123/${TOKEN}`, true],
    [`http://discord.com/api/webhooks/123/${TOKEN}`, false],
    [`https://discord.com.evil.example/api/webhooks/123/${TOKEN}`, false],
    ['https://discord.com/api/oauth2/authorize', false],
    [`https://discord.com/api/webhooks/not-a-number/${TOKEN}`, false],
    [`http://127.0.0.1:9000/api/webhooks/123/${TOKEN}`, true],
    ['http://127.0.0.1:9000/anything', false],
  ])('%s → %s', (url, ok) => {
    expect(isDiscordWebhookUrl(new URL(url), allowed)).toBe(ok);
  });
});

describe('checking what a subscriber pasted', () => {
  const policy = { allowHosts: [] };
  it('keeps the URL as parsed, trimmed', () => {
    expect(checkDiscordWebhookUrl(`  https://discord.com/api/webhooks/1/${TOKEN} `, policy)).toEqual({
      ok: true,
      value: `https://discord.com/api/webhooks/1/${TOKEN}`,
    });
  });
  it('says what to paste, for a wrong, private or overlong URL', () => {
    expect(checkTeamsWebhookUrl('https://example.com/hook', policy)).toMatchObject({
      ok: false,
      message: expect.stringContaining('Workflows'),
    });
    expect(checkDiscordWebhookUrl(`http://127.0.0.1:9000/api/webhooks/1/${TOKEN}`, policy).ok).toBe(false);
    expect(checkDiscordWebhookUrl(`https://discord.com/api/webhooks/1/${TOKEN}?x=${'a'.repeat(2100)}`, policy).ok).toBe(false);
  });
});

describe('what each channel sends', () => {
  const slack = { text: 'API degraded', blocks: [] };
  const content: NotificationContent = { slack, email: { subject: 's', html: '<p>h</p>', text: 't' } };
  it('Teams and Discord send the Slack content; the others their own; none when it is missing', () => {
    expect(contentFor(content, 'teams')).toBe(slack);
    expect(contentFor(content, 'discord')).toBe(slack);
    expect(contentFor(content, 'email')).toBe(content.email);
    expect(contentFor(content, 'sms')).toBeUndefined();
    expect(contentFor({ email: content.email }, 'teams')).toBeUndefined();
  });
});
