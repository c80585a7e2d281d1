/**
 * Issue 17, "Component groups": a subscriber can follow a whole group
 * (subscriber_topics.component = `group:<id>`). The fan-out (one INSERT …
 * SELECT, src/stores/notifications.ts) reaches them when any service an
 * incident names is in the group, and not otherwise; the console's count of
 * whom a notice reaches agrees. The sign-up form offers each group and
 * stores the choice; a group that does not exist is refused by name.
 * On each engine: SQLite, and PostgreSQL (row-level security) when
 * CANDOR_TEST_POSTGRES_URL is set.
 */
import { join } from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { declareIncident, type IncidentContext, previewIncidentUpdate } from '../../src/core/incidents/incidents.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { ROOT } from '../helpers/server.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const content = loadContent(join(ROOT, 'content'));

describe.each(enginesUnderTest())('fan-out to a group on $name', (engine) => {
  let db: Database;
  let close: () => Promise<void>;
  let ctx: IncidentContext;
  let groupSubscriber = 0;
  let webAppSubscriber = 0;

  beforeAll(async () => {
    const opened = await engine.open();
    db = bindAuditKeys(opened.database, auditKeyring('group-subscriptions-test-secret'));
    close = opened.close;
    const responder = await staffMemberOn(db, 'responder', { enrolled: true });
    ctx = {
      database: db,
      now: new Date(),
      site: content.site,
      components: content.components,
      publicUrl: new URL('https://trust.example/'),
      actor: { id: responder, label: 'Responder' },
      ip: null,
      userAgent: null,
    };
    [groupSubscriber = 0] = await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'email',
      topic: 'incidents',
      component: 'group:ai',
      address: () => 'ai-team@customer.example',
    });
    [webAppSubscriber = 0] = await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'email',
      topic: 'incidents',
      component: 'web-app',
      address: () => 'web-team@customer.example',
    });
  });
  afterAll(async () => {
    await close?.();
  });

  /** The recipients (by address id) a notification was enqueued for. */
  const recipientsOf = (notificationId: number | null) =>
    db.read(async (r) => {
      if (notificationId === null) return [];
      const q = reading(r);
      const { deliveries: d, recipients: rc } = q.t;
      const rows = await q.db
        .select({ subscriberId: rc.subscriberId })
        .from(d)
        .innerJoin(rc, eq(rc.id, d.recipientId))
        .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, notificationId)))
        .orderBy(asc(rc.subscriberId));
      return rows.map((row) => row.subscriberId);
    });

  const declare = async (component: string) => {
    const result = await declareIncident(
      { ...ctx, now: new Date() },
      {
        kind: 'outage',
        severity: 'minor',
        title: `${component} is slow`,
        status: 'investigating',
        body: 'We are looking into it.',
        components: { [component]: 'degraded' },
        confirmPersonalData: false,
        organisations: [],
        publicNotice: false,
        breach: null,
        window: null,
      },
    );
    if (!result.ok) throw new Error(result.message);
    return result;
  };

  it('the composer’s preview counts the group’s subscriber for a service in it', async () => {
    const draft = { id: null, kind: 'outage' as const, severity: 'minor' as const, title: 'Draft', organisations: null, window: null };
    const preview = (component: string) =>
      previewIncidentUpdate({ ...ctx, now: new Date() }, draft, {
        status: 'investigating',
        body: 'We are looking into it.',
        components: { [component]: 'degraded' },
        confirmPersonalData: false,
      });
    expect((await preview('ai-assistant')).recipients.email).toBe(1);
    expect((await preview('search')).recipients.email).toBe(0);
  });

  it('a subscriber of group AI gets an incident on ai-indexing', async () => {
    const declared = await declare('ai-indexing');
    expect(await recipientsOf(declared.notificationId)).toEqual([groupSubscriber]);
    expect(declared.deliveries).toBe(1);
  });

  it('and not one on web-app, which reaches the subscriber of web-app alone', async () => {
    const declared = await declare('web-app');
    expect(await recipientsOf(declared.notificationId)).toEqual([webAppSubscriber]);
  });

  it('an incident naming services of two groups reaches each subscriber once', async () => {
    const result = await declareIncident(
      { ...ctx, now: new Date() },
      {
        kind: 'outage',
        severity: 'major',
        title: 'Everything is slow',
        status: 'investigating',
        body: 'We are looking into it.',
        components: { 'ai-assistant': 'degraded', 'ai-indexing': 'degraded', 'web-app': 'degraded' },
        confirmPersonalData: false,
        organisations: [],
        publicNotice: false,
        breach: null,
        window: null,
      },
    );
    if (!result.ok) throw new Error(result.message);
    expect(await recipientsOf(result.notificationId)).toEqual([groupSubscriber, webAppSubscriber].sort((a, b) => a - b));
  });
});

describe.each(serverEnginesUnderTest())('following a group from /subscribe on $name', (engine) => {
  let running: ServerOnEngine;

  beforeAll(async () => {
    running = await engine.start();
  });
  afterAll(async () => {
    await running?.stop();
  });

  const subscribe = async (components: string[]) => {
    const body = new URLSearchParams({ channel: 'email', address: 'ops@customer.example', topics: 'incidents' });
    for (const c of components) body.append('components', c);
    const client = new ConsoleClient(running.server.url);
    const res = await fetch(`${running.server.url}/subscribe?_action=subscribe`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: running.server.url,
        'sec-fetch-site': 'same-origin',
        'x-test-client': client.base,
      },
      body: body.toString(),
    });
    return res.text();
  };

  it('offers each group whole, and stores the choice as group:<id>', async () => {
    const page = await (await fetch(`${running.server.url}/subscribe`)).text();
    for (const [id, name] of [
      ['core', 'Core'],
      ['ai', 'AI'],
      ['integrations', 'Integrations'],
    ])
      expect(page).toMatch(new RegExp(`<input type="checkbox" name="components" value="group:${id}"[^>]*> All of ${name}`));
    expect(await subscribe(['group:nope'])).toContain('There is no service called &quot;group:nope&quot;');
    expect(await subscribe(['group:ai', 'web-app'])).toContain('Check your inbox');
    const topics = await readRows(running.database, async (q) => {
      const t = q.t.subscriberTopics;
      return q.db
        .select({ topic: t.topic, component: t.component })
        .from(t)
        .where(eq(t.trustCenterId, q.trustCenter))
        .orderBy(asc(t.component));
    });
    expect(topics).toEqual([
      { topic: 'incidents', component: 'group:ai' },
      { topic: 'incidents', component: 'web-app' },
    ]);
  });
});
