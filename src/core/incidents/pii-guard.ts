/**
 * The personal-data guard: incident updates are written in a hurry, often by
 * pasting from tickets, logs and chat, and are then broadcast to every
 * subscriber and kept public for years. Before an update is published it is
 * scanned for the things that must never leave that way (personal data and
 * credentials) so that staff can see each one, redact it, or knowingly
 * confirm it.
 *
 * The guard leans towards silence on ordinary incident prose: a guard that
 * cries wolf on every timestamp, version or commit SHA trains staff to click
 * through it. What it deliberately does NOT flag:
 * - hex-only strings (40-hex commit SHAs, SHA-256 digests, UUIDs, trace and
 *   request ids): they are everyday incident vocabulary. Hex credentials are
 *   still caught where something says what they are (`token=…`, Twilio's
 *   `SK…`, a 32-hex value right after the word "token");
 * - bare runs of digits as phone numbers unless a word such as "call" or
 *   "phone" precedes them (they are far more often order numbers or ids);
 *   grouped (`415-555-0132`) and `+` numbers need no such hint;
 * - digits glued to letters, dots, slashes or colons (versions, IPs, times,
 *   dates, incident ids, URL paths), and numbers that fail Luhn or match no
 *   card issuer range; a number in a URL's query string is still flagged;
 * - random-looking strings inside URLs (asset paths, signed links) unless they
 *   have a known token format, and random-looking strings the text labels as
 *   a hash or an id (`sha256:`, `request id:`);
 * - placeholders in assignments (`password=<redacted>`, `token=${TOKEN}`);
 * - URL user names (`https://deploy@host`); a password in a URL is a secret.
 * Role mailboxes such as `security@company.example` are still email addresses:
 * telling them from people's addresses is the caller's policy, not a pattern.
 */
import { findPhoneNumbersInText, type NumberFound } from 'libphonenumber-js/max';

export const findingKinds = ['email', 'phone', 'card', 'national_id', 'secret'] as const;
export type FindingKind = (typeof findingKinds)[number];

/** One flagged item. `start`/`end` are UTF-16 offsets into the scanned text, so `text.slice(start, end)` is the raw match. */
export interface Finding {
  kind: FindingKind;
  start: number;
  end: number;
  /** what it looks like, for people: "email address", "GitHub token" */
  label: string;
  /** the match partly masked, safe to show in the console; never the whole value */
  preview: string;
}

export const redactionText: Record<FindingKind, string> = {
  email: '[email redacted]',
  phone: '[phone number redacted]',
  card: '[card number redacted]',
  national_id: '[national ID redacted]',
  secret: '[secret redacted]',
};

interface Span {
  start: number;
  end: number;
}

/** A finding before overlaps are settled; higher `priority` is the more specific detector. */
interface Candidate extends Finding {
  priority: number;
}

const Priority = {
  privateKey: 100,
  knownSecret: 90,
  validatedNumber: 80,
  email: 70,
  phone: 60,
  labelledSecret: 50,
  highEntropy: 10,
} as const;

const MASK = '•';

