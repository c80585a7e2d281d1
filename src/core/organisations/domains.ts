/**
 * Email domains of customer organisations: what staff may enter, and the
 * blind index that lets SQL match a confirmed address's domain without
 * opening the address. A domain matches exactly: `acmebank.example` does
 * not admit `mail.acmebank.example` (staff add each subdomain they trust).
 */
import { domainToASCII } from 'node:url';
import { blindIndex } from '../crypto/blind-index.ts';

export type CheckedDomain = { ok: true; domain: string } | { ok: false; message: string };

/**
 * Mailbox providers anyone can sign up with: as an organisation's domain they
 * would admit strangers. A guard against a slip, not a complete list.
 */
const PUBLIC_PROVIDERS = new Set([
  'gmail.com',
  'googlemail.com',
  'outlook.com',
  'hotmail.com',
  'live.com',
  'msn.com',
  'yahoo.com',
  'ymail.com',
  'rocketmail.com',
  'icloud.com',
  'me.com',
  'mac.com',
  'aol.com',
  'proton.me',
  'protonmail.com',
  'protonmail.ch',
  'pm.me',
  'tutanota.com',
  'tuta.io',
  'gmx.com',
  'gmx.net',
  'gmx.de',
  'web.de',
  't-online.de',
  'mail.com',
  'email.com',
  'zoho.com',
  'zohomail.com',
  'fastmail.com',
  'hey.com',
  'yandex.com',
  'yandex.ru',
  'mail.ru',
  'qq.com',
  '163.com',
  '126.com',
  'orange.fr',
  'free.fr',
  'laposte.net',
  'libero.it',
  'btinternet.com',
  'comcast.net',
  'att.net',
  'verizon.net',
]);
/** The same brands under a country's suffix: hotmail.co.uk, yahoo.fr, outlook.de, gmx.at … */
const PUBLIC_BRANDS = new Set(['gmail', 'googlemail', 'hotmail', 'outlook', 'live', 'yahoo', 'ymail', 'gmx', 'yandex', 'protonmail']);

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower-case ASCII (punycode) with no trailing dot, or null when it is not a host name. */
export function normaliseDomain(raw: string): string | null {
  const trimmed = raw.trim().toLowerCase().replace(/\.$/, '');
  if (trimmed === '' || trimmed.length > 253) return null;
  const ascii = domainToASCII(trimmed);
  if (ascii === '' || ascii.length > 253) return null;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return null;
  // a top-level label is never all digits: that is an IP address
  if (/^\d+$/.test(labels.at(-1) ?? '')) return null;
  return ascii;
}

/** What staff typed as an organisation's email domain, checked, with a message naming what is wrong. */
export function checkDomain(raw: string): CheckedDomain {
  const input = raw.trim();
  const shown = input.slice(0, 80);
  if (input === '') return { ok: false, message: 'Enter a domain, e.g. acmebank.example.' };
  if (input.includes('@') && !input.startsWith('@'))
    return { ok: false, message: `"${shown}" is an address: give the domain only, e.g. ${input.split('@').at(-1)?.slice(0, 80)}.` };
  const domain = normaliseDomain(input.replace(/^@/, ''));
  if (!domain)
    return {
      ok: false,
      message: `"${shown}" is not a domain. Give an exact domain such as acmebank.example (no wildcards; subdomains do not match, add each one).`,
    };
  const labels = domain.split('.');
  const brandUnderCountry = labels.length <= 3 && PUBLIC_BRANDS.has(labels[0] ?? '') && labels.slice(1).every((l) => l.length <= 3);
  if (PUBLIC_PROVIDERS.has(domain) || brandUnderCountry)
    return {
      ok: false,
      message: `${domain} is a public email provider: anyone can have an address there. Assign that customer's addresses one by one instead.`,
    };
  return { ok: true, domain };
}

const PURPOSE = 'recipient:email:domain';

/** The blind index of a domain, as organisation_domains and recipients.domain_hash store it. */
export function domainHash(secret: string, domain: string): string {
  return blindIndex(secret, PURPOSE, domain);
}

/** The blind index of an email address's domain (after the last @), or null when it has none. */
export function emailDomainHash(secret: string, address: string): string | null {
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? null : normaliseDomain(address.slice(at + 1));
  return domain ? domainHash(secret, domain) : null;
}
