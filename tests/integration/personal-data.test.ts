/**
 * What is forgotten stays forgotten. Records of sending past their
 * retention (site.yaml `policies.retention`) are purged when the server
 * starts; a subscriber who erases their data, or an address unsubscribed in
 * one click, leaves nothing behind: not in any column of any table (in
 * clear, sealed, or as its blind index), not in a backup taken afterwards,
 * not in the server's output, not in the free space of the database file.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import { hitLimitNow } from '../../src/core/auth/rate-limit.ts';
import { backupKey, readEncrypted, readHeader } from '../../src/core/backup/format.ts';
import { recipientToken } from '../../src/core/notify/links.ts';
import { addressHash } from '../../src/core/notify/recipients.ts';
import { subscribeLimits } from '../../src/core/subscriptions/subscribe.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { addSubscribers, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { addRecipient, enqueueNotification } from '../helpers/notify-sync.ts';
import { keepOrganisation } from '../helpers/organisations.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { openTestDb } from '../helpers/staff.ts';

const ERASED = 'erase-me@customer.example';
const ERASED_PHONE = '+447700900123';
const LEAVER = 'leave-me@customer.example';
const STAYS = 'stay-here@customer.example';
const DAY = 86_400_000;

let server: RunningServer;
let db: Db;
const dataDir = tempDir('candor-forget-');
const scratch = tempDir('candor-forget-files-');

interface Recipient {
  id: number;
  subscriberId: number;
  address: string;
  sealed: string;
  hash: string;
}
const people: Record<'erased' | 'phone' | 'leaver' | 'stays', Recipient> = {} as Record<'erased' | 'phone' | 'leaver' | 'stays', Recipient>;

function row(id: number, address: string): Recipient {
  const r = db.$client.prepare('SELECT subscriber_id, address, address_hash FROM recipients WHERE id = ?').get(id) as {
    subscriber_id: number;
    address: string;
    address_hash: string;
  };
  return { id, subscriberId: r.subscriber_id, address, sealed: r.address, hash: r.address_hash };
}

/** Every column of every table holding `needle`, as `table.column`. */
function columnsHolding(needle: string): string[] {
  const sqlite = db.$client;
  const found: string[] = [];
  const tables = sqlite.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
  for (const { name } of tables) {
    for (const { name: column } of sqlite.prepare(`SELECT name FROM pragma_table_info(?)`).all(name) as { name: string }[]) {
      const hit = sqlite.prepare(`SELECT 1 FROM "${name}" WHERE instr(CAST("${column}" AS TEXT), ?) > 0 LIMIT 1`).get(needle);
      if (hit) found.push(`${name}.${column}`);
    }
  }
  return found;
}

