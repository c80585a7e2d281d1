/**
 * An installation started before structured locations: its database holds
 * the published subprocessor list with free-text locations. Starting the
 * server on content/ written with countries and regions drafts no notice
 * (the places are the same), `changes detect` finds nothing, and the public
 * list, its filter, trust.json and subprocessors.json read the published
 * entries as places.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openDatabase } from '../../db/client.ts';
import { contentSnapshots } from '../../db/schema.ts';
import { hashJson } from '../../src/core/changes/snapshot.ts';
import { ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';

const dataDir = tempDir();
let server: RunningServer;

beforeAll(async () => {
  const rows = parse(readFileSync(join(ROOT, 'tests/fixtures/subprocessors-free-text-locations.yaml'), 'utf8')) as Record<
    string,
    unknown
  >[];
  const published = rows.map((r) => ({ ...r, since: new Date(String(r.since)).toISOString() }));
  const db = openDatabase(join(dataDir, 'candor.db'));
  db.insert(contentSnapshots)
    .values({ kind: 'subprocessors', data: published, hash: hashJson(published), publishedAt: new Date('2026-01-05T10:00:00Z') })
    .run();
  db.$client.close();
  server = await startServer({ dataDir });
});
afterAll(async () => {
  await server?.stop();
});

describe('moving subprocessors.yaml to countries and regions', () => {
  it('drafts no change notice at start, nor when detecting again', async () => {
    expect(server.output()).not.toContain('change detected');
    const db = openDatabase(join(dataDir, 'candor.db'));
    const notices = db.$client.prepare('SELECT count(*) AS n FROM change_notices').get() as { n: number };
    db.$client.close();
    expect(notices.n).toBe(0);
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'src/cli.ts'), 'changes', 'detect'], {
      cwd: ROOT,
      env: { ...process.env, CANDOR_DATA_DIR: dataDir },
    });
    expect(stdout).toContain('no new changes');
  });

  it('filters the published list by place and names the places', async () => {
    const html = await (await fetch(`${server.url}/subprocessors?location=Germany`)).text();
    const ids = [...html.matchAll(/<tr data-id="([^"]+)"/g)].map((m) => m[1]).sort();
    expect(ids).toEqual(['algolia', 'amazon-web-services', 'cloudflare', 'posthog', 'supabase']);
    expect(html).toMatch(/<td data-label="Location" class="location">United States, Germany, Ireland<\/td>/);
    expect(html).toMatch(/<td data-label="Location" class="location">Worldwide<\/td>/);
  });

  it('serves the published entries with countries, regions and location in words', async () => {
    const trust = (await (await fetch(`${server.url}/api/v1/trust.json`)).json()) as {
      subprocessors: { id: string; location: string; countries: string[]; regions: string[] }[];
    };
    const list = (await (await fetch(`${server.url}/api/v1/subprocessors.json`)).json()) as typeof trust;
    for (const doc of [trust, list]) {
      const aws = doc.subprocessors.find((s) => s.id === 'amazon-web-services');
      expect(aws).toMatchObject({ location: 'United States, Germany, Ireland', countries: ['US', 'DE', 'IE'], regions: [] });
      expect(doc.subprocessors.find((s) => s.id === 'mistral-ai')).toMatchObject({ location: 'France', countries: ['FR'] });
    }
  });
});
