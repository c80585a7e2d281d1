/**
 * Issue 17, "Statuspage-compatible public API": every /api/v2 document a
 * running server answers is checked against JSON Schemas (draft 2020-12) of
 * Statuspage's published v2 shapes (tests/contracts/statuspage-v2/), with an
 * open incident, a resolved one, maintenance ahead and under way, groups,
 * and a data breach without a public notice, which must be absent from every
 * document, its count and the state of the service it names. A degraded
 * service reads `degraded_performance` and the page's indicator `minor`.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { type DeclareInput, declareIncident, type IncidentContext, postUpdate } from '../../src/core/incidents/incidents.ts';
import { STATUSPAGE_LIST_LIMIT } from '../../src/core/incidents/statuspage.ts';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { ROOT } from '../helpers/server.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const CONTRACTS = join(ROOT, 'tests/contracts/statuspage-v2');
const DOCUMENTS = [
  'summary',
  'status',
  'components',
  'incidents',
  'incidents/unresolved',
  'scheduled-maintenances',
  'scheduled-maintenances/upcoming',
  'scheduled-maintenances/active',
] as const;

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
for (const file of readdirSync(CONTRACTS).filter((f) => f.endsWith('.schema.json')))
  ajv.addSchema(JSON.parse(readFileSync(join(CONTRACTS, file), 'utf8')) as object);
const validatorOf = (name: (typeof DOCUMENTS)[number]) => {
  const validate = ajv.getSchema(`https://candor.example/contracts/statuspage-v2/${name.replace('/', '-')}.schema.json`);
  if (!validate) throw new Error(`no schema for ${name}`);
  return validate;
};

interface Component {
  id: string;
  name: string;
  status: string;
  group: boolean;
  group_id: string | null;
  components?: string[];
}
interface Incident {
  id: string;
  name: string;
  status: string;
  impact: string;
  resolved_at: string | null;
  scheduled_for?: string;
  scheduled_until?: string;
  incident_updates: {
    status: string;
    body: string;
    affected_components: { code: string; old_status: string; new_status: string }[] | null;
  }[];
  components: Component[];
}
interface Documents {
  summary: {
    status: { indicator: string; description: string };
    components: Component[];
    incidents: Incident[];
    scheduled_maintenances: Incident[];
  };
  status: { status: { indicator: string; description: string } };
  components: { components: Component[] };
  incidents: { incidents: Incident[] };
  'incidents/unresolved': { incidents: Incident[] };
  'scheduled-maintenances': { scheduled_maintenances: Incident[] };
  'scheduled-maintenances/upcoming': { scheduled_maintenances: Incident[] };
  'scheduled-maintenances/active': { scheduled_maintenances: Incident[] };
}

const content = loadContent(join(ROOT, 'content'));
const HOUR = 3_600_000;
const BREACH_TITLE = 'Exported contacts reached the wrong workspace';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let db: Database;
  let ctx: () => IncidentContext;

  beforeAll(async () => {
    running = await engine.start();
    db = running.database;
    const responder = await staffMemberOn(db, 'responder', { enrolled: true });
    ctx = () => ({
      database: db,
      now: new Date(),
      site: content.site,
      components: content.components,
      publicUrl: new URL(`${running.server.url}/`),
      actor: { id: responder, label: 'Responder' },
      ip: null,
      userAgent: null,
    });
  });
  afterAll(async () => {
    await running?.stop();
  });

  const declare = async (input: Partial<DeclareInput> & Pick<DeclareInput, 'title' | 'components'>): Promise<number> => {
    const result = await declareIncident(ctx(), {
      kind: 'outage',
      severity: 'minor',
      status: 'investigating',
      body: 'We are looking into it.',
      confirmPersonalData: false,
      organisations: [],
      publicNotice: false,
      breach: null,
      window: null,
      ...input,
    });
    if (!result.ok) throw new Error(result.message);
    return result.incidentId;
  };
  const read = async <N extends (typeof DOCUMENTS)[number]>(name: N): Promise<{ body: Documents[N]; text: string; res: Response }> => {
    const res = await fetch(`${running.server.url}/api/v2/${name}.json`);
    const text = await res.text();
    return { body: JSON.parse(text) as Documents[N], text, res };
  };

  let open = 0;
  let resolved = 0;
  let breach = 0;
  let upcoming = 0;
  let active = 0;

  it('a degraded service is degraded_performance, its group too, and the indicator is minor', async () => {
    open = await declare({ title: 'Search answers slowly', components: { search: 'degraded' } });
    const { body: status } = await read('status');
    expect(status.status).toEqual({ indicator: 'minor', description: 'Partially Degraded Service' });
    const { body } = await read('components');
    const search = body.components.find((c) => c.id === 'search');
    expect(search).toMatchObject({ status: 'degraded_performance', group: false, group_id: 'group:core' });
    const core = body.components.find((c) => c.id === 'group:core');
    expect(core).toMatchObject({ name: 'Core', group: true, status: 'degraded_performance', group_id: null });
    expect(core?.components).toEqual(content.components.filter((c) => c.group === 'Core').map((c) => c.id));
    expect(body.components.find((c) => c.id === 'group:ai')).toMatchObject({
      status: 'operational',
      components: ['ai-assistant', 'ai-indexing'],
    });
    // a group and a service of the same name are two components
    expect(body.components.filter((c) => c.name === 'Integrations').map((c) => c.id)).toEqual(['group:integrations', 'integrations']);
  });

  it('/status rolls each group up into its worst state, open while a member is not operational', async () => {
    const page = await (await fetch(`${running.server.url}/status`)).text();
    const group = (id: string) =>
      new RegExp(`<details class="service-group" data-group="${id}" data-state="([a-z_]+)"( open)?[^>]*>[\\s\\S]*?</summary>`).exec(page);
    const core = group('core');
    expect(core?.[1]).toBe('degraded');
    expect(core?.[2]).toBe(' open');
    expect(
      core?.[0]
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
    ).toBe('Core 7 services Degraded performance');
    const ai = group('ai');
    expect(ai?.[1]).toBe('operational');
    expect(ai?.[2]).toBeUndefined();
    expect(
      ai?.[0]
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
    ).toBe('AI 2 services Operational');
  });

  it('a breach without a public notice is in no document, no count and no service state', async () => {
    breach = await declare({
      kind: 'breach',
      severity: 'critical',
      title: BREACH_TITLE,
      components: { 'web-app': 'major_outage' },
      body: 'A misconfigured export sent contact lists to another workspace.',
      breach: {
        awareAt: new Date(Date.now() - HOUR),
        occurredAt: null,
        nature: 'Contact lists exported to the wrong workspace.',
        subjects: 'About 40 customer contacts.',
        records: 'Names and work email addresses.',
        consequences: 'Unwanted contact.',
        measures: 'The export was deleted.',
      },
    });
    for (const name of DOCUMENTS) {
      const { text } = await read(name);
      expect(text, name).not.toContain(BREACH_TITLE);
      expect(text, name).not.toContain(`"id": "${breach}"`);
      expect(text, name).not.toContain(`incidents/${breach}"`);
    }
    const { body } = await read('summary');
    expect(body.components.find((c) => c.id === 'web-app')?.status).toBe('operational');
    expect(body.status.indicator).toBe('minor');
    expect(body.incidents.map((i) => i.id)).toEqual([String(open)]);
  });

  it('a resolved incident is listed with its updates, not among the unresolved', async () => {
    resolved = await declare({ title: 'AI indexing is delayed', severity: 'major', components: { 'ai-indexing': 'partial_outage' } });
    const update = await postUpdate(ctx(), resolved, {
      status: 'resolved',
      body: 'Indexing has caught up.',
      components: {},
      confirmPersonalData: false,
    });
    if (!update.ok) throw new Error(update.message);
    const { body } = await read('incidents');
    expect(body.incidents.map((i) => i.id)).toEqual([String(resolved), String(open)]);
    const done = body.incidents[0];
    expect(done).toMatchObject({ name: 'AI indexing is delayed', status: 'resolved', impact: 'major' });
    expect(done?.resolved_at).not.toBeNull();
    expect(done?.incident_updates.map((u) => u.status)).toEqual(['resolved', 'investigating']);
    expect(done?.incident_updates[1]?.affected_components).toEqual([
      { code: 'ai-indexing', name: 'AI indexing', old_status: 'operational', new_status: 'partial_outage' },
    ]);
    expect((await read('incidents/unresolved')).body.incidents.map((i) => i.id)).toEqual([String(open)]);
    expect((await read('components')).body.components.find((c) => c.id === 'ai-indexing')?.status).toBe('operational');
  });

  it('an unresolved incident raises the indicator to its impact above what its services say, and resolving it lowers it again', async () => {
    // the service is only degraded (minor), the incident's impact is critical
    const quiet = await declare({ title: 'Some exports fail', severity: 'critical', components: { community: 'degraded' }, notify: false });
    for (const name of ['status', 'summary'] as const) {
      expect((await read(name)).body.status, name).toEqual({ indicator: 'critical', description: 'Major System Outage' });
    }
    const done = await postUpdate(ctx(), quiet, {
      status: 'resolved',
      body: 'Exports work.',
      components: {},
      confirmPersonalData: false,
      notify: false,
    });
    if (!done.ok) throw new Error(done.message);
    // back to what the degraded service (and the open minor incident) say
    expect((await read('status')).body.status).toEqual({ indicator: 'minor', description: 'Partially Degraded Service' });
  });

  it('maintenance ahead is upcoming (scheduled), maintenance under way is active (in_progress), both in the summary', async () => {
    const now = Date.now();
    upcoming = await declare({
      kind: 'maintenance',
      title: 'Database upgrade',
      components: { 'public-api': 'under_maintenance' },
      body: 'We will upgrade the database.',
      window: { startsAt: new Date(now + 48 * HOUR), endsAt: new Date(now + 49 * HOUR) },
    });
    active = await declare({
      kind: 'maintenance',
      title: 'Notification queue migration',
      components: { notifications: 'under_maintenance' },
      body: 'We are moving the notification queue.',
      window: { startsAt: new Date(now - 60_000), endsAt: new Date(now + 2 * HOUR) },
    });
    const ahead = (await read('scheduled-maintenances/upcoming')).body.scheduled_maintenances;
    expect(ahead.map((m) => [m.id, m.status, m.impact])).toEqual([[String(upcoming), 'scheduled', 'maintenance']]);
    expect(ahead[0]?.scheduled_for).toBe(new Date(now + 48 * HOUR).toISOString());
    expect(ahead[0]?.scheduled_until).toBe(new Date(now + 49 * HOUR).toISOString());
    const under = (await read('scheduled-maintenances/active')).body.scheduled_maintenances;
    expect(under.map((m) => [m.id, m.status])).toEqual([[String(active), 'in_progress']]);
    const { body } = await read('summary');
    expect(body.scheduled_maintenances.map((m) => m.id)).toEqual([String(active), String(upcoming)]);
    expect(body.components.find((c) => c.id === 'notifications')?.status).toBe('under_maintenance');
    expect(body.components.find((c) => c.id === 'public-api')?.status).toBe('operational');
    // maintenance is not an incident
    expect(body.incidents.map((i) => i.id)).toEqual([String(open)]);
    expect((await read('scheduled-maintenances')).body.scheduled_maintenances.map((m) => m.id).sort()).toEqual(
      [String(upcoming), String(active)].sort(),
    );
  });

  it('an unresolved incident stays unresolved and in the summary however many newer incidents were listed after it', async () => {
    for (let i = 0; i < STATUSPAGE_LIST_LIMIT; i++) {
      const id = await declare({ title: `Short blip ${i}`, components: { community: 'degraded' }, notify: false });
      const done = await postUpdate(ctx(), id, {
        status: 'resolved',
        body: 'Fine again.',
        components: {},
        confirmPersonalData: false,
        notify: false,
      });
      if (!done.ok) throw new Error(done.message);
    }
    const listed = (await read('incidents')).body.incidents.map((i) => i.id);
    // the 50 most recent, and the open one older than all of them
    expect(listed).toHaveLength(STATUSPAGE_LIST_LIMIT + 1);
    expect(listed.at(-1)).toBe(String(open));
    expect((await read('incidents/unresolved')).body.incidents.map((i) => i.id)).toEqual([String(open)]);
    expect((await read('summary')).body.incidents.map((i) => i.id)).toEqual([String(open)]);
  }, 120_000);

  it.each(DOCUMENTS)('/api/v2/%s.json matches Statuspage’s published shape', async (name) => {
    const { body, res } = await read(name);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cache-control')).toBe('public, max-age=15');
    const validate = validatorOf(name);
    const valid = validate(body);
    expect(validate.errors ?? [], name).toEqual([]);
    expect(valid).toBe(true);
    expect(JSON.stringify(body)).not.toContain(BREACH_TITLE);
  });
});
