import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { seal, unseal } from '../../src/core/crypto/seal.ts';
import { openRecipient } from '../../src/core/notify/recipients.ts';
import { domainHash } from '../../src/core/organisations/domains.ts';
import { addRecipient, findRecipient } from '../helpers/outbox-on-connection.ts';
import { ROOT, tempDir } from '../helpers/server.ts';

const cli = (dataDir: string, ...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CANDOR_DATA_DIR: dataDir },
  });
const secretsOf = (dataDir: string) =>
  JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as { secret: string; encryptionKey: string; previousKeys?: string[] };

describe('candor keys rotate', () => {
  it('re-seals every address and authenticator secret with a new key, and forgets the old one', async () => {
    const dataDir = tempDir();
    expect(cli(dataDir, 'admin', 'create', '--email', 'owner@lumenwork.example', '--role', 'owner').status).toBe(0);
    const before = secretsOf(dataDir);
    const oldKey = Buffer.from(before.encryptionKey, 'hex');
    const keys = { keys: [oldKey], secret: before.secret };
    const db = openDatabase(join(dataDir, 'candor.db'));
    await addRecipient(db, keys, { channel: 'email', address: 'ada@customer.example' }, new Date());
    await addRecipient(
      db,
      keys,
      { channel: 'webhook', address: 'https://hooks.customer.example/candor', secret: 'whsec_c2VjcmV0' },
      new Date(),
    );
    db.$client
      .prepare('UPDATE staff SET totp_secret = ? WHERE email = ?')
      .run(seal(oldKey, 'dG90cC1rZXk=', 'staff:1:totp'), 'owner@lumenwork.example');
    // as an address stored before domains were indexed: the index is written when a context opens, and kept by rotation
    db.$client.prepare(`UPDATE recipients SET domain_hash = NULL WHERE channel = 'email'`).run();
    db.$client.close();
    expect(cli(dataDir, 'audit', 'verify').status).toBe(0);
    const domainOfAda = () => {
      const check = openDatabase(join(dataDir, 'candor.db'));
      const row = check.$client.prepare(`SELECT domain_hash FROM recipients WHERE channel = 'email'`).get() as {
        domain_hash: string | null;
      };
      check.$client.close();
      return row.domain_hash;
    };
    expect(domainOfAda()).toBe(domainHash(before.secret, 'customer.example'));

    const rotated = cli(dataDir, 'keys', 'rotate');
    expect(rotated.status, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/re-sealed 2 addresses and 1 authenticator secrets/);

    const after = secretsOf(dataDir);
    expect(after.encryptionKey).not.toBe(before.encryptionKey);
    expect(after.secret).toBe(before.secret);
    expect(after.previousKeys).toEqual([]);
    const newKey = Buffer.from(after.encryptionKey, 'hex');
    const db2 = openDatabase(join(dataDir, 'candor.db'));
    const ada = await findRecipient(db2, { keys: [newKey], secret: after.secret }, 'email', 'ada@customer.example');
    expect(ada).toBeDefined();
    if (!ada) return;
    expect(openRecipient({ keys: [newKey], secret: after.secret }, ada).address).toBe('ada@customer.example');
    expect(() => openRecipient({ keys: [oldKey], secret: after.secret }, ada)).toThrow(/not configured/);
    const hook = await findRecipient(db2, { keys: [newKey], secret: after.secret }, 'webhook', 'https://hooks.customer.example/candor');
    expect(hook && openRecipient({ keys: [newKey], secret: after.secret }, hook).secret).toBe('whsec_c2VjcmV0');
    const totp = db2.$client.prepare('SELECT totp_secret FROM staff WHERE email = ?').get('owner@lumenwork.example') as {
      totp_secret: string;
    };
    expect(unseal([newKey], totp.totp_secret, 'staff:1:totp')).toBe('dG90cC1rZXk=');
    db2.$client.close();
    expect(domainOfAda()).toBe(domainHash(after.secret, 'customer.example'));
    // the audit chain is untouched by rotation
    expect(cli(dataDir, 'audit', 'verify').stdout).toMatch(/chain intact/);
  });
});
