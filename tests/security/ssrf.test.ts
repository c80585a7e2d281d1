/**
 * Server-side request forgery through the addresses customers and staff
 * give Candor to call: webhook URLs at sign-up, Slack incoming webhooks,
 * the console's test message, and deliveries to an endpoint whose name
 * later points inside the network (DNS rebinding). A canary listens on
 * every loopback address (IPv4 and IPv6) at one port; each forged target
 * aims at it, and it must never see a connection. On each engine
 * (tests/helpers/engine-server.ts): SQLite, and PostgreSQL when
 * CANDOR_TEST_POSTGRES_URL is set; the canary is shared and must stay silent
 * throughout.
 */
import { lookup } from 'node:dns/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { Client, pageText, until } from '../helpers/security.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

let canary: Server;
let canaryPort = 0;
const canaryHits: string[] = [];
let redirector: HttpServer;
let redirectorHost = '';
let receiver: WebhookReceiver;
/** a name that is not written like a local one but resolves to a loopback or private address here, if any */
let localName: string | null = null;

const listen = (srv: Server | HttpServer, host: string) =>
  new Promise<number>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const address = srv.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });

beforeAll(async () => {
  canary = createServer((socket) => {
    canaryHits.push(socket.remoteAddress ?? '?');
    socket.destroy();
  });
  // '::' takes IPv4 connections too (as ::ffff:a.b.c.d)
  canaryPort = await listen(canary, '::');
  // an endpoint we allow (CANDOR_WEBHOOK_ALLOW_HOSTS) that redirects to the canary: redirects are never followed
  redirector = createHttpServer((req, res) => {
    const target = new URL(req.url ?? '/', 'http://x').searchParams.get('to') ?? `http://127.0.0.1:${canaryPort}/`;
    res.writeHead(Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 307), { location: target });
    res.end();
  });
  redirectorHost = `127.0.0.1:${await listen(redirector, '127.0.0.1')}`;
  receiver = await startWebhookReceiver();
  for (const name of [hostname(), 'localhost.', 'ip6-localhost']) {
    const addresses = await lookup(name, { all: true }).catch(() => []);
    if (
      addresses.length > 0 &&
      addresses.every((a) => /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|fe80:|f[cd])/.test(a.address))
    ) {
      localName = name;
      break;
    }
  }
});
afterAll(async () => {
  await receiver?.close();
  await new Promise((r) => canary?.close(r));
  await new Promise((r) => redirector?.close(r));
});

/** Literal addresses and schemes: refused before any connection is tried, with the reason. */
const literal = (port: number) => [
  `https://127.0.0.1:${port}/`,
  `https://127.1:${port}/`,
  `https://2130706433:${port}/`,
  `https://0x7f000001:${port}/`,
  `https://0177.0.0.1:${port}/`,
  `https://0x7f.0.0.1:${port}/`,
  `https://0:${port}/`,
  `https://0.0.0.0:${port}/`,
  `https://[::1]:${port}/`,
  `https://[::]:${port}/`,
  `https://[0:0:0:0:0:0:0:1]:${port}/`,
  `https://[::ffff:127.0.0.1]:${port}/`,
  `https://[::ffff:7f00:1]:${port}/`,
  `https://[::127.0.0.1]:${port}/`,
  `https://[2002:7f00:1::]:${port}/`,
  `https://[64:ff9b::127.0.0.1]:${port}/`,
  'https://169.254.169.254/latest/meta-data/iam/security-credentials/',
  'https://[::ffff:169.254.169.254]/latest/meta-data/',
  'https://[fd00:ec2::254]/latest/meta-data/',
  'https://100.100.100.200/latest/meta-data/',
  'https://10.0.0.1/',
  'https://172.16.0.1/',
  'https://172.31.255.255/',
  'https://192.168.1.1/',
  'https://100.64.0.1/',
  'https://198.18.0.1/',
  'https://224.0.0.1/',
  'https://255.255.255.255/',
  'https://[fe80::1]/',
  'https://[fc00::1]/',
  'https://[fec0::1]/',
  'https://[ff02::1]/',
  `https://localhost:${port}/`,
  `https://LOCALHOST:${port}/`,
  `https://api.localhost:${port}/`,
  'https://metadata.google.internal/computeMetadata/v1/',
  'https://printer.local/',
  `https://example.com@127.0.0.1:${port}/`,
  `https://127.0.0.1:${port}#@example.com/`,
  `https://127.0.0.1:${port}\\@example.com/`,
  'https://user:password@example.com/hook',
  'http://example.com/hook',
  `http://127.0.0.1:${port}/`,
  'file:///etc/passwd',
  `gopher://127.0.0.1:${port}/_POST`,
  `ftp://127.0.0.1:${port}/`,
  `dict://127.0.0.1:${port}/`,
  `ldap://127.0.0.1:${port}/`,
  'javascript:alert(1)',
  'data:text/plain,hello',
  `//127.0.0.1:${port}/`,
];

