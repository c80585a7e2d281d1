/**
 * Staff API tokens (src/core/api/tokens.ts), on each engine: the secret is shown once and only its hash
 * kept; a token holds only scopes its creator has, and each use grants only those the creator still
 * holds while active; revoked, expired, unknown and malformed tokens are refused with a reason; the
 * rate limit counts per token; every use is audited with the token and its creator.
 */
import { describe, expect, it } from 'vitest';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import {
  apiTokenLimit,
  authenticateApiToken,
  checkTokenInput,
  createApiToken,
  grantableScopes,
  listApiTokens,
  revokeApiToken,
  tokenScopes,
} from '../../src/core/api/tokens.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { updateStaffRow } from '../../src/stores/staff.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const T0 = new Date('2026-12-03T09:00:00Z');
const client = { ip: '192.0.2.7', userAgent: 'curl/8' };
const use = (path = '/api/v1/incidents', method = 'POST') => ({ method, path, client });

async function creator(database: Database, role: 'admin' | 'owner' | 'responder' = 'admin') {
  const id = await staffMemberOn(database, role, { enrolled: true });
  const email = await database.read(async (r) => {
    const q = reading(r);
    const rows = await q.db.select({ email: q.t.staff.email }).from(q.t.staff);
    return rows.at(-1)?.email ?? '';
  });
  return { id, email, role } as const;
}

async function auditActions(database: Database): Promise<{ action: string; actorLabel: string | null; target: string | null }[]> {
  return database.read(async (r) => {
    const q = reading(r);
    const a = q.t.auditLog;
    return q.db.select({ action: a.action, actorLabel: a.actorLabel, target: a.target }).from(a).orderBy(a.id);
  });
}

describe('what a token may be given', () => {
  it('never an account, sign-in policy or token-making permission, and only what the creator has', () => {
    expect(tokenScopes).not.toContain('api.tokens.manage');
    expect(tokenScopes).not.toContain('staff.manage');
    expect(tokenScopes).not.toContain('account.manage');
    expect(tokenScopes).not.toContain('sso.manage');
    expect(grantableScopes('responder')).toContain('incidents.manage');
    expect(grantableScopes('responder')).not.toContain('subscribers.view');
    const responder = { id: 1, email: 'r@x', role: 'responder' } as const;
    expect(checkTokenInput(responder, { name: 'bot', scopes: ['subscribers.view'], days: 30 })).toEqual({
      ok: false,
      message: 'You cannot give "subscribers.view": your role (responder) does not have it.',
    });
    expect(checkTokenInput(responder, { name: ' ', scopes: ['incidents.manage'], days: 30 }).ok).toBe(false);
    expect(checkTokenInput(responder, { name: 'bot', scopes: [], days: 30 }).ok).toBe(false);
    expect(checkTokenInput(responder, { name: 'bot', scopes: ['incidents.manage'], days: 366 }).ok).toBe(false);
    expect(checkTokenInput(responder, { name: 'bot', scopes: ['incidents.manage'], days: 0 }).ok).toBe(false);
    expect(checkTokenInput(responder, { name: 'bot', scopes: ['toString'], days: 10 }).ok).toBe(false);
  });
});

