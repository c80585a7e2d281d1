/**
 * Access rules on email domains (src/core/access/rules.ts): normalising and refusing patterns, the
 * choice among matching rules (exact over wildcard, longest wildcard suffix), the default (review, free
 * mail or not), and, property-style over generated domains and rule sets (a seeded generator, so a
 * failure repeats), that the chosen rule always matches and no matching rule is more specific.
 */
import { describe, expect, it } from 'vitest';
import {
  type AccessRule,
  chooseRule,
  decideForDomain,
  grantExpiry,
  grantedDocuments,
  isFreeMailDomain,
  normaliseDomain,
  normalisePattern,
  ruleMatches,
} from '../../src/core/access/rules.ts';

const rule = (id: number, pattern: string, decision: AccessRule['decision'] = 'approve'): AccessRule => ({
  id,
  pattern,
  decision,
  documents: null,
  grantDays: null,
});

describe('patterns', () => {
  it('normalise: trimmed, lower-case, IDN as punycode, a trailing dot dropped', () => {
    expect(normalisePattern('  Example.COM ')).toMatchObject({ ok: true, pattern: 'example.com', wildcard: false });
    expect(normalisePattern('*.Example.com')).toMatchObject({ ok: true, pattern: '*.example.com', wildcard: true });
    expect(normalisePattern('bücher.example')).toMatchObject({ ok: true, pattern: 'xn--bcher-kva.example' });
    expect(normalisePattern('*.MÜNCHEN.de')).toMatchObject({ ok: true, pattern: '*.xn--mnchen-3ya.de' });
    expect(normalisePattern('example.com.')).toMatchObject({ ok: true, pattern: 'example.com' });
  });

  it.each([
    ['', 'Enter a pattern'],
    ['localhost', 'needs a dot'],
    ['someone@example.com', 'email address'],
    ['https://example.com', 'scheme'],
    ['example.com:443', 'port'],
    ['ex ample.com', 'spaces'],
    ['*example.com', 'wildcard is written *.'],
    ['a.*.example.com', 'may only stand first'],
    ['*.*.example.com', 'may only stand first'],
    ['*', 'wildcard is written'],
    ['-bad.example.com', '"-bad"'],
    ['bad_.example.com', 'not a valid domain'],
    ['10.0.0.1', 'IP address'],
    [`${'a'.repeat(64)}.com`, 'must be 1 to 63'],
  ])('refuses %j, naming the problem', (raw, words) => {
    const r = normalisePattern(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(words);
  });

  it('a domain rule matches only that domain; a wildcard matches subdomains, never the domain itself', () => {
    expect(ruleMatches('example.com', 'example.com')).toBe(true);
    expect(ruleMatches('example.com', 'eu.example.com')).toBe(false);
    expect(ruleMatches('*.example.com', 'eu.example.com')).toBe(true);
    expect(ruleMatches('*.example.com', 'a.b.example.com')).toBe(true);
    expect(ruleMatches('*.example.com', 'example.com')).toBe(false);
    expect(ruleMatches('*.example.com', 'badexample.com')).toBe(false);
    expect(normaliseDomain('Bücher.Example').ok && normaliseDomain('Bücher.Example')).toMatchObject({ domain: 'xn--bcher-kva.example' });
  });
});

describe('decisions', () => {
  const rules = [rule(1, '*.example.com', 'refuse'), rule(2, '*.eu.example.com', 'approve'), rule(3, 'eu.example.com', 'review')];

  it('an exact rule wins over wildcards; the longest wildcard wins among wildcards', () => {
    expect(chooseRule('eu.example.com', rules)?.id).toBe(3);
    expect(chooseRule('paris.eu.example.com', rules)?.id).toBe(2);
    expect(chooseRule('us.example.com', rules)?.id).toBe(1);
    expect(chooseRule('example.com', rules)).toBeNull();
  });

  it('without a rule every domain goes to review, free mail included (and is marked so)', () => {
    expect(decideForDomain('gmail.com', [])).toEqual({ decision: 'review', rule: null, freeMail: true });
    expect(decideForDomain('acme.example', [])).toEqual({ decision: 'review', rule: null, freeMail: false });
    for (const d of ['outlook.com', 'yahoo.com', 'yahoo.co.uk', 'yahoo.fr', 'proton.me', 'icloud.com', 'hotmail.de'])
      expect(isFreeMailDomain(d), d).toBe(true);
    expect(isFreeMailDomain('yahoo-inc.com')).toBe(false);
    expect(decideForDomain('gmail.com', [rule(9, 'gmail.com', 'refuse')]).decision).toBe('refuse');
  });

  it('an approving rule grants its documents among those asked for, or all asked for; 90 days by default', () => {
    expect(grantedDocuments({ documents: ['a', 'b'] }, ['b', 'c'])).toEqual(['b']);
    expect(grantedDocuments({ documents: null }, ['b', 'c'])).toEqual(['b', 'c']);
    const now = new Date('2026-01-01T00:00:00Z');
    expect(grantExpiry(now, null).toISOString()).toBe('2026-04-01T00:00:00.000Z');
    expect(grantExpiry(now, 10).toISOString()).toBe('2026-01-11T00:00:00.000Z');
  });
});

describe('property: the chosen rule is the most specific matching one', () => {
  // mulberry32: small, seeded, repeatable
  function random(seed: number) {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const labels = ['a', 'b', 'eu', 'acme', 'x-y', 'mail'];
  const tlds = ['com', 'example', 'io'];

  /** How specific a matching pattern is: exact beats any wildcard, then the longer suffix. */
  const rank = (pattern: string) => (pattern.startsWith('*.') ? pattern.length : Number.MAX_SAFE_INTEGER);

  it('for 3000 generated domains and rule sets', () => {
    const next = random(20261203);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
    const domainOf = (depth: number) => [...Array.from({ length: depth }, () => pick(labels)), pick(tlds)].join('.');
    for (let round = 0; round < 3000; round++) {
      const domain = domainOf(1 + Math.floor(next() * 4));
      const rules: AccessRule[] = [];
      const seen = new Set<string>();
      const count = Math.floor(next() * 8);
      for (let i = 0; i < count; i++) {
        // half the rules from the domain's own suffixes, so matches are common
        const parts = domain.split('.');
        const from = Math.floor(next() * parts.length);
        const base = next() < 0.5 ? parts.slice(from).join('.') : domainOf(1 + Math.floor(next() * 3));
        const pattern = next() < 0.5 ? `*.${base}` : base;
        const normalised = normalisePattern(pattern);
        if (!normalised.ok || seen.has(normalised.pattern)) continue;
        seen.add(normalised.pattern);
        rules.push(rule(i, normalised.pattern, pick(['approve', 'review', 'refuse'] as const)));
      }
      const chosen = chooseRule(domain, rules);
      const matching = rules.filter((r) => ruleMatches(r.pattern, domain));
      if (matching.length === 0) {
        expect(chosen, `${domain} ${rules.map((r) => r.pattern).join(' ')}`).toBeNull();
        expect(decideForDomain(domain, rules).decision).toBe('review');
        continue;
      }
      expect(chosen, domain).not.toBeNull();
      if (!chosen) continue;
      expect(ruleMatches(chosen.pattern, domain), `${chosen.pattern} ${domain}`).toBe(true);
      for (const other of matching)
        expect(rank(other.pattern) <= rank(chosen.pattern), `${other.pattern} over ${chosen.pattern}`).toBe(true);
      expect(decideForDomain(domain, rules).decision).toBe(chosen.decision);
    }
  });
});
