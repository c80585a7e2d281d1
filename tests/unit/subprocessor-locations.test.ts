/**
 * Subprocessor locations as structured, validated values: the /subprocessors
 * filter matches places rather than free text ("Germany" finds every entry
 * processing data in Germany; "EU/EEA" every entry in a member country),
 * names come from the ISO codes, and a stored list or draft from before the
 * fields existed compares equal to the same places written the new way.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import { contentSnapshots } from '../../db/schema.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { diffSubprocessors, fingerprint, type LegacyStoredSubprocessor, storedSubprocessors } from '../../src/core/changes/diff.ts';
import { noticeFacts } from '../../src/core/changes/messages.ts';
import { detectChanges } from '../../src/core/changes/notices.ts';
import { currentSubprocessors } from '../../src/core/changes/public.ts';
import { hashJson, recordBaseline } from '../../src/core/changes/snapshot.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { parseLegacyLocation } from '../../src/core/content/locations.ts';
import { filterSubprocessors } from '../../src/core/trust/subprocessor-filter.ts';
import { buildTrustDocument } from '../../src/core/trust/trust-document.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { ROOT } from '../helpers/server.ts';

const content = loadContent(join(ROOT, 'content'));
const filter = (query: string) => filterSubprocessors(content.subprocessors, new URLSearchParams(query));
const ids = (query: string) =>
  filter(query)
    .items.map((s) => s.id)
    .sort();

/** The list as databases started before structured locations recorded it: free text, dates as ISO strings. */
function freeTextList(): LegacyStoredSubprocessor[] {
  const rows = parse(readFileSync(join(ROOT, 'tests/fixtures/subprocessors-free-text-locations.yaml'), 'utf8')) as Record<
    string,
    unknown
  >[];
  return rows.map((r) => ({ ...r, since: new Date(String(r.since)).toISOString() }) as unknown as LegacyStoredSubprocessor);
}

describe('the location filter', () => {
  it('"Germany" finds every entry that processes data in Germany, including the one that works worldwide', () => {
    const germany = ['algolia', 'amazon-web-services', 'cloudflare', 'posthog', 'supabase'];
    expect(ids('location=Germany')).toEqual(germany);
    expect(ids('location=DE')).toEqual(germany);
    expect(ids('location=germany')).toEqual(germany);
    const result = filter('location=Germany');
    expect(result.problems).toEqual([]);
    expect(result.applied.location).toBe('DE');
    expect(result.locationLabel).toBe('Germany');
    expect(result.worldwide.map((s) => s.id)).toEqual(['cloudflare']);
  });

  it('"EU/EEA" finds the entries in any member country', () => {
    const eea = ['algolia', 'amazon-web-services', 'cloudflare', 'google-cloud', 'intercom', 'mistral-ai', 'posthog', 'supabase'];
    expect(ids('location=eea')).toEqual(eea);
    expect(ids('location=EU%2FEEA')).toEqual(eea);
    expect(ids('location=European+Union')).toEqual(eea);
  });

  it('"United States" finds the US entries, alone or with others; a country no entry names finds the worldwide one', () => {
    expect(ids('location=United+States')).toEqual(
      [
        'algolia',
        'amazon-web-services',
        'cloudflare',
        'google-cloud',
        'openai',
        'postmark',
        'slack',
        'stripe',
        'supabase',
        'twilio',
      ].sort(),
    );
    expect(ids('location=JP')).toEqual(['cloudflare']);
    expect(filter('location=JP').locations.countries).toContainEqual({ value: 'JP', label: 'Japan' });
    expect(ids('location=worldwide')).toEqual(['cloudflare']);
  });

  it('combines with the purpose', () => {
    expect(ids('category=ai&location=France')).toEqual(['mistral-ai']);
  });

  it('offers regions, then each named country by its name', () => {
    const { locations } = filter('');
    expect(locations.regions).toEqual([
      { value: 'eea', label: 'EU/EEA' },
      { value: 'worldwide', label: 'Worldwide' },
    ]);
    expect(locations.countries.map((c) => c.label)).toEqual(['France', 'Germany', 'Ireland', 'Netherlands', 'United States']);
    expect(locations.countries.find((c) => c.label === 'Germany')?.value).toBe('DE');
  });

  it('names an unknown place and shows everything', () => {
    const result = filter('location=Narnia');
    expect(result.items).toHaveLength(content.subprocessors.length);
    expect(result.applied.location).toBeNull();
    expect(result.problems[0]).toMatch(/^There is no location called "Narnia"; showing every location\./);
  });
});

