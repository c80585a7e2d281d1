import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { recordAudit } from '../../src/core/audit/log.ts';
import { ROOT, tempDir } from '../helpers/server.ts';

const dataDir = tempDir('candor-audit-cli-');
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function candor(...args: string[]) {
  const result = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, CANDOR_DATA_DIR: dataDir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Opens the same database file the CLI uses, for the length of one change. */
function withDatabase(change: (db: ReturnType<typeof openDatabase>) => void): void {
  const db = openDatabase(join(dataDir, 'candor.db'));
  try {
    change(db);
  } finally {
    db.$client.close();
  }
}

describe('npm run candor -- audit verify', () => {
  it('creates the database on first use and finds an empty log intact', () => {
    const { code, stdout } = candor('audit', 'verify');
    expect(stdout.trim()).toBe('audit log verified: 0 entries, chain intact');
    expect(code).toBe(0);
  });

  it('reports an intact chain', () => {
    withDatabase((db) => {
      const staff = { type: 'staff', id: 1, label: 'owner@example.com' } as const;
      recordAudit(
        db,
        { actor: staff, action: 'auth.sign_in.succeeded', ip: '127.0.0.1', target: 'staff:1' },
        new Date('2025-03-01T09:00:00Z'),
      );
      recordAudit(
        db,
        { actor: staff, action: 'staff.invited', target: 'staff:2', summary: { role: 'editor' } },
        new Date('2025-03-01T09:05:00Z'),
      );
      recordAudit(
        db,
        { actor: staff, action: 'staff.role_changed', target: 'staff:2', summary: { before: 'editor', after: 'admin' } },
        new Date('2025-03-01T09:10:00Z'),
      );
      recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, new Date('2025-03-01T09:15:00Z'));
    });
    const { code, stdout, stderr } = candor('audit', 'verify');
    expect(stderr).toBe('');
    expect(stdout.trim()).toBe('audit log verified: 4 entries, chain intact');
    expect(code).toBe(0);
  });

  it('names the entry altered behind the triggers’ back', () => {
    withDatabase((db) => {
      db.$client.exec('DROP TRIGGER audit_log_no_update');
      db.$client.prepare(`UPDATE audit_log SET summary = '{"before":"editor","after":"viewer"}' WHERE id = 3`).run();
    });
    const { code, stdout } = candor('audit', 'verify');
    expect(stdout.trim()).toBe(
      'audit log BROKEN at entry #3: content altered: its stored hash does not match its content (2 entries checked before it)',
    );
    expect(code).toBe(1);
  });

  it('refuses stray arguments', () => {
    const { code, stderr } = candor('audit', 'verify', '--fix');
    expect(stderr).toMatch(/takes no arguments/);
    expect(code).toBe(2);
  });
});
