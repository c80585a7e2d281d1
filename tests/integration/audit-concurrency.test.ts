/**
 * The audit chain through the engine API (writeAudit): on SQLite and on PostgreSQL one unbroken
 * chain, also when many transactions append at the same time on PostgreSQL (where they really run
 * concurrently), when some of them roll back, and mixed with the synchronous writer legacy code on
 * SQLite still uses.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresEngine } from '../../db/engine/postgres.ts';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import { verifyAuditChainPostgres } from '../../src/core/audit/chain-postgres.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { type AuditVerification, recordAudit, verifyAuditChain, writeAudit } from '../../src/core/audit/log.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const KEYRING = auditKeyring('audit-concurrency-test-secret-0123456789');
const T0 = new Date('2026-12-02T10:00:00.000Z');
const entry = (n: number) => ({
  actor: { type: 'system' } as const,
  action: 'backup.created' as const,
  target: `run:${n}`,
  summary: { n },
});

async function verify(database: SqliteEngine | PostgresEngine): Promise<AuditVerification> {
  const result = await verifyAuditChain(database, KEYRING);
  // PostgreSQL's own verifier (database copy, backups) reads the same chain alike.
  if (database.engine === 'postgres') expect(await database.read((q) => verifyAuditChainPostgres(q, KEYRING))).toEqual(result);
  return result;
}

async function targets(database: SqliteEngine | PostgresEngine): Promise<string[]> {
  if (database.engine === 'sqlite') {
    return database.connection.$client
      .prepare('SELECT target FROM audit_log ORDER BY id')
      .all()
      .map((r) => String((r as { target: string }).target));
  }
  // Through a read, which sets the trust center the row-level security policies read.
  const { rows } = await database.read((q) => q.db.execute<{ target: string }>(sql`SELECT target FROM audit_log ORDER BY id`));
  return rows.map((r) => r.target);
}

describe('writeAudit on SQLite', () => {
  it('appends a chain that verifies, interleaved with the synchronous writer on the same connection', async () => {
    const database = bindAuditKeys(tempSqliteEngine(), KEYRING);
    try {
      await database.transaction((tx) => writeAudit(tx, entry(1), T0));
      recordAudit(database.connection, entry(2), T0);
      await database.transaction(async (tx) => {
        await writeAudit(tx, entry(3), T0);
        await writeAudit(tx, entry(4), T0);
      });
      await expect(
        database.transaction(async (tx) => {
          await writeAudit(tx, entry(5), T0);
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await database.transaction((tx) => writeAudit(tx, entry(6), T0));
      expect(await targets(database)).toEqual(['run:1', 'run:2', 'run:3', 'run:4', 'run:6']);
      expect(await verify(database)).toMatchObject({ ok: true, checked: 5 });
    } finally {
      await database.close();
    }
  });

  it('refuses to write through a handle with no audit keys', async () => {
    const database = tempSqliteEngine();
    try {
      await expect(database.transaction((tx) => writeAudit(tx, entry(1), T0))).rejects.toThrow(/no audit key/);
    } finally {
      await database.close();
    }
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('writeAudit on PostgreSQL', () => {
  let engines: BothEngines;
  beforeAll(async () => {
    engines = await bothEngines();
    bindAuditKeys(engines.postgres, KEYRING);
  }, 60_000);
  afterAll(() => engines?.close());

  it('keeps one unbroken chain under 40 concurrent writers, a quarter of which roll back', async () => {
    const pg = engines.postgres;
    const runs = Array.from({ length: 40 }, (_, i) =>
      pg.transaction(async (tx) => {
        await writeAudit(tx, entry(i), T0);
        // Hold the transaction open across a round trip so the others really wait on the chain.
        if (tx.engine === 'postgres') await tx.db.execute(sql`SELECT pg_sleep(0.005)`);
        if (i % 4 === 3) throw new Error(`rollback ${i}`);
        return i;
      }),
    );
    const settled = await Promise.allSettled(runs);
    const committed = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    expect(committed).toHaveLength(30);
    const written = await targets(pg);
    expect(written.toSorted()).toEqual(committed.map((i) => `run:${i}`).toSorted());
    expect(await verify(pg)).toMatchObject({ ok: true, checked: 30 });
  }, 60_000);
});
