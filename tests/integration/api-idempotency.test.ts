/**
 * Idempotency-Key's bookkeeping (src/core/api/idempotency.ts) on each engine: a first request claims its
 * key, a retry of it gets the kept answer, another request with the key is told apart, a retry while the
 * first runs is told to wait, a released key (a server error) runs again, keys are per token, concurrent
 * claims on PostgreSQL let exactly one through, and housekeeping removes kept answers after 24 hours.
 */
import { describe, expect, it } from 'vitest';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import {
  claimIdempotency,
  completeIdempotency,
  IDEMPOTENCY_KEEP_MS,
  idempotencyKeyProblem,
  releaseIdempotency,
  requestFingerprint,
} from '../../src/core/api/idempotency.ts';
import { createApiToken } from '../../src/core/api/tokens.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { runHousekeeping } from '../../src/core/maintenance/housekeeping.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const T0 = new Date('2026-12-03T09:00:00Z');
const policy = {
  auditRetentionDays: 400,
  staffSessions: { idleMinutes: 60 },
  retention: { deliveryAttemptsDays: 90, loggedMessagesDays: 30 },
};

async function tokenOn(database: Database, name: string): Promise<number> {
  const id = await staffMemberOn(database, 'admin', { enrolled: true, email: `${name}@candor.example` });
  const made = await createApiToken(
    database,
    { id, email: `${name}@candor.example`, role: 'admin' },
    { ip: null, userAgent: null },
    { name, scopes: ['incidents.manage'], days: 30 },
    T0,
  );
  if (!made.ok) throw new Error(made.message);
  return made.view.id;
}

const keptRows = (database: Database) =>
  database.read(async (r) => {
    const q = reading(r);
    return (await q.db.select({ key: q.t.apiIdempotencyKeys.key }).from(q.t.apiIdempotencyKeys)).length;
  });

describe('the header', () => {
  it('takes 1 to 255 printable ASCII characters and names itself when refused', () => {
    expect(idempotencyKeyProblem('7c9e6679-7425-40de-944b-e07fc1f90ae7')).toBeNull();
    expect(idempotencyKeyProblem(null)).toContain('Idempotency-Key');
    expect(idempotencyKeyProblem('')).toContain('1 to 255');
    expect(idempotencyKeyProblem('x'.repeat(256))).toContain('1 to 255');
    expect(idempotencyKeyProblem('clé')).toContain('printable ASCII');
    expect(idempotencyKeyProblem('a\tb')).toContain('printable ASCII');
  });

  it('tells requests apart by method, path and body', () => {
    const a = requestFingerprint('POST', '/api/v1/incidents', '{"a":1}');
    expect(requestFingerprint('post', '/api/v1/incidents', '{"a":1}')).toBe(a);
    expect(requestFingerprint('POST', '/api/v1/incidents', '{"a":2}')).not.toBe(a);
    expect(requestFingerprint('POST', '/api/v1/maintenances', '{"a":1}')).not.toBe(a);
  });
});

it.each(enginesUnderTest())(
  'claims, replays, refuses, releases and expires keys, on $name',
  async (engine) => {
    const opened = await engine.open();
    const database = bindAuditKeys(opened.database, auditKeyring(TEST_KEYS.secret));
    try {
      const token = await tokenOn(database, 'one');
      const other = await tokenOn(database, 'two');
      const hash = requestFingerprint('POST', '/api/v1/incidents', '{"title":"x"}');
      expect(await claimIdempotency(database, token, 'k1', hash, T0)).toEqual({ kind: 'first' });
      expect(await claimIdempotency(database, token, 'k1', hash, T0)).toEqual({ kind: 'in-progress' });
      expect(await claimIdempotency(database, token, 'k1', 'another request', T0)).toEqual({ kind: 'mismatch' });
      // keys are per token
      expect(await claimIdempotency(database, other, 'k1', hash, T0)).toEqual({ kind: 'first' });
      await completeIdempotency(database, token, 'k1', 201, '{"incidentId":7}\n');
      expect(await claimIdempotency(database, token, 'k1', hash, T0)).toEqual({ kind: 'replay', status: 201, body: '{"incidentId":7}\n' });
      // a server error releases the key: the retry runs
      await releaseIdempotency(database, other, 'k1');
      expect(await claimIdempotency(database, other, 'k1', hash, T0)).toEqual({ kind: 'first' });
      // a finished answer is never released
      await releaseIdempotency(database, token, 'k1');
      expect((await claimIdempotency(database, token, 'k1', hash, T0)).kind).toBe('replay');

      // past 24 hours the key is free again, and housekeeping removes what is kept
      const later = new Date(T0.getTime() + IDEMPOTENCY_KEEP_MS + 60_000);
      expect(await keptRows(database)).toBe(2);
      const result = await runHousekeeping(database, policy, later);
      expect(result.idempotencyRepliesRemoved).toBe(2);
      expect(await keptRows(database)).toBe(0);
      expect(await claimIdempotency(database, token, 'k1', 'a new request', later)).toEqual({ kind: 'first' });

      // concurrent claims of one key (two connections on PostgreSQL): exactly one is first
      const racers = [database, opened.another()].map((db) => bindAuditKeys(db, auditKeyring(TEST_KEYS.secret)));
      const claims = await Promise.all(racers.flatMap((db) => [1, 2, 3].map(() => claimIdempotency(db, token, 'raced', hash, later))));
      expect(claims.filter((c) => c.kind === 'first')).toHaveLength(1);
      expect(claims.filter((c) => c.kind === 'in-progress')).toHaveLength(5);
    } finally {
      await opened.close();
    }
  },
  60_000,
);
