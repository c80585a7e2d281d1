import { describe, expect, it } from 'vitest';
import {
  type Finding,
  type FindingKind,
  findingKinds,
  passesLuhn,
  redact,
  scanForPersonalData,
  summariseFindings,
} from '../../src/core/incidents/pii-guard.ts';

/**
 * Credential-shaped fixtures are assembled at run time so that secret
 * scanners reading this repository do not report the test file itself.
 * None of them is a real credential.
 */
const join = (...parts: string[]) => parts.join('');
const fake = {
  aws: join('AKIA', 'IOSFODNN7', 'EXAMPLE'),
  github: join('ghp_', 'aBcDeFgHiJkLmNoPqRsT', 'uVwXyZ0123456789'),
  githubPat: join('github_pat_', '11ABCDEFG0123456789_', 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVW'),
  slack: join('xoxb-', '123456789012-123456789012-', 'abcdefABCDEF1234'),
  slackWebhook: join('https://hooks.slack.com/services/', 'T00000000/B00000000/', 'XXXXXXXXXXXXXXXXXXXXXXXX'),
  stripe: join('sk_live_', '4eC39HqLyjWDarjtT1zdp7dc'),
  stripeRestricted: join('rk_live_', '51H8qAbCdEfGhIjKlMnOp9f'),
  resend: join('re_', 'c1tpEyD8_NKFusih9vKVQknRAQfmFcWCv'),
  twilioKey: join('SK', '0123456789abcdef', '0123456789abcdef'),
  twilioToken: join('9f86d081884c7d65', '9a2feaa0c55ad015'),
  openai: join('sk-proj-', 'T3BlbkFJ4x8Qz1Lr9mWc2VbN7', 'kD5yHs0pEa6UoGi3'),
  google: join('AIza', 'SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe'),
  jwt: join(
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9',
    '.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ',
    '.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
  ),
  pem: join(
    '-----BEGIN RSA ',
    'PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n',
    '-----END RSA ',
    'PRIVATE KEY-----',
  ),
  password: 'Tr0ub4dor&3x',
  random: join('Xr9gdH3sR1vKvN2pL8qZ', '7bT6cW4yE0uF5mA3jH9k'),
};

/** `[kind, raw match]` pairs: what a reviewer wants to read in a failure message. */
function matches(text: string, findings: readonly Finding[] = scanForPersonalData(text)): [FindingKind, string][] {
  return findings.map((finding) => [finding.kind, text.slice(finding.start, finding.end)]);
}

function only(text: string): Finding {
  const findings = scanForPersonalData(text);
  expect(findings, JSON.stringify(matches(text, findings))).toHaveLength(1);
  const [finding] = findings;
  if (!finding) throw new Error('unreachable');
  return finding;
}

/**
 * A preview must not let anyone rebuild the value: not verbatim, nor its
 * digits with the formatting dropped, and at most half of its letters and
 * digits may show. An email address keeps its domain by design (it says
 * which organisation is involved) but not its local part.
 */
function expectPreviewHidesValue(kind: FindingKind, raw: string, preview: string): void {
  expect(preview).not.toContain(raw);
  const digits = raw.replace(/\D/g, '');
  if (digits.length >= 6) expect(preview.replace(/\D/g, '')).not.toContain(digits);
  const secretPart = kind === 'email' ? raw.slice(0, raw.lastIndexOf('@')) : raw;
  if (kind === 'email' && secretPart.length > 2) expect(preview).not.toContain(secretPart);
  if (kind !== 'email') expect(alphanumerics(preview)).toBeLessThanOrEqual(Math.max(4, alphanumerics(raw) / 2));
}

function alphanumerics(value: string): number {
  return value.replace(/[^A-Za-z0-9]/g, '').length;
}

describe('a realistic incident update', () => {
  const update = [
    '## Identified: payment webhooks delayed',
    '',
    'We identified the cause of the delayed Stripe webhooks at 14:05 UTC (incident INC-2026-0042).',
    'Ada (ada.lovelace@customer.example) reported that card 4242 4242 4242 4242 was charged twice;',
    'please call her back on +1 (415) 555-0132.',
    'Her SSN 123-45-6789 and NI number AB 12 34 56 C were in the ticket and have been removed from it.',
    `The leaked key ${fake.aws} was revoked, and the config line \`DB_PASSWORD=${fake.password}\` rotated.`,
    `Old Stripe key: ${fake.stripe}. Webhook log: ${fake.jwt}`,
    '',
    'Next update by 15:00 UTC. See https://trust.lumenwork.example/incidents/12 for the timeline.',
  ].join('\n');

  const findings = scanForPersonalData(update);

  it('finds each item, with offsets that point at the raw match', () => {
    expect(matches(update, findings)).toEqual([
      ['email', 'ada.lovelace@customer.example'],
      ['card', '4242 4242 4242 4242'],
      ['phone', '+1 (415) 555-0132'],
      ['national_id', '123-45-6789'],
      ['national_id', 'AB 12 34 56 C'],
      ['secret', fake.aws],
      ['secret', fake.password],
      ['secret', fake.stripe],
      ['secret', fake.jwt],
    ]);
  });

  it('reports findings in order and never overlapping', () => {
    for (const [index, finding] of findings.entries()) {
      expect(finding.start).toBeLessThan(finding.end);
      const next = findings[index + 1];
      if (next) expect(finding.end).toBeLessThanOrEqual(next.start);
    }
  });

  it('labels each kind for people', () => {
    expect(findings.map((finding) => finding.label)).toEqual([
      'email address',
      'payment card number',
      'phone number',
      'US Social Security number',
      'UK National Insurance number',
      'AWS access key ID',
      'credential in an assignment',
      'Stripe key',
      'JSON web token',
    ]);
  });

  it('shows partly masked previews', () => {
    expect(findings.map((finding) => finding.preview)).toEqual([
      'ad…@customer.example',
      '•••• •••• •••• 4242',
      '+1 (•••) •••-••32',
      '•••-••-••89',
      'AB •• •• •• C',
      'AKIA…LE',
      '••••••',
      'sk_live_…dc',
      'eyJ…5c',
    ]);
  });

  it('never shows the whole value in a preview', () => {
    for (const finding of findings) expectPreviewHidesValue(finding.kind, update.slice(finding.start, finding.end), finding.preview);
  });

  it('redacts every finding and leaves the rest of the text alone', () => {
    expect(redact(update, findings)).toBe(
      [
        '## Identified: payment webhooks delayed',
        '',
        'We identified the cause of the delayed Stripe webhooks at 14:05 UTC (incident INC-2026-0042).',
        'Ada ([email redacted]) reported that card [card number redacted] was charged twice;',
        'please call her back on [phone number redacted].',
        'Her SSN [national ID redacted] and NI number [national ID redacted] were in the ticket and have been removed from it.',
        'The leaked key [secret redacted] was revoked, and the config line `DB_PASSWORD=[secret redacted]` rotated.',
        'Old Stripe key: [secret redacted]. Webhook log: [secret redacted]',
        '',
        'Next update by 15:00 UTC. See https://trust.lumenwork.example/incidents/12 for the timeline.',
      ].join('\n'),
    );
  });

  it('finds nothing left once redacted', () => {
    expect(matches(redact(update, findings))).toEqual([]);
  });

  it('summarises counts per kind, without any of the values', () => {
    const summary = summariseFindings(findings);
    expect(summary).toEqual({ email: 1, phone: 1, card: 1, national_id: 2, secret: 4 });
    const serialised = JSON.stringify(summary);
    for (const finding of findings) {
      expect(serialised).not.toContain(update.slice(finding.start, finding.end));
      expect(serialised).not.toContain(finding.preview);
    }
  });
});

describe('email addresses', () => {
  it.each(['ada@example.com', 'first.last+incident@mail.customer.example', 'o_brien-99@sub.domain.co.uk'])('flags %s', (address) => {
    const text = `Reported by ${address}.`;
    expect(matches(text)).toEqual([['email', address]]);
  });

  it('flags addresses in mailto links, autolinks, emphasis and URL queries', () => {
    const text = '[Ada](mailto:ada@example.com), <bob@example.org>, _dan@example.io_, https://app.example/users?email=carol@example.net';
    expect(matches(text)).toEqual([
      ['email', 'ada@example.com'],
      ['email', 'bob@example.org'],
      ['email', 'dan@example.io'],
      ['email', 'carol@example.net'],
    ]);
  });

  it('does not read a URL host or login as an address', () => {
    expect(matches('See https://status.example.com and https://deploy@git.example.com/repo')).toEqual([]);
  });

  it('does not flag SSH remotes, retina assets or scoped package versions', () => {
    expect(matches('Pushed to git@github.com:lumenwork/candor.git; logo@2x.png; @lumenwork/sdk@4.2.1')).toEqual([]);
  });

  it('keeps sentence punctuation out of the match', () => {
    const text = 'Write to security@lumenwork.example.';
    expect(matches(text)).toEqual([['email', 'security@lumenwork.example']]);
  });

  it('hides short local parts completely', () => {
    expect(only('from jo@example.com').preview).toBe('…@example.com');
  });
});

describe('phone numbers', () => {
  it.each([
    '+1 415 555 0132',
    '+1 (212) 555-0100',
    '(415) 555-0198',
    '415-555-0175',
    '415.555.0175',
    '1-800-555-0199',
    '+44 20 7946 0958',
    '+49 30 901820',
    '+33 1 42 68 53 00',
    '+61 2 9374 4000',
  ])('flags %s', (phone) => {
    const text = `Customer phone: ${phone} (left as voicemail).`;
    expect(matches(text)).toEqual([['phone', phone]]);
  });

  it('flags a tel: link', () => {
    expect(matches('[Call us](tel:+14155550132)')).toEqual([['phone', '+14155550132']]);
  });

  it('flags an ungrouped number only when the text says it is one', () => {
    expect(matches('call 2125550100 now')).toEqual([['phone', '2125550100']]);
    expect(matches('order 2125550100 was refunded')).toEqual([]);
  });

  it('keeps the country code and the last two digits in the preview', () => {
    expect(only('on +44 20 7946 0958').preview).toBe('+44 •• •••• ••58');
  });

  it('keeps a marked extension with the number', () => {
    expect(matches('desk: 415-555-0132 ext. 204, after 18:00')).toEqual([['phone', '415-555-0132 ext. 204']]);
  });

  it('does not read digits in an unusual grouping as a US number', () => {
    expect(matches('batch 4242 4242 42 and 41 555 50132')).toEqual([]);
  });

  it('does not carry following text into the match', () => {
    const text = 'call 2015550123, 22/11/2026';
    expect(matches(text)).toEqual([['phone', '2015550123']]);
  });
});

describe('payment card numbers', () => {
  it.each([
    ['Visa', '4242 4242 4242 4242'],
    ['Visa, no spaces', '4242424242424242'],
    ['Mastercard', '5555-5555-5555-4444'],
    ['Mastercard 2-series', '2223 0031 2200 3222'],
    ['American Express', '378282246310005'],
    ['American Express, grouped', '3714 496353 98431'],
    ['Discover', '6011 1111 1111 1117'],
    ['Diners Club', '3056 930902 5904'],
    ['JCB', '3566 0020 2036 0505'],
    ['UnionPay', '6200 0000 0000 0005'],
  ])('flags a %s test number', (_brand, card) => {
    const text = `Card ${card} was declined.`;
    expect(matches(text)).toEqual([['card', card]]);
  });

  it.each([
    ['a Luhn failure', '4242 4242 4242 4241'],
    ['a Luhn failure, Mastercard', '5555-5555-5555-4445'],
    ['a Luhn-valid number in no issuer range', '1000 0000 0000 0008'],
    ['another outside any range', '7000 0000 0000 0005'],
    ['too short', '4242 4242 42'],
    ['a Visa prefix at a length Visa never issues', '4000 0000 0000 02'],
  ])('does not flag %s', (_reason, digits) => {
    expect(matches(`Reference ${digits}.`)).toEqual([]);
  });

  it('finds the card before an expiry date that follows it', () => {
    const text = 'card 4242 4242 4242 4242 12/28';
    expect(matches(text)).toEqual([['card', '4242 4242 4242 4242']]);
  });

  it('does not flag digits that belong to an id or a path', () => {
    expect(matches('INC-4242-4242-4242-4242 and /payments/4242424242424242 and ch_4242424242424242x')).toEqual([]);
  });

  it('shows only the last four digits', () => {
    expect(only('card 5555-5555-5555-4444').preview).toBe('••••-••••-••••-4444');
  });

  it('checks Luhn correctly', () => {
    expect(passesLuhn('79927398713')).toBe(true);
    expect(passesLuhn('79927398710')).toBe(false);
  });
});

describe('national identifiers', () => {
  it.each(['123-45-6789', '078-05-1121', '899-99-9999', '123 45 6789'])('flags the SSN %s', (ssn) => {
    const text = `SSN ${ssn} on file.`;
    expect(matches(text)).toEqual([['national_id', ssn]]);
  });

  it.each([
    ['area 000', '000-12-3456'],
    ['area 666', '666-12-3456'],
    ['area 900–999', '912-34-5678'],
    ['area 999', '999-12-3456'],
    ['group 00', '123-00-4567'],
    ['serial 0000', '123-45-0000'],
    ['the voided Woolworth number', '078-05-1120'],
    ['mixed separators', '123-45 6789'],
    ['part of a longer id', 'INC-123-45-6789'],
  ])('does not flag an SSN with %s', (_reason, ssn) => {
    expect(matches(`value ${ssn} here`)).toEqual([]);
  });

  it.each(['AB 12 34 56 C', 'AB123456D', 'JG 10 37 56 A'])('flags the UK National Insurance number %s', (nino) => {
    const text = `NI ${nino}.`;
    expect(matches(text)).toEqual([['national_id', nino]]);
  });

  it.each([
    ['an unallocated prefix (BG)', 'BG 12 34 56 A'],
    ['an unallocated prefix (GB)', 'GB123456A'],
    ['an unallocated prefix (ZZ)', 'ZZ123456B'],
    ['a first letter never used (D)', 'DA123456A'],
    ['a second letter never used (O)', 'AO123456A'],
    ["HMRC's specimen (Q prefix)", 'QQ 12 34 56 C'],
    ['a suffix beyond D', 'AB123456E'],
    ['lower case', 'ab123456c'],
  ])('does not flag a NI number with %s', (_reason, nino) => {
    expect(matches(`ref ${nino} here`)).toEqual([]);
  });

  it('masks all digits of a NI number', () => {
    expect(only('NI AB123456D').preview).toBe('AB••••••D');
  });
});

describe('secrets', () => {
  it.each([
    ['AWS access key ID', fake.aws, 'AKIA…LE'],
    ['AWS access key ID', join('ASIA', 'XW3DQ7PK2L9MN4ZB'), 'ASIA…ZB'],
    ['GitHub token', fake.github, 'ghp_…89'],
    ['GitHub token', fake.githubPat, 'github_pat_…VW'],
    ['Slack token', fake.slack, 'xoxb-…34'],
    ['Slack webhook URL', fake.slackWebhook, 'https://hooks.slack.com/services/…XX'],
    ['Stripe key', fake.stripe, 'sk_live_…dc'],
    ['Stripe key', fake.stripeRestricted, 'rk_live_…9f'],
    ['Resend API key', fake.resend, 're_…Cv'],
    ['Twilio API key', fake.twilioKey, 'SK…ef'],
    ['OpenAI API key', fake.openai, 'sk-proj-…i3'],
    ['Google API key', fake.google, 'AIza…Qe'],
    ['JSON web token', fake.jwt, 'eyJ…5c'],
    ['private key', fake.pem, '-----BEGIN RSA PRIVATE KEY-----…'],
  ])('flags a %s', (label, secret, preview) => {
    const text = `From the logs:\n${secret}\nwas rotated.`;
    const finding = only(text);
    expect(matches(text)).toEqual([['secret', secret]]);
    expect(finding.label).toBe(label);
    expect(finding.preview).toBe(preview);
    expectPreviewHidesValue('secret', secret, finding.preview);
  });

  it('flags a Twilio-style auth token right after the word "token"', () => {
    const text = `auth token: ${fake.twilioToken}`;
    expect(matches(text)).toEqual([['secret', fake.twilioToken]]);
  });

  it('redacts the whole of a private key whose end line is missing', () => {
    const text = `key:\n-----BEGIN ${'PRIVATE'} KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nand the rest`;
    expect(redact(text, scanForPersonalData(text))).toBe('key:\n[secret redacted]');
  });

  it.each([
    ['password=', `password=${fake.password}`, fake.password],
    ['an env var', `STRIPE_SECRET=${fake.random}`, fake.random],
    ['a spaced assignment', 'db_password = hunter2!', 'hunter2!'],
    ['a JSON field', `{"client_secret": "${fake.password}"}`, fake.password],
    ['a YAML field', `api_key: '${fake.password}'`, fake.password],
    ['an AWS secret key', `aws_secret_access_key = ${fake.random}`, fake.random],
    ['a URL query', 'https://api.example/v1/export?token=abcd1234efgh5678&page=2', 'abcd1234efgh5678'],
    ['a URL password', 'postgres://app:Pa55word@db.internal:5432/app', 'Pa55word'],
    ['a bearer header', `Authorization: Bearer ${fake.random}`, fake.random],
  ])('flags the value of %s and leaves its name readable', (_case, text, value) => {
    expect(matches(text)).toEqual([['secret', value]]);
    expect(redact(text, scanForPersonalData(text))).toBe(text.replace(value, '[secret redacted]'));
  });

  it.each([
    'password=<redacted>',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell-style placeholder, meant literally
    'token=${STATUS_TOKEN}',
    'secret=***',
    'api_key=REDACTED',
    'password={{ vault.db_password }}',
    'token=true',
    'the token: it expired at 14:00',
    'Token = stale',
    'max_tokens=4096 and token_ttl_seconds=3600 and password_min_length=12',
    'purged cache_key=homepage-v2 and sort_key=created_at',
    'We rotated the API key and the password reset emails are flowing again.',
  ])('does not flag %s', (text) => {
    expect(matches(text)).toEqual([]);
  });

  it('flags an unlabelled random-looking string, conservatively', () => {
    expect(matches(`the value ${fake.random} was exposed`)).toEqual([['secret', fake.random]]);
  });

  it('does not flag ordinary long words, identifiers or labelled hashes', () => {
    const text = [
      'AbstractSingletonProxyFactoryBean2024 threw RequestTimeoutExceptionHandlerFactory2',
      're_enable_the_old_connection_pool_2024',
      'integrity sha512-Dq0K2xqvJbC4MlN7a+1QhFn3b5b2uT7y8lQk9Vv0ZpOeXgQ7rW1Y6HcE2fJkLmN3oP4qR5sT6uV7wX8yZ9aB0c==',
      'sha256: Zq3M7c2VbN7kD5yHs0pEa6UoGi3T3BlbkFJ4x8Qz1Lr9mW=',
      'src/components/IncidentTimelineRenderer2024Version.astro',
      'K8sNodePoolN2Standard8EuropeWest3A and MyAppServiceV2ToV3MigrationRunbook2024Q4Final',
      'arn:aws:iam::123456789012:role/LumenworkProdDeployRole2024',
      'Pod/api-server-5f7d9c8b6d-4xk2p/Container/api2024/Restarted',
      '2026-11-22T14-05-33Z_api-eu-central-1_heapdump.hprof',
      'x-amz-id-2: vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo=',
    ].join('\n');
    expect(matches(text)).toEqual([]);
  });

  it('reports a prefixed token once, under its specific label, when it is also an assignment', () => {
    const text = `GITHUB_TOKEN=${fake.github}`;
    const finding = only(text);
    expect(finding.label).toBe('GitHub token');
    expect(text.slice(finding.start, finding.end)).toBe(fake.github);
  });

  it('shows nothing of a short secret', () => {
    expect(only('password=hunter2!').preview).toBe('••••••');
  });
});

describe('overlaps', () => {
  it('keeps the longer match: an email whose local part is a phone number', () => {
    const text = 'texts go to 4155550132@txt.carrier.example';
    expect(matches(text)).toEqual([['email', '4155550132@txt.carrier.example']]);
  });

  it('keeps the more specific match for the same span: a card number typed as a password', () => {
    const text = 'password=4242424242424242';
    expect(matches(text)).toEqual([['card', '4242424242424242']]);
  });
});

describe('inside URLs', () => {
  it('still flags personal data in a query string', () => {
    const text = 'https://app.example/support?phone=415-555-0132&card=4242424242424242&ssn=123-45-6789';
    expect(matches(text)).toEqual([
      ['phone', '415-555-0132'],
      ['card', '4242424242424242'],
      ['national_id', '123-45-6789'],
    ]);
  });

  it('flags known token formats in a URL but not a random-looking path segment', () => {
    const text = `https://cdn.example/assets/${fake.random}/logo.svg https://api.example/?key=${fake.google}`;
    expect(matches(text)).toEqual([['secret', fake.google]]);
  });
});

describe('redact', () => {
  const text = 'Mail ada@example.com or call (415) 555-0198.';
  const findings = scanForPersonalData(text);

  it('redacts only the findings it is given', () => {
    const emailOnly = findings.filter((finding) => finding.kind === 'email');
    expect(redact(text, emailOnly)).toBe('Mail [email redacted] or call (415) 555-0198.');
  });

  it('accepts findings in any order', () => {
    expect(redact(text, [...findings].reverse())).toBe('Mail [email redacted] or call [phone number redacted].');
  });

  it('returns the text unchanged when there is nothing to redact', () => {
    expect(redact(text, [])).toBe(text);
  });

  it('leaves no fragment of overlapping findings', () => {
    const overlapping: Finding[] = [
      { kind: 'secret', start: 5, end: 12, label: 'x', preview: 'x' },
      { kind: 'email', start: 8, end: 20, label: 'x', preview: 'x' },
    ];
    const redacted = redact(text, overlapping);
    expect(redacted).toBe('Mail [secret redacted][email redacted] or call (415) 555-0198.');
    expect(redacted).not.toContain('example');
  });

  it('refuses findings that do not belong to this text', () => {
    expect(() => redact('short', findings)).toThrow(RangeError);
  });
});

describe('summariseFindings', () => {
  it('counts every kind, zero included', () => {
    expect(summariseFindings([])).toEqual(Object.fromEntries(findingKinds.map((kind) => [kind, 0])));
  });
});

/**
 * Ordinary incident prose: every line here has tripped a naive detector
 * somewhere. A guard that flags these trains staff to click through it.
 */
const ordinaryProse = [
  '## Elevated API error rates in eu-central-1',
  '**Update 2026-11-22T14:00Z**: we are investigating elevated error rates.',
  'Since 13:42 UTC about 0.5% of requests returned HTTP 503; error rate 0.5% at peak.',
  'p99 latency 350 ms (normally 120 ms); p50 42 ms.',
  'us-east-1 and us-west-2 are not affected; eu-central-1 is recovering.',
  'Started 2026-11-22 13:42:07 UTC (14:42 CET), detected at 14:05 UTC.',
  'Timestamps: 2026-11-22T14:05:33.123Z, 2026-11-22T14:05:33+01:00, Sat, 22 Nov 2026 14:00:00 GMT, 1732284000.',
  'Window: 22/11/2026 02:00–04:00, or 11/22/2026 in US notation; 2026.11.22.',
  'Affected: API, Webhooks +1 more',
  'Incident INC-2026-0042, ticket #4821, incident 20261122-0042, request 1732284000123.',
  'Release v2.14.3 (build 20261122.3) was rolled back to v2.14.2; Node 24.11.1; Postgres 16.4.',
  'Commit 3f5e2a9c1b7d4e6f8a0b2c4d6e8f0a1b3c5d7e9f reverted.',
  'Request id 550e8400-e29b-41d4-a716-446655440000 (also 550E8400-E29B-41D4-A716-446655440000).',
  'Trace 4bf92f3577b34da6a3ce929d0e0e4736, traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.',
  'Image sha256:9b2c7e8f1a3d5c7e9f0b2d4f6a8c0e2f4a6c8e0f2b4d6f8a0c2e4f6a8b0d2f4a',
  'Load balancers 10.0.12.254 and 192.168.100.200 were drained; 203.0.113.42 was blocked.',
  'IPv6 2001:db8::8a2e:370:7334 and fe80::1 and 2606:4700:4700::1111 were unaffected.',
  'TLS 1.3 handshakes failed for OpenSSL 1.1.1w clients; TLS 1.2 was fine.',
  '500 errors per minute at peak; 1,204,332 requests retried; 99.95% availability this month.',
  'Between 13:42 and 14:05 UTC (23 minutes) 12 customers opened tickets.',
  'Queue depth peaked at 48213 messages; 3 of 12 shards; ratio 1:4; AS13335; ports 5432 and 6379.',
  'Node pool np-7d9f8b6c5d scaled from 12 to 48 nodes; pod api-7d9f8b6c5d-x2k4p restarted 3 times.',
  'See [incident 12](https://trust.lumenwork.example/incidents/12) and https://trust.lumenwork.example/incidents/12.',
  'Dashboard https://grafana.internal.example/d/abc123XYZ/api?orgId=1&from=1732284000000&to=1732291200000',
  'Upstream: https://status.example.com, https://github.com/lumenwork/candor/pull/1234.',
  'Feed at https://trust.lumenwork.example/feeds/incidents.xml; `GET /api/v1/status.json`.',
  'Error code ERR_CONNECTION_RESET_BY_PEER; see RFC 9110 section 15.6.4.',
  'Costs: $1,250.00; 4 vCPU / 16 GiB; 2 × 8 TB volumes; 25 Gbit/s.',
  'Config: `max_connections = 2000`, `token_ttl_seconds = 3600`, `password_min_length = 12`.',
  'Our on-call rotation reset the token cache; password reset emails were delayed.',
  '- Rolled back',
  '- Drained connection pools',
  '1. Identified',
  '2. Monitoring',
  '> Next update by 15:00 UTC (in 1 h).',
  '| Region | Error rate | p99 |',
  '|---|---|---|',
  '| eu-central-1 | 0.5% | 350 ms |',
];

describe('false-positive guard: ordinary incident prose', () => {
  it.each(ordinaryProse)('finds nothing in: %s', (line) => {
    expect(matches(line)).toEqual([]);
  });

  it('finds nothing in the whole update either', () => {
    expect(matches(ordinaryProse.join('\n'))).toEqual([]);
  });
});

describe('hostile input', () => {
  it.each([
    ['a long local part', `${'a.'.repeat(20_000)}@x`],
    ['a long domain', `a@${'b.'.repeat(20_000)}`],
    ['a long key name', `${'a.'.repeat(20_000)}=`],
    ['a long scheme', `${'a.'.repeat(20_000)}://`],
    ['many digit groups', '4-'.repeat(20_000)],
    ['many random-looking characters', 'Ab1'.repeat(20_000)],
  ])('scans %s in linear time', (_case, text) => {
    const started = performance.now();
    scanForPersonalData(text);
    // generous: quadratic backtracking here takes tens of seconds, linear takes milliseconds
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