it.each(enginesUnderTest())(
  'tokens are made, used, limited, audited and revoked, on $name',
  async (engine) => {
    const opened = await engine.open();
    const database = bindAuditKeys(opened.database, auditKeyring(TEST_KEYS.secret));
    try {
      const admin = await creator(database, 'admin');
      const made = await createApiToken(
        database,
        admin,
        client,
        { name: 'Alertmanager', scopes: ['incidents.manage', 'incidents.view'], days: 30 },
        T0,
      );
      if (!made.ok) throw new Error(made.message);
      expect(made.token).toMatch(/^cnd_[a-z2-7]{48}$/);
      // only the hash is kept
      const stored = await database.read(async (r) => {
        const q = reading(r);
        return q.db.select().from(q.t.apiTokens);
      });
      expect(JSON.stringify(stored)).not.toContain(made.token);
      expect(stored[0]?.prefix).toBe(made.token.slice(0, 10));

      const bearer = `Bearer ${made.token}`;
      const ok = await authenticateApiToken(database, bearer, 'incidents.manage', use(), T0);
      expect(ok.ok).toBe(true);
      if (ok.ok) expect(ok.principal.actor.label).toContain(admin.email);
      // a permission the token was not given
      const scope = await authenticateApiToken(database, bearer, 'subscribers.view', use('/api/v1/subscribers', 'GET'), T0);
      expect(scope).toMatchObject({ ok: false, status: 403, reason: 'scope' });
      // refusals that name no one
      expect(await authenticateApiToken(database, null, 'incidents.manage', use(), T0)).toMatchObject({ status: 401, reason: 'missing' });
      expect(await authenticateApiToken(database, 'Basic abc', 'incidents.manage', use(), T0)).toMatchObject({
        status: 401,
        reason: 'malformed',
      });
      expect(await authenticateApiToken(database, `Bearer cnd_${'a'.repeat(48)}`, 'incidents.manage', use(), T0)).toMatchObject({
        status: 401,
        reason: 'unknown',
      });
      // expiry
      const later = new Date(T0.getTime() + 31 * 86_400_000);
      expect(await authenticateApiToken(database, bearer, 'incidents.manage', use(), later)).toMatchObject({
        status: 401,
        reason: 'expired',
      });

      // demoting the creator takes the permission from the token; disabling them kills it
      await database.transaction((tx) => updateStaffRow(tx, admin.id, { role: 'viewer' }, T0));
      expect(await authenticateApiToken(database, bearer, 'incidents.manage', use(), T0)).toMatchObject({ status: 403, reason: 'scope' });
      expect((await authenticateApiToken(database, bearer, 'incidents.view', use('/api/v1/incidents', 'GET'), T0)).ok).toBe(true);
      await database.transaction((tx) => updateStaffRow(tx, admin.id, { role: 'admin', status: 'disabled' }, T0));
      expect(await authenticateApiToken(database, bearer, 'incidents.view', use(), T0)).toMatchObject({
        status: 401,
        reason: 'creator-inactive',
      });
      await database.transaction((tx) => updateStaffRow(tx, admin.id, { status: 'active' }, T0));

      // revoked at once, audited once
      const owner = await creator(database, 'owner');
      expect((await revokeApiToken(database, owner, client, made.view.id, T0)).ok).toBe(true);
      expect((await revokeApiToken(database, owner, client, made.view.id, T0)).ok).toBe(true);
      expect(await authenticateApiToken(database, bearer, 'incidents.view', use(), T0)).toMatchObject({ status: 401, reason: 'revoked' });
      expect((await listApiTokens(database, T0)).map((t) => [t.name, t.state])).toEqual([['Alertmanager', 'revoked']]);

      const audit = await auditActions(database);
      const mine = audit.filter((e) => e.target === `api_token:${made.view.id}`).map((e) => e.action);
      expect(mine).toEqual([
        'api.token.created',
        'api.token.used',
        'api.token.refused',
        'api.token.refused',
        'api.token.used',
        'api.token.revoked',
      ]);
      expect(audit.find((e) => e.action === 'api.token.used')?.actorLabel).toBe(
        `${admin.email} via API token "Alertmanager" (${made.view.prefix}…)`,
      );

      // the rate limit counts per token
      const busy = await createApiToken(database, owner, client, { name: 'busy', scopes: ['incidents.view'], days: 1 }, T0);
      const quiet = await createApiToken(database, owner, client, { name: 'quiet', scopes: ['incidents.view'], days: 1 }, T0);
      if (!busy.ok || !quiet.ok) throw new Error('tokens');
      for (let i = 0; i < apiTokenLimit.max; i++) {
        const r = await authenticateApiToken(database, `Bearer ${busy.token}`, 'incidents.view', use('/x', 'GET'), T0);
        if (!r.ok) throw new Error(`refused at ${i}`);
      }
      const over = await authenticateApiToken(database, `Bearer ${busy.token}`, 'incidents.view', use('/x', 'GET'), T0);
      expect(over).toMatchObject({ ok: false, status: 429, retryAfterSeconds: 60 });
      expect((await authenticateApiToken(database, `Bearer ${quiet.token}`, 'incidents.view', use('/x', 'GET'), T0)).ok).toBe(true);
    } finally {
      await opened.close();
    }
  },
  120_000,
);