describe('free-text locations of earlier versions', () => {
  it.each([
    ['United States and European Union (Germany, Ireland)', ['US', 'DE', 'IE'], []],
    ['Global (edge network)', [], ['worldwide']],
    ['European Union (France)', ['FR'], []],
    ['European Union', [], ['eea']],
    ['Bosnia & Herzegovina and the United Kingdom', ['BA', 'GB'], []],
  ])('"%s" reads as %j %j', (text, countries, regions) => {
    expect(parseLegacyLocation(text)).toEqual({ countries, regions });
  });

  it('the demo list written both ways differs in nothing: no change, no notice', () => {
    expect(diffSubprocessors(freeTextList(), storedSubprocessors(content.subprocessors))).toEqual([]);
  });

  it('moving content/ to structured locations drafts nothing, keeps a pending draft, and the published list filters by place', async () => {
    const db = bindAuditKeys(openDatabase(':memory:'), auditKeyring(TEST_KEYS.secret));
    const database = databaseOf(db);
    const now = new Date('2026-06-01T12:00:00Z');
    // A database from before: its baseline in the free-text shape, and a draft for Algolia moving to Ireland.
    const baseline = freeTextList();
    db.insert(contentSnapshots)
      .values({ kind: 'subprocessors', data: baseline, hash: hashJson(baseline), publishedAt: now })
      .run();
    await recordBaseline(database, content, now);
    const algolia = baseline.find((s) => s.id === 'algolia');
    if (!algolia) throw new Error('no Algolia in the fixture');
    // as an older version stored it: both sides in the free-text shape
    const draft = {
      subject: 'subprocessor',
      change: 'changed',
      id: 'algolia',
      name: 'Algolia',
      before: algolia,
      after: { ...algolia, location: 'European Union (Ireland)' },
      fields: ['location'],
    } as const;
    db.$client
      .prepare(
        `INSERT INTO change_notices (subject, change, subject_id, subject_name, details, fingerprint, status, intro, detected_at)
         VALUES ('subprocessor', 'changed', 'algolia', 'Algolia', ?, 'stored-by-an-older-version', 'draft', 'Staff wrote this.', ?)`,
      )
      .run(JSON.stringify(draft), now.getTime());

    const ctx = { db, now, site: content.site, publicUrl: new URL('https://trust.example/'), actor: null, ip: null, userAgent: null };
    // content/ in the new shape with Algolia in Ireland: the pending draft is that change, kept with its text
    const inIreland = content.subprocessors.map((s) => (s.id === 'algolia' ? { ...s, countries: ['IE'] } : s));
    expect(detectChanges(ctx, { ...content, subprocessors: inIreland })).toEqual({ drafted: [], superseded: 0 });
    const kept = db.$client.prepare(`SELECT status, intro, details FROM change_notices`).all() as {
      status: string;
      intro: string;
      details: string;
    }[];
    expect(kept.map((k) => [k.status, k.intro])).toEqual([['draft', 'Staff wrote this.']]);
    const facts = noticeFacts({ diff: JSON.parse(kept[0]?.details ?? '{}'), effectiveOn: '2026-07-01', objectionDeadline: null });
    expect(facts).toContainEqual({ label: 'Location', value: 'Ireland' });
    expect(facts).toContainEqual({ label: 'Location before', value: 'United States, Germany' });
    expect(fingerprint(draft as never)).toBe(fingerprint(await detectChangesDiff(inIreland)));
    // content/ in the new shape, places as published: nothing to tell anyone (the Ireland draft is withdrawn)
    expect(detectChanges(ctx, content)).toEqual({ drafted: [], superseded: 1 });
    expect(detectChanges(ctx, content)).toEqual({ drafted: [], superseded: 0 });

    // the published list (the free-text baseline) reads as places: filter, labels and trust.json
    const published = (await currentSubprocessors(database, now)).items;
    const germany = filterSubprocessors(published, new URLSearchParams('location=Germany'));
    expect(germany.items.map((s) => s.id).sort()).toEqual(['algolia', 'amazon-web-services', 'cloudflare', 'posthog', 'supabase']);
    const trust = buildTrustDocument({
      site: content.site,
      docs: content.docs,
      subprocessors: published,
      publicUrl: new URL('https://trust.example/'),
    });
    const aws = trust.subprocessors.find((s) => s.id === 'amazon-web-services');
    expect(aws).toMatchObject({ location: 'United States, Germany, Ireland', countries: ['US', 'DE', 'IE'], regions: [] });
    expect(trust.subprocessors.find((s) => s.id === 'cloudflare')).toMatchObject({
      location: 'Worldwide',
      countries: [],
      regions: ['worldwide'],
    });
    db.$client.close();

    async function detectChangesDiff(list: typeof inIreland) {
      const [diff] = diffSubprocessors(
        (await currentSubprocessors(database, now)).items.map((s) => ({ ...s, since: s.since.toISOString() })),
        storedSubprocessors(list),
      );
      if (!diff) throw new Error('no difference');
      return diff;
    }
  });
});