async function until(predicate: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let oldDelivery = 0;
let notificationId = 0;
const ages = (table: string) =>
  (db.$client.prepare(`SELECT at FROM ${table} WHERE delivery_id = ? ORDER BY at`).all(oldDelivery) as { at: number }[]).map((r) =>
    Math.round((Date.now() - r.at) / DAY),
  );

beforeAll(async () => {
  db = openTestDb(dataDir);
  const now = new Date();
  const [erased = 0, leaver = 0, stays = 0] = addSubscribers(db, TEST_KEYS, {
    count: 3,
    channel: 'email',
    address: (i) => [ERASED, LEAVER, STAYS][i] ?? '',
  });
  people.erased = row(erased, ERASED);
  people.leaver = row(leaver, LEAVER);
  people.stays = row(stays, STAYS);
  const phone = addRecipient(
    db,
    TEST_KEYS,
    { channel: 'sms', address: ERASED_PHONE, subscriberId: people.erased.subscriberId, status: 'active' },
    now,
  );
  people.phone = row(phone.id, ERASED_PHONE);
  // staff placed the number of the one who will erase everything in a customer organisation
  await keepOrganisation(db, 'Erased Person’s Employer', { recipients: [phone.id] });
  // a sign-up attempt an hour ago: the per-address limit is keyed by the blind index
  await hitLimitNow(
    databaseOf(db),
    subscribeLimits.perAddress,
    addressHash(TEST_KEYS, 'email', ERASED),
    new Date(now.getTime() - 3_600_000 / 2),
  );

  // An old notice: one delivery to the subscriber who will erase everything, whose provider once quoted the address back.
  const sqlite = db.$client;
  const { id: oldNotification } = sqlite
    .prepare(
      `INSERT INTO notifications (kind, title, content, audience, recipient_count, created_at) VALUES ('incident.update', 'Old', '{}', '{}', 1, ?) RETURNING id`,
    )
    .get(now.getTime() - 200 * DAY) as { id: number };
  ({ id: oldDelivery } = sqlite
    .prepare(
      `INSERT INTO deliveries (notification_id, recipient_id, channel, status, attempts, next_attempt_at, last_error) VALUES (?, ?, 'email', 'failed', 2, ?, ?) RETURNING id`,
    )
    .get(oldNotification, people.erased.id, now.getTime() - 100 * DAY, `Invalid \`to\` field: ${ERASED}`) as { id: number });
  const attempt = sqlite.prepare(`INSERT INTO delivery_attempts (delivery_id, at, outcome, duration_ms, error) VALUES (?, ?, ?, 5, ?)`);
  attempt.run(oldDelivery, now.getTime() - 100 * DAY, 'retry', 'timeout');
  attempt.run(oldDelivery, now.getTime() - 10 * DAY, 'failed', `Invalid \`to\` field: ${ERASED}`);
  const logged = sqlite.prepare(
    `INSERT INTO logged_messages (delivery_id, channel, "to", payload, at) VALUES (?, 'email', 'er…@customer.example', '{}', ?)`,
  );
  logged.run(oldDelivery, now.getTime() - 40 * DAY);
  logged.run(oldDelivery, now.getTime() - 5 * DAY);

  const port = await freePort();
  // No provider keys: email and SMS go to the log transport, which records them in the database.
  server = await startServer({ port, dataDir, env: providerEnv({ port, testKeys: true }) });
});

afterAll(async () => {
  db?.$client.close();
  await server?.stop();
  for (const dir of [dataDir, scratch]) rmSync(dir, { recursive: true, force: true });
});

describe('retention', () => {
  it('purges delivery attempts and logged messages older than site.yaml allows when the server starts', () => {
    // policies.retention: attempts 90 days, logged messages 30
    expect(ages('delivery_attempts')).toEqual([10]);
    expect(ages('logged_messages')).toEqual([5]);
    expect(server.output()).toMatch(/housekeeping: .*"deliveryAttemptsRemoved":1,"loggedMessagesRemoved":1/);
    // the delivery itself stays, as a count
    expect(db.$client.prepare('SELECT status FROM deliveries WHERE id = ?').get(oldDelivery)).toEqual({ status: 'failed' });
  });
});

describe('erasure and unsubscribing', () => {
  it('leave nothing of the person in any table, in a backup taken afterwards, in the log or in the file', async () => {
    ({ notificationId } = enqueueNotification(
      db,
      {
        kind: 'incident.update',
        title: 'Elevated API errors',
        content: { ...emailContent(), sms: { body: 'Elevated API errors', link: 'https://trust.candor.test/incidents/1' } },
        audience: { kind: 'topic', topic: 'incidents' },
      },
      new Date(),
    ));
    const logged = () =>
      (
        db.$client
          .prepare('SELECT count(*) AS n FROM logged_messages m JOIN deliveries d ON d.id = m.delivery_id WHERE d.notification_id = ?')
          .get(notificationId) as { n: number }
      ).n;
    await until(() => logged() === 4, 'the log transport to record four messages');
    const masked = (id: number) =>
      (
        db.$client
          .prepare(`SELECT m."to" AS t FROM logged_messages m JOIN deliveries d ON d.id = m.delivery_id WHERE d.recipient_id = ?`)
          .get(id) as { t: string }
      ).t;
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
    const traces = (p: Recipient) => [p.address, p.sealed, p.hash];
    const needles = [...gone.flatMap(traces), maskedForms.erased, maskedForms.phone, maskedForms.leaver];

    // tables: nothing, while the one who stays is still found the same way
    for (const needle of needles) expect(columnsHolding(needle), needle).toEqual([]);
    // their membership of a customer organisation went with them; the organisation stays
    expect(db.$client.prepare('SELECT count(*) AS n FROM organisation_members').get()).toEqual({ n: 0 });
    expect(db.$client.prepare('SELECT count(*) AS n FROM customer_organisations').get()).toEqual({ n: 1 });
    expect(columnsHolding(people.stays.sealed)).toEqual(['recipients.address']);
    expect(columnsHolding(maskedForms.stays)).toEqual(['logged_messages.to']);
    // their deliveries remain as anonymous counts
    expect(
      db.$client
        .prepare('SELECT count(*) AS n, count(recipient_id) AS linked FROM deliveries WHERE notification_id = ?')
        .get(notificationId),
    ).toEqual({
      n: 4,
      linked: 1,
    });

    // a backup taken now, decrypted here
    const file = join(scratch, 'after-erasure.backup');
    const backup = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), 'backup', file], {
        cwd: ROOT,
        env: { ...process.env, CANDOR_DATA_DIR: dataDir, ...providerEnv({ port: 1, testKeys: true }) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.once('close', (code) => resolve({ code, out }));
    });
    expect(backup.code, backup.out).toBe(0);
    const plain = join(scratch, 'decrypted.db');
    const input = await open(file, 'r');
    const output = await open(plain, 'w+');
    try {
      const read = await readHeader(input, 'after-erasure.backup');
      await readEncrypted(input, output, backupKey(TEST_KEYS.keys, read.header, 'backup'), read, 'backup');
    } finally {
      await Promise.all([input.close(), output.close()]);
    }
    const bytes = readFileSync(plain);
    expect(bytes.subarray(0, 15).toString()).toBe('SQLite format 3');
    for (const needle of needles) expect(bytes.includes(needle), needle).toBe(false);
    expect(bytes.includes(people.stays.sealed)).toBe(true);

    // the server's and the CLI's output
    for (const output of [server.output(), backup.out]) {
      for (const needle of [...needles, ERASED, ERASED_PHONE, LEAVER, STAYS, '@customer.example'])
        expect(output.includes(needle), needle).toBe(false);
    }

    // the database file itself, once the server has stopped and folded its WAL in: deleted rows were zeroed, not just unlinked
    db.$client.close();
    expect(await server.stop()).toBe(0);
    expect(existsSync(join(dataDir, 'candor.db-wal'))).toBe(false);
    const raw = readFileSync(join(dataDir, 'candor.db'));
    for (const needle of needles) expect(raw.includes(needle), needle).toBe(false);
    expect(raw.includes(people.stays.sealed)).toBe(true);
    db = openTestDb(dataDir);
  });
});
