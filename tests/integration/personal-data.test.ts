/**
 * What is forgotten stays forgotten. Records of sending past their
 * retention (site.yaml `policies.retention`) are purged when the server
 * starts; a subscriber who erases their data, or an address unsubscribed in
 * one click, leaves nothing behind: not in any column of any table (in
 * clear or sealed; its blind index only in removed_addresses, which keeps
 * an import from adding it back), not in a backup taken afterwards,
 * not in the server's output, not in the free space of the database file.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set (there the
 * backup is pg_dump's archive, read back as text with pg_restore; the free
 * space of the file is SQLite's alone).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { and, asc, eq, isNotNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { hitLimitNow } from '../../src/core/auth/rate-limit.ts';
import { backupKey, readEncrypted, readHeader } from '../../src/core/backup/format.ts';
import { recipientToken } from '../../src/core/notify/links.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import { addRecipient, addressHash } from '../../src/core/notify/recipients.ts';
import { subscribeLimits } from '../../src/core/subscriptions/subscribe.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, tempDir } from '../helpers/server.ts';

const ERASED = 'erase-me@customer.example';
const ERASED_PHONE = '+447700900123';
const LEAVER = 'leave-me@customer.example';
const STAYS = 'stay-here@customer.example';
const DAY = 86_400_000;

interface Recipient {
  id: number;
  subscriberId: number;
  address: string;
  sealed: string;
  hash: string;
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  /** what the server printed before it was restarted to run its housekeeping on the seeded data */
  let firstOutput = '';
  const dataDir = tempDir('candor-forget-');
  const scratch = tempDir('candor-forget-files-');
  const people = {} as Record<'erased' | 'phone' | 'leaver' | 'stays', Recipient>;

  async function row(id: number, address: string): Promise<Recipient> {
    const [r] = await readRows(db, (q) =>
      q.db
        .select({ subscriberId: q.t.recipients.subscriberId, sealed: q.t.recipients.address, hash: q.t.recipients.addressHash })
        .from(q.t.recipients)
        .where(and(eq(q.t.recipients.trustCenterId, q.trustCenter), eq(q.t.recipients.id, id))),
    );
    if (!r?.subscriberId) throw new Error(`no recipient ${id} of a subscriber`);
    return { id, subscriberId: r.subscriberId, address, sealed: r.sealed, hash: r.hash };
  }

  let oldDelivery = 0;
  let notificationId = 0;
  /** The ages in days of the old delivery's attempts or logged messages, oldest first. */
  const ages = (table: 'deliveryAttempts' | 'loggedMessages') =>
    readRows(db, async (q) => {
      const t = q.t[table];
      const rows = await q.db
        .select({ at: t.at })
        .from(t)
        .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.deliveryId, oldDelivery)))
        .orderBy(asc(t.at));
      return rows.map((r) => Math.round((Date.now() - r.at.getTime()) / DAY));
    });

  beforeAll(async () => {
    const port = await freePort();
    // No provider keys: email and SMS go to the log transport, which records them in the database.
    running = await engine.start({ port, dataDir, env: providerEnv({ port, testKeys: true }) });
    db = running.database;
    const now = new Date();
    const [erased = 0, leaver = 0, stays = 0] = await addSubscribersTo(db, TEST_KEYS, {
      count: 3,
      channel: 'email',
      address: (i) => [ERASED, LEAVER, STAYS][i] ?? '',
    });
    people.erased = await row(erased, ERASED);
    people.leaver = await row(leaver, LEAVER);
    people.stays = await row(stays, STAYS);
    const phone = await db.transaction((tx) =>
      addRecipient(
        tx,
        TEST_KEYS,
        { channel: 'sms', address: ERASED_PHONE, subscriberId: people.erased.subscriberId, status: 'active' },
        now,
      ),
    );
    people.phone = await row(phone.id, ERASED_PHONE);
    // staff placed the number of the one who will erase everything in a customer organisation
    await keepOrganisationOn(db, 'Erased Person’s Employer', { recipients: [phone.id] });
    // a sign-up attempt an hour ago: the per-address limit is keyed by the blind index
    await hitLimitNow(db, subscribeLimits.perAddress, addressHash(TEST_KEYS, 'email', ERASED), new Date(now.getTime() - 3_600_000 / 2));

    // An old notice: one delivery to the subscriber who will erase everything, whose provider once quoted the address back.
    oldDelivery = await writeRows(db, async (q) => {
      const ago = (days: number) => new Date(now.getTime() - days * DAY);
      const [notification] = await q.db
        .insert(q.t.notifications)
        .values({
          kind: 'incident.update',
          title: 'Old',
          content: {},
          audience: {},
          recipientCount: 1,
          createdAt: ago(200),
          trustCenterId: q.trustCenter,
        })
        .returning({ id: q.t.notifications.id });
      const [delivery] = await q.db
        .insert(q.t.deliveries)
        .values({
          notificationId: notification?.id ?? 0,
          recipientId: people.erased.id,
          channel: 'email',
          status: 'failed',
          attempts: 2,
          nextAttemptAt: ago(100),
          lastError: `Invalid \`to\` field: ${ERASED}`,
          trustCenterId: q.trustCenter,
        })
        .returning({ id: q.t.deliveries.id });
      const deliveryId = delivery?.id ?? 0;
      await q.db.insert(q.t.deliveryAttempts).values([
        { deliveryId, at: ago(100), outcome: 'retry', durationMs: 5, error: 'timeout', trustCenterId: q.trustCenter },
        {
          deliveryId,
          at: ago(10),
          outcome: 'failed',
          durationMs: 5,
          error: `Invalid \`to\` field: ${ERASED}`,
          trustCenterId: q.trustCenter,
        },
      ]);
      await q.db.insert(q.t.loggedMessages).values(
        [40, 5].map((days) => ({
          deliveryId,
          channel: 'email' as const,
          to: 'er…@customer.example',
          payload: {},
          at: ago(days),
          trustCenterId: q.trustCenter,
        })),
      );
      return deliveryId;
    });

    // The retention purge runs when the server starts: start it again on the seeded data.
    firstOutput = running.server.output();
    server = await running.restart();
  });

  afterAll(async () => {
    await running?.stop();
    for (const dir of [dataDir, scratch]) rmSync(dir, { recursive: true, force: true });
  });

  describe('retention', () => {
    it('purges delivery attempts and logged messages older than site.yaml allows when the server starts', async () => {
      // The server says it is serving before its first housekeeping has finished (on PostgreSQL that takes a few round trips).
      await until(() => server.output().includes('housekeeping: '), 'the housekeeping at start');
      expect(server.output()).toMatch(/housekeeping: .*"deliveryAttemptsRemoved":1,"loggedMessagesRemoved":1/);
      // policies.retention: attempts 90 days, logged messages 30
      expect(await ages('deliveryAttempts')).toEqual([10]);
      expect(await ages('loggedMessages')).toEqual([5]);
      // the delivery itself stays, as a count
      const status = await readRows(db, (q) =>
        q.db
          .select({ status: q.t.deliveries.status })
          .from(q.t.deliveries)
          .where(and(eq(q.t.deliveries.trustCenterId, q.trustCenter), eq(q.t.deliveries.id, oldDelivery))),
      );
      expect(status).toEqual([{ status: 'failed' }]);
    });
  });

  /** The decrypted backup's data: SQLite, the database file; PostgreSQL, the manifest line and the archive as pg_restore writes it out as SQL. */
  async function backupContents(file: string): Promise<Buffer> {
    const plain = join(scratch, 'decrypted');
    const input = await open(file, 'r');
    const output = await open(plain, 'w+');
    try {
      const read = await readHeader(input, 'after-erasure.backup');
      await readEncrypted(input, output, backupKey(TEST_KEYS.keys, read.header, 'backup'), read, 'backup');
    } finally {
      await Promise.all([input.close(), output.close()]);
    }
    const bytes = readFileSync(plain);
    if (running.engine === 'sqlite') {
      expect(bytes.subarray(0, 15).toString()).toBe('SQLite format 3');
      return bytes;
    }
    // src/core/backup/postgres.ts: one JSON line (the manifest), then pg_dump's custom archive, compressed
    const newline = bytes.indexOf(10);
    const manifest = bytes.subarray(0, newline);
    const archive = bytes.subarray(newline + 1);
    expect(archive.subarray(0, 5).toString()).toBe('PGDMP');
    writeFileSync(join(scratch, 'archive'), archive);
    const { stdout } = await promisify(execFile)('pg_restore', ['--file=-', join(scratch, 'archive')], {
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
    });
    expect(stdout.toString()).toContain('COPY public.recipients');
    return Buffer.concat([manifest, Buffer.from('\n'), stdout]);
  }

  describe('erasure and unsubscribing', () => {
    it('leave nothing of the person in any table, in a backup taken afterwards, in the log or in the file', async () => {
      ({ notificationId } = await db.transaction((tx) =>
        enqueueNotification(
          tx,
          {
            kind: 'incident.update',
            title: 'Elevated API errors',
            content: { ...emailContent(), sms: { body: 'Elevated API errors', link: 'https://trust.candor.test/incidents/1' } },
            audience: { kind: 'topic', topic: 'incidents' },
          },
          new Date(),
        ),
      ));
      /** The logged messages of the new notice: masked address by recipient. */
      const loggedTo = () =>
        readRows(db, (q) => {
          const m = q.t.loggedMessages;
          const d = q.t.deliveries;
          return q.db
            .select({ recipientId: d.recipientId, to: m.to })
            .from(m)
            .innerJoin(d, eq(d.id, m.deliveryId))
            .where(and(eq(m.trustCenterId, q.trustCenter), eq(d.notificationId, notificationId)));
        });
      await until(async () => (await loggedTo()).length === 4, 'the log transport to record four messages', 20_000);
      const logged = await loggedTo();
      const masked = (id: number) => logged.find((m) => m.recipientId === id)?.to ?? '';
      const maskedForms = {
        erased: masked(people.erased.id),
        phone: masked(people.phone.id),
        leaver: masked(people.leaver.id),
        stays: masked(people.stays.id),
      };
      expect(maskedForms.erased).toBe('er…@customer.example');

      const client = new ConsoleClient(server.url);
      const manage = `/subscription/${recipientToken(TEST_KEYS.secret, 'manage', people.erased.id)}`;
      const erased = await client.post(`${manage}?_action=eraseSubscription`, {
        token: recipientToken(TEST_KEYS.secret, 'manage', people.erased.id),
        confirm: 'yes',
      });
      expect(erased.html).toContain('Everything we held about your subscription is deleted.');
      const left = await fetch(`${server.url}/unsubscribe/${recipientToken(TEST_KEYS.secret, 'unsubscribe', people.leaver.id)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
      });
      expect(await left.text()).toBe('Unsubscribed.');

      const gone = [people.erased, people.phone, people.leaver];
      const traces = (p: Recipient) => [p.address, p.sealed];
      const needles = [...gone.flatMap(traces), maskedForms.erased, maskedForms.phone, maskedForms.leaver];

      // tables: nothing, while the one who stays is still found the same way
      for (const needle of needles) expect(await running.columnsHolding(needle), needle).toEqual([]);
      // but the keyed blind index of each address that left, in the one table that keeps an import
      // from adding them back (removed_addresses: channel, hash, reason, when; no address)
      for (const person of gone)
        expect(await running.columnsHolding(person.hash), person.address).toEqual(['removed_addresses.address_hash']);
      // their membership of a customer organisation went with them; the organisation stays
      const counts = await readRows(db, async (q) => ({
        members: await q.db.$count(q.t.organisationMembers, eq(q.t.organisationMembers.trustCenterId, q.trustCenter)),
        organisations: await q.db.$count(q.t.customerOrganisations, eq(q.t.customerOrganisations.trustCenterId, q.trustCenter)),
      }));
      expect(counts).toEqual({ members: 0, organisations: 1 });
      expect(await running.columnsHolding(people.stays.sealed)).toEqual(['recipients.address']);
      expect(await running.columnsHolding(maskedForms.stays)).toEqual(['logged_messages.to']);
      // their deliveries remain as anonymous counts
      const deliveries = await readRows(db, async (q) => {
        const d = q.t.deliveries;
        const ofNotice = and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, notificationId));
        return { n: await q.db.$count(d, ofNotice), linked: await q.db.$count(d, and(ofNotice, isNotNull(d.recipientId))) };
      });
      expect(deliveries).toEqual({ n: 4, linked: 1 });

      // a backup taken now, decrypted here
      const file = join(scratch, 'after-erasure.backup');
      const backupEnv = await running.backupEnv();
      const backup = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), 'backup', file], {
          cwd: ROOT,
          env: { ...process.env, CANDOR_DATA_DIR: dataDir, ...providerEnv({ port: 1, testKeys: true }), ...backupEnv },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        child.once('close', (code) => resolve({ code, out }));
      });
      expect(backup.code, backup.out).toBe(0);
      const bytes = await backupContents(file);
      for (const needle of needles) expect(bytes.includes(needle), needle).toBe(false);
      expect(bytes.includes(people.stays.sealed)).toBe(true);

      // the server's and the CLI's output
      for (const output of [firstOutput, server.output(), backup.out]) {
        for (const needle of [...needles, ERASED, ERASED_PHONE, LEAVER, STAYS, '@customer.example'])
          expect(output.includes(needle), needle).toBe(false);
      }

      // the server stops cleanly; the test's handle is closed first, so on SQLite the server's is the last
      // connection and folds its WAL in
      await db.close();
      expect(await server.stop()).toBe(0);
      // SQLite only: the database file itself, once the server has stopped: deleted rows were zeroed (secure_delete),
      // not just unlinked. PostgreSQL keeps dead rows in its files until VACUUM; nothing here reads its files.
      if (running.engine === 'sqlite') {
        expect(existsSync(join(dataDir, 'candor.db-wal'))).toBe(false);
        const raw = readFileSync(join(dataDir, 'candor.db'));
        for (const needle of needles) expect(raw.includes(needle), needle).toBe(false);
        expect(raw.includes(people.stays.sealed)).toBe(true);
      }
    });
  });
});
