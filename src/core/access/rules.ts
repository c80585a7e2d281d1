/**
 * Staff rules on a requester's email domain, as pure functions: what a pattern may be (`example.com`,
 * exactly that domain, or `*.example.com`, any subdomain of it but not the domain itself), how it is
 * normalised (trimmed, lower-case, internationalised names as punycode), and which rule decides for a
 * domain (an exact rule over any wildcard, the longest wildcard suffix among wildcards; without a
 * rule, review). Free-mail domains are told apart so reviewers see it; they go to review like any
 * domain without a rule.
 */
import { domainToASCII } from 'node:url';

export type AccessDecision = 'approve' | 'review' | 'refuse';

export interface AccessRule {
  id: number;
  /** normalised: lower-case ASCII, `*.` first for a wildcard */
  pattern: string;
  decision: AccessDecision;
  /** approve: the gated documents (slugs) it gives; null: every document asked for */
  documents: string[] | null;
  /** approve: how many days the grant lasts; null: DEFAULT_GRANT_DAYS */
  grantDays: number | null;
}

export const DEFAULT_GRANT_DAYS = 90;
export const MAX_GRANT_DAYS = 730;

export type PatternCheck = { ok: true; pattern: string; wildcard: boolean; domain: string } | { ok: false; message: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The domain as lower-case ASCII (punycode), or a message naming what is wrong with it. */
export function normaliseDomain(raw: string): { ok: true; domain: string } | { ok: false; message: string } {
  const input = raw.trim().toLowerCase().replace(/\.$/, '');
  if (input === '') return { ok: false, message: 'Enter a domain, e.g. example.com.' };
  const shown = input.slice(0, 80);
  if (input.includes('@')) return { ok: false, message: `"${shown}" is an email address: give only the part after @, e.g. example.com.` };
  if (/[/:?#\s]/.test(input)) return { ok: false, message: `"${shown}" is not a domain: leave out the scheme, port, path and spaces.` };
  if (input.includes('*')) return { ok: false, message: `"${shown}": a * may only stand first, as in *.example.com.` };
  const ascii = domainToASCII(input);
  if (ascii === '') return { ok: false, message: `"${shown}" is not a valid domain name.` };
  if (ascii.length > 253) return { ok: false, message: `"${shown}" is too long for a domain (253 characters at most).` };
  const labels = ascii.split('.');
  if (labels.length < 2) return { ok: false, message: `"${shown}" is not a full domain: it needs a dot, e.g. example.com.` };
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined)
    return {
      ok: false,
      message: `"${shown}" is not a valid domain name: "${bad.slice(0, 63)}" must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen.`,
    };
  if (/^[0-9]+$/.test(labels.at(-1) ?? '')) return { ok: false, message: `"${shown}" is an IP address, not a domain.` };
  return { ok: true, domain: ascii };
}

/** A rule's pattern normalised, or a message naming the problem. */
export function normalisePattern(raw: string): PatternCheck {
  const input = raw.trim().toLowerCase();
  if (input === '') return { ok: false, message: 'Enter a pattern: a domain (example.com) or all its subdomains (*.example.com).' };
  if (input.length > 260) return { ok: false, message: 'The pattern is too long (253 characters at most for the domain).' };
  const wildcard = input.startsWith('*.');
  if (!wildcard && input.startsWith('*'))
    return { ok: false, message: `"${input.slice(0, 80)}": a wildcard is written *. before a domain, as in *.example.com.` };
  const domain = normaliseDomain(wildcard ? input.slice(2) : input);
  if (!domain.ok) return domain;
  return { ok: true, pattern: wildcard ? `*.${domain.domain}` : domain.domain, wildcard, domain: domain.domain };
}

/** Whether a normalised pattern covers a normalised domain. */
export function ruleMatches(pattern: string, domain: string): boolean {
  if (pattern.startsWith('*.')) return domain.endsWith(pattern.slice(1));
  return pattern === domain;
}

/**
 * The rule that decides for a domain: the exact one when there is one, else the matching wildcard with
 * the longest suffix; null when none matches.
 */
export function chooseRule<R extends Pick<AccessRule, 'pattern'>>(domain: string, rules: readonly R[]): R | null {
  let best: R | null = null;
  for (const rule of rules) {
    if (!ruleMatches(rule.pattern, domain)) continue;
    if (!rule.pattern.startsWith('*.')) return rule;
    if (!best || rule.pattern.length > best.pattern.length) best = rule;
  }
  return best;
}

/**
 * Well-known free-mail providers. A short list kept here rather than a package: the npm lists looked at
 * either rewrite themselves from the network at install time (`free-email-domains`, whose postinstall
 * fetches three remote lists and fails offline), require a package they do not declare
 * (`free-email-domains-list`), or depend on an unmaintained library (`freemail` on `tldjs`). Being on
 * it changes no decision (every domain without a rule goes to review); it tells reviewers.
 */
const FREE_MAIL = new Set([
  'gmail.com',
  'googlemail.com',
  'outlook.com',
  'hotmail.com',
  'live.com',
  'msn.com',
  'aol.com',
  'icloud.com',
  'me.com',
  'mac.com',
  'proton.me',
  'protonmail.com',
  'pm.me',
  'tutanota.com',
  'tuta.io',
  'gmx.com',
  'gmx.net',
  'gmx.de',
  'web.de',
  'mail.com',
  'zoho.com',
  'yandex.com',
  'yandex.ru',
  'mail.ru',
  'fastmail.com',
  'hey.com',
  'qq.com',
  '163.com',
  '126.com',
  'naver.com',
]);
/** yahoo.com, yahoo.co.uk, ymail.com, hotmail.fr, outlook.de, …: the providers' country domains */
const FREE_MAIL_FAMILIES = /^(?:yahoo|ymail|rocketmail|hotmail|outlook|live|gmx|aol)\.(?:[a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})$/;

export function isFreeMailDomain(domain: string): boolean {
  return FREE_MAIL.has(domain) || FREE_MAIL_FAMILIES.test(domain);
}

export interface DomainDecision<R> {
  decision: AccessDecision;
  /** the rule that decided; null: no rule, the default (review) */
  rule: R | null;
  freeMail: boolean;
}

/** What happens to a verified request from `domain` (normalised) under these rules. */
export function decideForDomain<R extends Pick<AccessRule, 'pattern' | 'decision'>>(
  domain: string,
  rules: readonly R[],
): DomainDecision<R> {
  const rule = chooseRule(domain, rules);
  return { decision: rule ? rule.decision : 'review', rule, freeMail: isFreeMailDomain(domain) };
}

/** The documents an approving rule grants of those asked for: its list ∩ requested, or all requested when it has none. */
export function grantedDocuments(rule: Pick<AccessRule, 'documents'>, requested: readonly string[]): string[] {
  return rule.documents ? requested.filter((d) => rule.documents?.includes(d)) : [...requested];
}

/** The grant's end: `days` (default 90) after now. */
export function grantExpiry(now: Date, days: number | null): Date {
  return new Date(now.getTime() + (days ?? DEFAULT_GRANT_DAYS) * 86_400_000);
}
