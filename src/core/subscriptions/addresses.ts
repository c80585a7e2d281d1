/**
 * Checking what a customer types as an address, with a message that says
 * what is wrong. Numbers are parsed by libphonenumber into E.164.
 */
import { ParseError, parsePhoneNumberWithError } from 'libphonenumber-js/max';
import { z } from 'zod';
import { checkUrlShape, type UrlPolicy } from '../notify/safe-url.ts';

export type Checked = { ok: true; value: string } | { ok: false; message: string };

const emailSchema = z.email();

export function checkEmail(raw: string): Checked {
  const value = raw.trim().toLowerCase();
  if (value === '') return { ok: false, message: 'Enter your email address.' };
  if (value.length > 254 || !emailSchema.safeParse(value).success)
    return { ok: false, message: `"${raw.trim().slice(0, 80)}" is not a valid email address.` };
  return { ok: true, value };
}

/** Numbers that cannot receive our SMS. */
const UNSUPPORTED = new Set(['FIXED_LINE', 'PREMIUM_RATE', 'TOLL_FREE', 'SHARED_COST', 'PAGER', 'UAN', 'VOICEMAIL']);

export function checkPhone(raw: string, defaultCountry?: string): Checked {
  const input = raw.trim();
  if (input === '') return { ok: false, message: 'Enter your mobile number.' };
  if (input.length > 32) return { ok: false, message: 'That number is too long.' };
  try {
    const number = parsePhoneNumberWithError(input, defaultCountry ? { defaultCountry: defaultCountry as 'US' } : undefined);
    if (!number.isValid())
      return { ok: false, message: `${input} is not a valid phone number. Include the country code, e.g. +44 7911 123456.` };
    const type = number.getType();
    if (type && UNSUPPORTED.has(type)) {
      return {
        ok: false,
        message: `${number.formatInternational()} looks like a ${type.toLowerCase().replaceAll('_', ' ')} number, which cannot receive text messages. Use a mobile number.`,
      };
    }
    return { ok: true, value: number.number };
  } catch (err) {
    const reason =
      err instanceof ParseError && err.message === 'INVALID_COUNTRY'
        ? 'Include the country code, e.g. +1 or +44.'
        : 'Use digits and the country code, e.g. +44 7911 123456.';
    return { ok: false, message: `${input.slice(0, 40)} is not a phone number we can read. ${reason}` };
  }
}

export function checkWebhookUrl(raw: string, policy: UrlPolicy): Checked {
  const input = raw.trim();
  if (input === '') return { ok: false, message: 'Enter the URL of your endpoint.' };
  if (input.length > 2048) return { ok: false, message: 'That URL is too long.' };
  const shape = checkUrlShape(input, policy);
  return shape.ok
    ? { ok: true, value: shape.url.href }
    : { ok: false, message: `This URL cannot receive our webhooks: it ${shape.reason}.` };
}

export function checkSlackWebhookUrl(raw: string, policy: UrlPolicy): Checked {
  const input = raw.trim();
  const shape = checkUrlShape(input, policy);
  if (
    !shape.ok ||
    (shape.url.hostname !== 'hooks.slack.com' && !policy.allowHosts.includes(shape.url.host)) ||
    !shape.url.pathname.startsWith('/services/')
  ) {
    return { ok: false, message: 'Enter a Slack incoming-webhook URL: it starts with https://hooks.slack.com/services/.' };
  }
  return { ok: true, value: shape.url.href };
}

/** Teams and Discord URLs are checked by their channels, which check them again before each send. */
export { checkDiscordWebhookUrl } from '../notify/channels/discord.ts';
export { checkTeamsWebhookUrl } from '../notify/channels/teams.ts';
