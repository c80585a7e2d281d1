/**
 * A database as a Candor from before the keyed audit chain left it: migrated
 * up to the migration before `*_audit_keyed_chain`, its log holding plain
 * SHA-256 entries without a key id.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { knownMigrations } from '../../db/client.ts';
import * as schema from '../../db/schema.ts';
import { entryHash, GENESIS_HASH } from '../../src/core/audit/log.ts';

const MIGRATIONS = join(import.meta.dirname, '../../db/migrations');

/** Where the keyed chain begins in the list of migrations. */
export const KEYED_CHAIN_MIGRATION = knownMigrations().findIndex((m) => m.tag.endsWith('_audit_keyed_chain'));

/** Writes `candor.db` into `dataDir` with `n` plain entries (`audit.viewed`, one a day from 2026-01-01). */
export function legacyDatabase(
  dataDir: string,
  n: number,
  entry: { at?: (id: number) => number; target?: (id: number) => string | null } = {},
): void {
  const copy = mkdtempSync(join(tmpdir(), 'candor-legacy-migrations-'));
  try {
    cpSync(MIGRATIONS, copy, { recursive: true });
    const journalFile = join(copy, 'meta/_journal.json');
    const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as { entries: unknown[] };
    journal.entries = journal.entries.slice(0, KEYED_CHAIN_MIGRATION);
    writeFileSync(journalFile, JSON.stringify(journal));
    mkdirSync(dataDir, { recursive: true });
    const sqlite = new Database(join(dataDir, 'candor.db'));
    try {
      migrate(drizzle(sqlite, { schema }), { migrationsFolder: copy });
      const insert = sqlite.prepare(
        `INSERT INTO audit_log (id, at, actor_type, action, target, summary, prev_hash, hash) VALUES (?, ?, 'system', 'audit.viewed', ?, '{}', ?, ?)`,
      );
      let prev = GENESIS_HASH;
      for (let id = 1; id <= n; id++) {
        const at = entry.at?.(id) ?? Date.UTC(2026, 0, id);
        const target = entry.target?.(id) ?? null;
        const content = { id, at, actorType: 'system', actorId: null, actorLabel: null, ip: null, userAgent: null };
        const hash = entryHash(prev, { ...content, action: 'audit.viewed', target, summary: {} });
        insert.run(id, at, target, prev, hash);
        prev = hash;
      }
    } finally {
      sqlite.close();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