// Any of these next to a run of digits makes it part of a bigger token (id, version, IP, time, path).
const GLUED_BEFORE = /[A-Za-z0-9]$|[A-Za-z0-9][.\-/:#]$|[#/]$|\+$/;
const GLUED_AFTER = /^[A-Za-z0-9]|^[.\-/:][A-Za-z0-9]/;

function isGlued(text: string, span: Span): boolean {
  return GLUED_BEFORE.test(text.slice(Math.max(0, span.start - 2), span.start)) || GLUED_AFTER.test(text.slice(span.end, span.end + 2));
}

function overlaps(a: Span, b: Span): boolean {
  return a.start < b.end && b.start < a.end;
}

function insideAny(span: Span, areas: readonly Span[]): boolean {
  return areas.some((area) => overlaps(span, area));
}

function maskDigits(raw: string, keepLast: number, keepFirst = 0): string {
  const total = raw.replace(/\D/g, '').length;
  let seen = 0;
  return raw.replace(/\d/g, (digit) => {
    seen += 1;
    return seen <= keepFirst || seen > total - keepLast ? digit : MASK;
  });
}

// ---------------------------------------------------------------------------
// URLs: context for the other detectors

// Bounded repetitions before a literal keep every pattern here linear on hostile input.
const URL_PATTERN = /\b[a-z][a-z0-9+.-]{0,30}:\/\/[^\s<>"'`()[\]{}]+/gi;

/** URLs with trailing sentence punctuation left out, the way readers (and markdown renderers) see them. */
function findUrls(text: string): Span[] {
  return [...text.matchAll(URL_PATTERN)].map((match) => {
    const trimmed = match[0].replace(/[.,;:!?*_~]+$/, '');
    return { start: match.index, end: match.index + trimmed.length };
  });
}

/** The user-info and host of a URL: an `@` there is a login, not an email address. */
function urlAuthorities(text: string, urls: readonly Span[]): Span[] {
  return urls.map((url) => {
    const afterScheme = text.indexOf('://', url.start) + 3;
    const slash = text.slice(afterScheme, url.end).search(/[/?#]/);
    return { start: afterScheme, end: slash === -1 ? url.end : afterScheme + slash };
  });
}

// ---------------------------------------------------------------------------
// Email addresses

// `_` may precede the address: markdown italics (`_ada@example.com_`).
const EMAIL_PATTERN =
  /(?<![A-Za-z0-9.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g;

// `logo@2x.png` is a retina asset name, not an address.
const ASSET_SUFFIX = /\.(?:png|jpe?g|gif|svg|webp|avif|ico)$/i;
// `git@github.com:org/repo.git` is an SSH remote: a service login, not a person.
const SSH_REMOTE_TAIL = /^:[\w~/.-]/;

function previewEmail(address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  return `${local.length > 2 ? local.slice(0, 2) : ''}…${address.slice(at)}`;
}

function detectEmails(text: string, authorities: readonly Span[]): Candidate[] {
  return [...text.matchAll(EMAIL_PATTERN)]
    .filter((match) => !ASSET_SUFFIX.test(match[0]))
    .filter((match) => !SSH_REMOTE_TAIL.test(text.slice(match.index + match[0].length, match.index + match[0].length + 2)))
    .filter((match) => {
      const at = match.index + match[0].lastIndexOf('@');
      return !insideAny({ start: at, end: at + 1 }, authorities);
    })
    .map((match) => ({
      kind: 'email',
      start: match.index,
      end: match.index + match[0].length,
      label: 'email address',
      preview: previewEmail(match[0]),
      priority: Priority.email,
    }));
}

// ---------------------------------------------------------------------------
// Phone numbers

// The typings omit `leniency`, but the matcher reads it; VALID means the number
// must be a real, assigned range for its region, not merely the right length.
const PHONE_FINDER_OPTIONS = { defaultCountry: 'US', leniency: 'VALID' } as const;

const PHONE_HINT =
  /\b(?:call|phone|tel|telephone|mobile|cell|sms|text|whatsapp|signal|fax|contact|reach|dial|ring|hotline|number)\b[^\n]{0,20}$/i;
const DATE_LIKE = /^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}$/;
// four or more dotted groups read as an IP address or a version, whatever the digits
const DOTTED_QUAD = /^\d+(?:\.\d+){3,}$/;

interface PhoneSpan extends Span {
  /** the number without its extension */
  national: string;
  /** digits of the country calling code when the number was written with `+`, shown in the preview */
  visibleLeading: number;
}

// How people write North American numbers without `+`: 415-555-0132, (415) 555-0132, 1-800-555-0199, or bare.
const NATIONAL_GROUPINGS = new Set(['3,3,4', '1,3,3,4', '10', '11']);
const EXTENSION_MARKER = /[a-z#]/i;

/** Offset in `raw` just past the digit that completes `sequence`, matched against the digits of `raw`. */
function endOfDigits(raw: string, sequence: string): number | undefined {
  const digits = raw.replace(/\D/g, '');
  const at = digits.indexOf(sequence);
  if (at === -1) return undefined;
  let seen = 0;
  for (let index = 0; index < raw.length; index += 1) {
    if (/\d/.test(raw.charAt(index))) seen += 1;
    if (seen === at + sequence.length) return index + 1;
  }
  return undefined;
}

/**
 * The matcher reads whatever digits follow as an extension ("…0123, 22/11"
 * gives extension 22); keep an extension only when it is marked as one
 * ("x12", "ext. 12"), and end the span at the number otherwise.
 */
function phoneSpan(text: string, found: NumberFound): PhoneSpan {
  const raw = text.slice(found.startsAt, found.endsAt);
  const { nationalNumber, ext, countryCallingCode } = found.number;
  const numberEnd = endOfDigits(raw, nationalNumber) ?? raw.length;
  const marked = ext !== undefined && EXTENSION_MARKER.test(raw.slice(numberEnd));
  const end = (marked ? endOfDigits(raw, `${nationalNumber}${ext}`) : undefined) ?? numberEnd;
  return {
    start: found.startsAt,
    end: found.startsAt + end,
    national: raw.slice(0, numberEnd),
    visibleLeading: raw.startsWith('+') ? countryCallingCode.length : 0,
  };
}

function isPlausiblePhone(text: string, span: PhoneSpan): boolean {
  const raw = span.national;
  if (raw.includes(':') || DATE_LIKE.test(raw) || DOTTED_QUAD.test(raw)) return false;
  if (raw.startsWith('+')) return !/[A-Za-z0-9]$/.test(text.slice(Math.max(0, span.start - 1), span.start));
  if (isGlued(text, span)) return false;
  const groups = (raw.match(/\d+/g) ?? []).map((group) => group.length).join(',');
  if (!NATIONAL_GROUPINGS.has(groups)) return false;
  const grouped = /[\s().-]/.test(raw);
  return grouped || PHONE_HINT.test(text.slice(Math.max(0, span.start - 40), span.start));
}

function detectPhones(text: string): Candidate[] {
  return findPhoneNumbersInText(text, PHONE_FINDER_OPTIONS)
    .map((found) => phoneSpan(text, found))
    .filter((span) => isPlausiblePhone(text, span))
    .map((span) => ({
      kind: 'phone',
      start: span.start,
      end: span.end,
      label: 'phone number',
      preview: maskDigits(text.slice(span.start, span.end), 2, span.visibleLeading),
      priority: Priority.phone,
    }));
}

// ---------------------------------------------------------------------------
// Payment card numbers

interface IssuerRange {
  from: number;
  to: number;
  /** how many leading digits `from`/`to` describe */
  digits: number;
  lengths: readonly number[];
}

const SIXTEEN_TO_NINETEEN = [16, 17, 18, 19];
const FOURTEEN_TO_NINETEEN = [14, 15, ...SIXTEEN_TO_NINETEEN];
const THIRTEEN_TO_NINETEEN = [13, ...FOURTEEN_TO_NINETEEN];

// Requiring an issuer range keeps Luhn's one-in-ten chance from flagging arbitrary long numbers.
const ISSUER_RANGES: readonly IssuerRange[] = [
  { from: 4, to: 4, digits: 1, lengths: [13, 16, 19] }, // Visa
  { from: 51, to: 55, digits: 2, lengths: [16] }, // Mastercard
  { from: 2221, to: 2720, digits: 4, lengths: [16] }, // Mastercard 2-series
  { from: 34, to: 34, digits: 2, lengths: [15] }, // American Express
  { from: 37, to: 37, digits: 2, lengths: [15] }, // American Express
  { from: 6011, to: 6011, digits: 4, lengths: SIXTEEN_TO_NINETEEN }, // Discover
  { from: 644, to: 649, digits: 3, lengths: SIXTEEN_TO_NINETEEN }, // Discover
  { from: 65, to: 65, digits: 2, lengths: SIXTEEN_TO_NINETEEN }, // Discover
  { from: 300, to: 305, digits: 3, lengths: FOURTEEN_TO_NINETEEN }, // Diners Club
  { from: 36, to: 36, digits: 2, lengths: FOURTEEN_TO_NINETEEN }, // Diners Club
  { from: 38, to: 39, digits: 2, lengths: SIXTEEN_TO_NINETEEN }, // Diners Club
  { from: 3528, to: 3589, digits: 4, lengths: SIXTEEN_TO_NINETEEN }, // JCB
  { from: 62, to: 62, digits: 2, lengths: SIXTEEN_TO_NINETEEN }, // UnionPay, Discover co-branded
  { from: 2200, to: 2204, digits: 4, lengths: SIXTEEN_TO_NINETEEN }, // Mir
  { from: 5018, to: 5018, digits: 4, lengths: THIRTEEN_TO_NINETEEN }, // Maestro
  { from: 5020, to: 5020, digits: 4, lengths: THIRTEEN_TO_NINETEEN }, // Maestro
  { from: 5038, to: 5038, digits: 4, lengths: THIRTEEN_TO_NINETEEN }, // Maestro
  { from: 5893, to: 5893, digits: 4, lengths: THIRTEEN_TO_NINETEEN }, // Maestro
  { from: 6304, to: 6304, digits: 4, lengths: THIRTEEN_TO_NINETEEN }, // Maestro
  { from: 6759, to: 6759, digits: 4, lengths: THIRTEEN_TO_NINETEEN }, // Maestro UK
  { from: 6761, to: 6763, digits: 4, lengths: THIRTEEN_TO_NINETEEN }, // Maestro
];

export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let fromRight = 0; fromRight < digits.length; fromRight += 1) {
    let digit = digits.charCodeAt(digits.length - 1 - fromRight) - 48;
    if (fromRight % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
    sum += digit;
  }
  return sum % 10 === 0;
}

function hasIssuerRange(digits: string): boolean {
  return ISSUER_RANGES.some((range) => {
    const prefix = Number(digits.slice(0, range.digits));
    return prefix >= range.from && prefix <= range.to && range.lengths.includes(digits.length);
  });
}

function isCardNumber(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && hasIssuerRange(digits) && passesLuhn(digits);
}

// Groups of digits joined by single spaces or dashes; a card is some consecutive stretch of them.
const DIGIT_RUN = /\d+(?:[ -]\d+)*/g;

/**
 * Cards are looked for group by group rather than with one greedy pattern so
 * that "4242 4242 4242 4242 12/28" still finds the card before its expiry
 * date. Groups shorter than three digits only count alone, which keeps dates
 * ("2026-11-22") and lists of small numbers from being strung together.
 */
function cardsInRun(text: string, run: Span): Span[] {
  const groups = [...text.slice(run.start, run.end).matchAll(/\d+/g)].map((group) => ({
    start: run.start + group.index,
    end: run.start + group.index + group[0].length,
    digits: group[0],
  }));
  const cards: Span[] = [];
  let first = 0;
  while (first < groups.length) {
    const last = longestCardFrom(groups, first);
    const start = groups[first]?.start;
    const end = last === undefined ? undefined : groups[last]?.end;
    if (last === undefined || start === undefined || end === undefined) {
      first += 1;
      continue;
    }
    cards.push({ start, end });
    first = last + 1;
  }
  return cards;
}

function longestCardFrom(groups: readonly { digits: string }[], first: number): number | undefined {
  let digits = '';
  let found: number | undefined;
  for (let index = first; index < groups.length && digits.length < 19; index += 1) {
    const group = groups[index]?.digits ?? '';
    if (index > first && (group.length < 3 || digits.length < 3)) break;
    digits += group;
    if (isCardNumber(digits)) found = index;
  }
  return found;
}

function detectCards(text: string): Candidate[] {
  return [...text.matchAll(DIGIT_RUN)]
    .map((match) => ({ start: match.index, end: match.index + match[0].length }))
    .flatMap((run) => cardsInRun(text, run))
    .filter((card) => !isGlued(text, card))
    .map((card) => ({
      kind: 'card',
      ...card,
      label: 'payment card number',
      preview: maskDigits(text.slice(card.start, card.end), 4),
      priority: Priority.validatedNumber,
    }));
}

// ---------------------------------------------------------------------------
// National identifiers

// SSA never issues area 000, 666 or 900–999, group 00 or serial 0000.
const SSN_PATTERN = /(?<![A-Za-z0-9])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![A-Za-z0-9])/g;
// Voided by the SSA after being printed in advertising: they identify nobody.
const VOIDED_SSNS = new Set(['078051120', '219099999']);

// HMRC: first letter not D F I Q U V; second not D F I O Q U V; BG GB KN NK NT TN ZZ never allocated.
const NINO_PATTERN =
  /(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]( ?)\d{2}\1\d{2}\1\d{2}\1[A-D](?![A-Za-z0-9])/g;

function detectNationalIds(text: string): Candidate[] {
  const ssns = [...text.matchAll(SSN_PATTERN)]
    .filter((match) => !VOIDED_SSNS.has(match[0].replace(/\D/g, '')))
    .map((match) => nationalId(match, 'US Social Security number', maskDigits(match[0], 2)));
  const ninos = [...text.matchAll(NINO_PATTERN)].map((match) =>
    nationalId(match, 'UK National Insurance number', match[0].replace(/\d/g, MASK)),
  );
  return [...ssns, ...ninos].filter((candidate) => !isGlued(text, candidate));
}

function nationalId(match: RegExpExecArray, label: string, preview: string): Candidate {
  return {
    kind: 'national_id',
    start: match.index,
    end: match.index + match[0].length,
    label,
    preview,
    priority: Priority.validatedNumber,
  };
}

// ---------------------------------------------------------------------------
// Secrets

interface SecretRule {
  label: string;
  /** the secret is capture group 1 when there is one, else the whole match; `d` flag for group offsets */
  pattern: RegExp;
  priority: number;
  /** the non-secret part of the value that may be shown in the preview */
  visiblePrefix?: RegExp;
  /** whether the preview may end with the value's last two characters */
  hideTail?: boolean;
  accept?: (value: string, match: string) => boolean;
}

const TOKEN_END = '(?![A-Za-z0-9_-])';

// Values people write instead of a real secret: nothing to protect there.
// A value that starts like one of redact()'s own placeholders is one: rescanning redacted text must find nothing.
const PLACEHOLDER =
  /^(?:[*xX•.#_-]+|<[^>]*>|\[[^\]]*\]|\[(?:email|phone|card|national|secret)\b.*|\$\{?[A-Za-z0-9_]+\}?|\{\{[^}]*\}\}|%[A-Za-z0-9_]+%|redacted|removed|hidden|changeme|true|false|null|none|undefined|nil|empty)$/i;

function isRealValue(value: string): boolean {
  return value.length >= 3 && !PLACEHOLDER.test(value);
}

// "Token = stale" is prose; a spaced `=` needs a value that is more than a plain word.
function isAssignedSecret(value: string, match: string): boolean {
  return isRealValue(value) && !(/\s=|=\s/.test(match) && /^[A-Za-z]+$/.test(value));
}

function hasLetterAndDigit(value: string): boolean {
  return /[A-Za-z]/.test(value) && /\d/.test(value);
}

const SECRET_RULES: readonly SecretRule[] = [
  {
    label: 'private key',
    pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)/g,
    priority: Priority.privateKey,
    visiblePrefix: /^-----BEGIN [A-Z0-9 ]*-----/,
    hideTail: true,
  },
  {
    label: 'AWS access key ID',
    pattern: new RegExp(`\\b(?:AKIA|ASIA)[A-Z0-9]{16}${TOKEN_END}`, 'g'),
    priority: Priority.knownSecret,
    visiblePrefix: /^(?:AKIA|ASIA)/,
  },
  {
    label: 'GitHub token',
    pattern: new RegExp(`\\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})${TOKEN_END}`, 'g'),
    priority: Priority.knownSecret,
    visiblePrefix: /^(?:gh[pousr]_|github_pat_)/,
  },
  {
    label: 'Slack token',
    pattern: /\bxox[baprs]-[A-Za-z0-9-]{10,}/g,
    priority: Priority.knownSecret,
    visiblePrefix: /^xox[baprs]-/,
  },
  {
    label: 'Slack webhook URL',
    pattern: /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9_/-]+/g,
    priority: Priority.knownSecret,
    visiblePrefix: /^https:\/\/hooks\.slack\.com\/services\//,
  },
  {
    label: 'Stripe key',
    pattern: new RegExp(`\\b(?:(?:sk|rk)_(?:live|test)|pk_live|whsec)_[A-Za-z0-9]{10,}${TOKEN_END}`, 'g'),
    priority: Priority.knownSecret,
    visiblePrefix: /^(?:(?:sk|rk)_(?:live|test)|pk_live|whsec)_/,
  },
  {
    label: 'Resend API key',
    pattern: new RegExp(`\\bre_[A-Za-z0-9_]{20,}${TOKEN_END}`, 'g'),
    priority: Priority.knownSecret,
    visiblePrefix: /^re_/,
    // snake_case words (`re_enable_the_old_pool`) share the prefix; keys are mixed-case with digits
    accept: (value) => /[A-Z]/.test(value) && /\d/.test(value),
  },
  {
    label: 'Twilio API key',
    pattern: new RegExp(`\\bSK[0-9a-fA-F]{32}${TOKEN_END}`, 'g'),
    priority: Priority.knownSecret,
    visiblePrefix: /^SK/,
  },
  {
    label: 'auth token',
    pattern: /\btoken(?:\s+is)?[\s:="'`]{1,4}([0-9a-f]{32})(?![A-Za-z0-9])/dgi,
    priority: Priority.labelledSecret,
  },
  {
    label: 'OpenAI API key',
    pattern: new RegExp(`\\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}${TOKEN_END}`, 'g'),
    priority: Priority.knownSecret,
    visiblePrefix: /^sk-(?:proj-|svcacct-|admin-)?/,
    accept: hasLetterAndDigit,
  },
  {
    label: 'Google API key',
    pattern: new RegExp(`\\bAIza[0-9A-Za-z_-]{35}${TOKEN_END}`, 'g'),
    priority: Priority.knownSecret,
    visiblePrefix: /^AIza/,
  },
  {
    label: 'JSON web token',
    pattern: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g,
    priority: Priority.knownSecret,
    visiblePrefix: /^eyJ/,
  },
  {
    label: 'authorization header',
    pattern: /\b(?:Bearer|Basic)\s+([A-Za-z0-9._~+/-]{16,}=*)/dg,
    priority: Priority.labelledSecret,
    accept: hasLetterAndDigit,
  },
  {
    // `=` always assigns; `:` only when quoted, as in JSON or YAML, because prose says "the token: it expired".
    // Key names are specific: `cache_key=homepage-v2` is no secret.
    label: 'credential in an assignment',
    pattern:
      /(?<![A-Za-z0-9])[A-Za-z0-9_.-]{0,40}?(?:password|passwd|pwd|passphrase|secret|token|(?:api|access|private|secret|signing|encryption|master|client|app|service|license|auth)[_.-]?key|credentials?)(?:\s*=\s*|["']?\s*:\s*(?=["']))(["']?)((?:[^\s"'`,;&)]|&(?![\w.-]+=))+)\1/dgi,
    priority: Priority.labelledSecret,
    accept: isAssignedSecret,
  },
  {
    label: 'password in a URL',
    pattern: /\b[a-z][a-z0-9+.-]{0,30}:\/\/[^\s/:@]{1,256}:([^\s/@]{1,256})@/dgi,
    priority: Priority.labelledSecret,
    accept: isRealValue,
  },
];

/** A prefix that says what the secret is, and its last two characters; short values show nothing. */
function previewSecret(value: string, rule: Pick<SecretRule, 'visiblePrefix' | 'hideTail'>): string {
  const prefix = rule.visiblePrefix?.exec(value)?.[0] ?? '';
  const tail = rule.hideTail ? '' : value.slice(-2);
  if (prefix && value.length >= prefix.length + 12) return `${prefix}…${tail}`;
  if (value.length >= 16) return `…${tail}`;
  return MASK.repeat(6);
}

function secretSpan(match: RegExpExecArray): Span & { value: string; match: string } {
  const group = match.indices?.[match.length - 1];
  const value = match[match.length - 1];
  if (match.length > 1 && group && value !== undefined) return { start: group[0], end: group[1], value, match: match[0] };
  return { start: match.index, end: match.index + match[0].length, value: match[0], match: match[0] };
}

function detectSecrets(text: string): Candidate[] {
  return SECRET_RULES.flatMap((rule) =>
    [...text.matchAll(rule.pattern)]
      .map(secretSpan)
      .filter((secret) => rule.accept?.(secret.value, secret.match) ?? true)
      .map((secret) => ({
        kind: 'secret' as const,
        start: secret.start,
        end: secret.end,
        label: rule.label,
        preview: previewSecret(secret.value, rule),
        priority: rule.priority,
      })),
  );
}

// ---------------------------------------------------------------------------
// Unlabelled high-entropy strings

const ENTROPY_CANDIDATE = /(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/=_-])/g;
// Hashes and identifiers that the text itself says are hashes or identifiers.
const HASH_LABEL =
  /(?:sha-?(?:1|224|256|384|512)|md5|digest|checksum|hash|integrity|etag|fingerprint|(?:request|trace|span|correlation|event|message|ray|amz)[-_ ]?id(?:-\d)?)\s*[:=-]?\s*["'`]?$/i;
const HASH_PREFIXED = /^(?:sha(?:1|224|256|384|512)|md5)[-:]/i;
const HEX_WITH_SEPARATORS = /^[0-9a-fA-F]+(?:[-_:][0-9a-fA-F]+)*$/;

/** Shannon entropy in bits per character. */
function entropy(value: string): number {
  const counts = new Map<string, number>();
  for (const char of value) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const share = count / value.length;
    bits -= share * Math.log2(share);
  }
  return bits;
}

/** How often the character class changes between neighbours: high in random strings, low in words and identifiers. */
function classChangeRate(value: string): number {
  const classOf = (char: string) => (/[a-z]/.test(char) ? 0 : /[A-Z]/.test(char) ? 1 : /\d/.test(char) ? 2 : 3);
  let changes = 0;
  for (let index = 1; index < value.length; index += 1) {
    if (classOf(value.charAt(index)) !== classOf(value.charAt(index - 1))) changes += 1;
  }
  return changes / (value.length - 1);
}

/**
 * Share of the string made of word-like runs (a capital and three or more
 * lower-case letters, or four capitals, with a vowel). Identifiers such as
 * `K8sNodePoolN2Standard8EuropeWest3A` are mostly words; random tokens
 * rarely are (over half their length in 1% of 32-character ones).
 */
function wordShare(value: string): number {
  let inWords = 0;
  for (const [run] of value.matchAll(/[A-Z]?[a-z]{3,}|[A-Z]{4,}/g)) {
    if (/[aeiouy]/i.test(run)) inWords += run.length;
  }
  return inWords / value.length;
}

// Random base64 has a separator (- _ / +) in about one character in 32; paths and slugs have many more.
function separatorShare(value: string): number {
  return (value.match(/[-_/+]/g) ?? []).length / value.length;
}

function looksRandom(value: string): boolean {
  if (HEX_WITH_SEPARATORS.test(value) || HASH_PREFIXED.test(value)) return false;
  if (!/[a-z]/.test(value) || !/[A-Z]/.test(value) || !/\d/.test(value)) return false;
  if (wordShare(value) >= 0.5 || separatorShare(value) > 0.1) return false;
  return entropy(value) >= 4 && classChangeRate(value) >= 0.3;
}

function detectHighEntropy(text: string, urls: readonly Span[]): Candidate[] {
  return [...text.matchAll(ENTROPY_CANDIDATE)]
    .map((match) => ({ start: match.index, end: match.index + match[0].length, value: match[0] }))
    .filter((candidate) => !insideAny(candidate, urls))
    .filter((candidate) => !HASH_LABEL.test(text.slice(Math.max(0, candidate.start - 24), candidate.start)))
    .filter((candidate) => !/base64,$/.test(text.slice(Math.max(0, candidate.start - 7), candidate.start)))
    .filter((candidate) => looksRandom(candidate.value))
    .map((candidate) => ({
      kind: 'secret',
      start: candidate.start,
      end: candidate.end,
      label: 'possible secret (random-looking string)',
      preview: previewSecret(candidate.value, {}),
      priority: Priority.highEntropy,
    }));
}

// ---------------------------------------------------------------------------
// Putting it together

/** Longest first, then the more specific detector, then earliest: each kept candidate shuts out what it overlaps. */
function settleOverlaps(candidates: readonly Candidate[]): Finding[] {
  const ranked = [...candidates].sort((a, b) => b.end - b.start - (a.end - a.start) || b.priority - a.priority || a.start - b.start);
  const kept: Candidate[] = [];
  for (const candidate of ranked) {
    if (!insideAny(candidate, kept)) kept.push(candidate);
  }
  return kept.sort((a, b) => a.start - b.start).map(({ kind, start, end, label, preview }) => ({ kind, start, end, label, preview }));
}

/** Every email address, phone number, card number, national identifier and secret-looking string in `text`, in order. */
export function scanForPersonalData(text: string): Finding[] {
  const urls = findUrls(text);
  return settleOverlaps([
    ...detectEmails(text, urlAuthorities(text, urls)),
    ...detectPhones(text),
    ...detectCards(text),
    ...detectNationalIds(text),
    ...detectSecrets(text),
    ...detectHighEntropy(text, urls),
  ]);
}

/**
 * `text` with each finding replaced by its placeholder. The findings must come
 * from scanning this same text (offsets are positions in it); staff may pass a
 * subset to redact some items and keep others. Should two findings overlap,
 * both are replaced, so no fragment of either survives.
 */
export function redact(text: string, findings: readonly Finding[]): string {
  const ordered = [...findings].sort((a, b) => a.start - b.start);
  let result = '';
  let cursor = 0;
  for (const finding of ordered) {
    if (finding.start < 0 || finding.end > text.length || finding.start >= finding.end) {
      throw new RangeError(`finding ${finding.start}–${finding.end} is not within the text (length ${text.length})`);
    }
    if (finding.end <= cursor) continue;
    result += `${text.slice(cursor, Math.max(cursor, finding.start))}${redactionText[finding.kind]}`;
    cursor = finding.end;
  }
  return result + text.slice(cursor);
}

/** Counts per kind for the audit log: what was flagged, never what it said. */
export function summariseFindings(findings: readonly Finding[]): Record<FindingKind, number> {
  const counts: Record<FindingKind, number> = { email: 0, phone: 0, card: 0, national_id: 0, secret: 0 };
  for (const finding of findings) counts[finding.kind] += 1;
  return counts;
}