/** Names that may or may not resolve here: wherever they point, the canary sees nothing and nobody is subscribed. */
const names = (port: number) => [
  `https://localhost.:${port}/`,
  `https://127.0.0.1.nip.io:${port}/`,
  `https://localtest.me:${port}/`,
  `https://7f000001.c0a80001.rbndr.us:${port}/`,
  `https://spoofed.burpcollaborator.net:${port}/`,
];

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: { ...providerEnv({ port, testKeys: true }), CANDOR_WEBHOOK_ALLOW_HOSTS: `${redirectorHost},${new URL(receiver.url).host}` },
    });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
  });

  let address = 0;
  /** The public sign-up form, each time from another address (sign-ups are limited per address). */
  const subscribe = (channel: 'webhook' | 'slack-webhook' | 'teams' | 'discord', url: string) =>
    new Client(server.url, `127.0.50.${(++address % 250) + 1}`).post('/subscribe?_action=subscribe', {
      channel,
      address: url,
      topics: 'incidents',
    });
  const webhookRecipients = () =>
    readRows(db, (q) =>
      q.db.$count(q.t.recipients, and(eq(q.t.recipients.trustCenterId, q.trustCenter), eq(q.t.recipients.channel, 'webhook'))),
    );

  describe('webhook URLs given at sign-up', () => {
    it('a permitted endpoint is subscribed (the control: refusals below are not a broken setup)', async () => {
      const res = await subscribe('webhook', `${receiver.url}/hook`);
      expect(pageText(res.body)).toContain('Your endpoint answered our signed event');
      expect(await webhookRecipients()).toBe(1);
    });

    it.each(literal(0).map((_, i) => i))('refuses literal internal target #%s before connecting', async (i) => {
      const url = literal(canaryPort)[i] ?? '';
      const res = await subscribe('webhook', url);
      const shown = pageText(res.body);
      expect(shown, url).not.toContain('Your endpoint answered');
      expect(shown, url).toMatch(
        /cannot receive our webhooks: it (points to a private, loopback or link-local address|points to a local name|must use https:\/\/|must not contain credentials|not a URL)/,
      );
    });

    it('refuses names that resolve inside, whether at sign-up or by rebinding later', async () => {
      for (const url of names(canaryPort)) {
        const shown = pageText((await subscribe('webhook', url)).body);
        expect(shown, url).not.toContain('Your endpoint answered');
      }
      if (localName) {
        const shown = pageText((await subscribe('webhook', `https://${localName}:${canaryPort}/`)).body);
        // refused, without telling how the name resolved: that would map the inside of the network
        expect(shown).toContain('Your endpoint did not confirm: it is not allowed or could not be reached');
        expect(shown).not.toMatch(/resolve|private|\b127\.\d|::1|\b10\.\d|192\.168\./i);
        expect(server.output()).toMatch(
          new RegExp(`webhook verification to ${localName.replaceAll('.', '\\.')}:${canaryPort} failed: .*private address`),
        );
      } else
        console.warn(
          `[ssrf] no name here resolves to a loopback or private address (tried ${hostname()}); the connect-time check is only covered by literal addresses`,
        );
    });

    it('never follows a redirect, even from an endpoint it may call', async () => {
      for (const status of [301, 302, 303, 307, 308]) {
        for (const to of [`http://127.0.0.1:${canaryPort}/`, `http://[::1]:${canaryPort}/`, 'http://169.254.169.254/latest/meta-data/']) {
          const res = await subscribe('webhook', `http://${redirectorHost}/?status=${status}&to=${encodeURIComponent(to)}`);
          expect(pageText(res.body)).toContain(`it answered HTTP ${status}`);
        }
      }
    });

    it('Slack incoming webhooks go to hooks.slack.com and nowhere else', async () => {
      for (const url of [
        `https://127.0.0.1:${canaryPort}/services/T/B/X`,
        `https://hooks.slack.com.127.0.0.1.nip.io:${canaryPort}/services/T/B/X`,
        `https://hooks.slack.com@127.0.0.1:${canaryPort}/services/T/B/X`,
        `https://127.0.0.1:${canaryPort}#hooks.slack.com/services/T/B/X`,
        'http://hooks.slack.com/services/T/B/X',
        `https://[::1]:${canaryPort}/services/T/B/X`,
        'https://hooks.slack.com.evil.example/services/T/B/X',
      ]) {
        expect(pageText((await subscribe('slack-webhook', url)).body), url).toContain('Enter a Slack incoming-webhook URL');
      }
    });

    it('Teams workflow and Discord webhook URLs go to the hosts of Microsoft and Discord and nowhere else', async () => {
      for (const url of [
        `https://127.0.0.1:${canaryPort}/workflows/abc/triggers/manual/paths/invoke`,
        `https://prod-01.westus.logic.azure.com.127.0.0.1.nip.io:${canaryPort}/workflows/abc`,
        `https://prod-01.westus.logic.azure.com@127.0.0.1:${canaryPort}/workflows/abc`,
        'http://prod-01.westus.logic.azure.com/workflows/abc',
        'https://logic.azure.com.evil.example/workflows/abc',
        'https://prod-01.westus.logic.azure.com/not-a-workflow',
      ]) {
        expect(pageText((await subscribe('teams', url)).body), url).toContain('Enter a Microsoft Teams Workflows webhook URL');
      }
      for (const url of [
        `https://127.0.0.1:${canaryPort}/api/webhooks/123/abcdefghijklmnopqrstuvwxyz`,
        `https://discord.com.127.0.0.1.nip.io:${canaryPort}/api/webhooks/123/abcdefghijklmnopqrstuvwxyz`,
        `https://discord.com@127.0.0.1:${canaryPort}/api/webhooks/123/abcdefghijklmnopqrstuvwxyz`,
        'http://discord.com/api/webhooks/123/abcdefghijklmnopqrstuvwxyz',
        'https://discord.com.evil.example/api/webhooks/123/abcdefghijklmnopqrstuvwxyz',
        'https://discord.com/api/oauth2/authorize',
      ]) {
        expect(pageText((await subscribe('discord', url)).body), url).toContain('Enter a Discord webhook URL');
      }
    });

    it('subscribed none of them, and the canary saw no connection', async () => {
      expect(await webhookRecipients()).toBe(1);
      expect(canaryHits).toEqual([]);
    });
  });

  describe('the console’s test message', () => {
    it('refuses internal targets, and a name that resolves inside is suppressed at delivery', async () => {
      const admin = new Client(server.url).setCookie('candor_session', (await signedInStaffOn(db, 'admin')).token);
      for (const url of literal(canaryPort).slice(0, 16)) {
        const res = await admin.post('/console/settings?_action=sendTestMessage', { channel: 'webhook', address: url });
        expect(pageText(res.body), url).toMatch(/This URL cannot be used: it/);
      }
      for (const url of [`https://127.0.0.1:${canaryPort}/services/x`, `https://[::1]:${canaryPort}/`]) {
        const res = await admin.post('/console/settings?_action=sendTestMessage', { channel: 'slack', address: url });
        expect(pageText(res.body), url).toContain('Enter a Slack incoming-webhook URL');
      }
      if (localName) {
        const res = await admin.post('/console/settings?_action=sendTestMessage', {
          channel: 'webhook',
          address: `https://${localName}:${canaryPort}/`,
        });
        expect(res.status).toBeLessThan(400);
        await until(
          async () =>
            (
              await readRows(db, (q) =>
                q.db
                  .select({ id: q.t.deliveries.id })
                  .from(q.t.deliveries)
                  .where(
                    and(
                      eq(q.t.deliveries.trustCenterId, q.trustCenter),
                      eq(q.t.deliveries.channel, 'webhook'),
                      inArray(q.t.deliveries.status, ['suppressed', 'failed']),
                    ),
                  ),
              )
            ).length > 0,
          'the refused delivery',
        );
      }
      expect(canaryHits).toEqual([]);
    });
  });

  describe('deliveries to a subscribed endpoint', () => {
    it('check the address at connect time: a name that now points inside is suppressed, not called', async () => {
      if (!localName) {
        console.warn('[ssrf] no local name to rebind; skipped');
        return;
      }
      const [id = 0] = await addSubscribersTo(db, TEST_KEYS, {
        count: 1,
        channel: 'webhook',
        address: () => `https://${localName}:${canaryPort}/hook`,
        secret: () => `whsec_${Buffer.from('rebinding-test-secret-0123456789').toString('base64')}`,
      });
      const { notificationId } = await db.transaction((tx) =>
        enqueueNotification(
          tx,
          {
            kind: 'test',
            title: 'Rebinding',
            content: { webhook: { type: 'test', data: {} } },
            audience: { kind: 'recipients', ids: [id] },
          },
          new Date(),
        ),
      );
      const delivery = async () =>
        (
          await readRows(db, (q) =>
            q.db
              .select({ status: q.t.deliveries.status, last_error: q.t.deliveries.lastError })
              .from(q.t.deliveries)
              .where(and(eq(q.t.deliveries.trustCenterId, q.trustCenter), eq(q.t.deliveries.notificationId, notificationId))),
          )
        )[0];
      await until(async () => (await delivery())?.status === 'suppressed', 'the suppressed delivery');
      expect((await delivery())?.last_error).toMatch(/private address/);
      const recipient = await readRows(db, (q) =>
        q.db
          .select({ status: q.t.recipients.status })
          .from(q.t.recipients)
          .where(and(eq(q.t.recipients.trustCenterId, q.trustCenter), eq(q.t.recipients.id, id))),
      );
      expect(recipient).toEqual([{ status: 'suppressed' }]);
      expect(canaryHits).toEqual([]);
    });
  });
});
