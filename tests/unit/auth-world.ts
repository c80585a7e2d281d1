/**
 * The fixture the console-flow tests share: an in-memory database, a clock
 * moved by hand, and a record of every secret handed out, which the audit
 * log must never contain.
 */

import { randomBytes } from 'node:crypto';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { generateHOTP } from '@oslojs/otp';
import { afterEach, expect } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import type { AuditAction } from '../../src/core/audit/actions.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { verifyAuditChain } from '../../src/core/audit/log.ts';
import { timesRecorded } from '../../src/core/audit/repeats.ts';
import {
  type AuthContext,
  completeEnrolment,
  completeLink,
  inviteStaff,
  type Outcome,
  signIn,
  startEnrolment,
} from '../../src/core/auth/console-auth.ts';
import type { Role } from '../../src/core/auth/permissions.ts';
import { type Session, type StaffMember, validateSessionToken } from '../../src/core/auth/session.ts';
import { getStaff } from '../../src/core/auth/staff.ts';
import { totpCounter } from '../../src/core/auth/totp.ts';

export const T0 = new Date('2026-03-02T09:00:10.000Z');
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const PASSWORD = 'tangerine oxbow lamplight 42';
const WORLD_SECRET = 'test-secret-of-at-least-32-characters!!';
export const GENERIC = { ok: false, message: 'Email or password is incorrect.' };

export interface AuditRow {
  action: string;
  actor_type: string;
  actor_id: number | null;
  target: string | null;
  ip: string | null;
  summary: Record<string, unknown>;
}

export class World {
  readonly db: Db = bindAuditKeys(openDatabase(':memory:'), auditKeyring(WORLD_SECRET));
  /** the same database through the engine API, which the flows take */
  readonly database: Database = databaseOf(this.db);
  readonly keys = [randomBytes(32)];
  now = T0;
  /** every secret handed out in this world: none may reach the audit log */
  readonly secrets = new Set<string>([PASSWORD]);

  /** `device`: the recognised-device cookie the request presents, if any */
  ctx(client: Partial<AuthContext['client']> = {}, device?: string): AuthContext {
    return {
      device,
      database: this.database,
      now: this.now,
      keys: this.keys,
      policy: { idleMinutes: 60, absoluteHours: 12 },
      client: { ip: '203.0.113.9', userAgent: 'test', ...client },
      issuer: 'Lumenwork',
      secret: WORLD_SECRET,
    };
  }

  advance(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }

  remember(...values: string[]): void {
    for (const value of values) {
      this.secrets.add(value);
      const [, secret] = value.split('.');
      if (secret) this.secrets.add(secret);
    }
  }

  /** A recognised-device cookie: the whole value, its device id and its MAC must stay out of the audit log. */
  rememberDevice(cookie: string | null): void {
    if (!cookie) return;
    const parts = cookie.split('.');
    this.secrets.add(cookie);
    for (const part of [parts[3], parts[5]]) if (part) this.secrets.add(part);
  }

  async auth(token: string): Promise<{ session: Session; staff: StaffMember }> {
    return must(await validateSessionToken(this.database, token, this.ctx().policy, this.now), 'a valid session');
  }

  async member(id: number): Promise<StaffMember> {
    return must(await getStaff(this.database, id), `staff ${id}`);
  }

  audit(action?: string): AuditRow[] {
    const rows = this.db.$client.prepare('SELECT * FROM audit_log ORDER BY id').all() as (Omit<AuditRow, 'summary'> & {
      summary: string;
    })[];
    return rows
      .map((r) => ({ ...r, summary: JSON.parse(r.summary) as Record<string, unknown> }))
      .filter((r) => !action || r.action === action);
  }

  /** How many times the action happened: identical refusals in a window are one entry and a count (audit/repeats.ts). */
  times(action: AuditAction): Promise<number> {
    return timesRecorded(this.database, action, new Date(0));
  }

  /** An active member signed in through their one-time link. */
  async activeStaff(email: string, role: Role, actor: StaffMember | null = null): Promise<{ member: StaffMember; token: string }> {
    const invite = ok(await inviteStaff(this.ctx(), actor, email, role));
    this.remember(invite.token);
    const done = ok(await completeLink(this.ctx(), invite.token, PASSWORD, PASSWORD));
    this.remember(done.token);
    this.rememberDevice(done.device);
    return { member: await this.member(invite.member.id), token: done.token };
  }

  async signIn(email: string, password = PASSWORD, client: Partial<AuthContext['client']> = {}, device?: string) {
    const result = await signIn(this.ctx(client, device), email, password);
    if (result.ok) {
      this.remember(result.token);
      this.rememberDevice(result.device);
    }
    return result;
  }

  /** Enrols TOTP in the given session the way a person with an authenticator app would. */
  async enrol(token: string): Promise<{ key: Uint8Array; codes: string[]; keyText: string }> {
    const { session, staff } = await this.auth(token);
    const challenge = await startEnrolment(this.ctx(), staff, session);
    const key = decodeBase32IgnorePadding(challenge.keyText.replace(/ /g, ''));
    this.remember(
      challenge.keyText,
      challenge.keyText.replace(/ /g, ''),
      Buffer.from(key).toString('base64'),
      Buffer.from(key).toString('hex'),
    );
    const done = ok(await completeEnrolment(this.ctx(), staff, session, challenge.pending, this.code(key)));
    this.remember(...done.recoveryCodes, ...done.recoveryCodes.map((c) => c.replace('-', '')));
    this.rememberDevice(done.device);
    return { key, codes: done.recoveryCodes, keyText: challenge.keyText };
  }

  code(key: Uint8Array, offset = 0): string {
    return generateHOTP(key, BigInt(totpCounter(this.now) + offset), 6);
  }
}

export function must<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new Error(`expected ${what}`);
  return value;
}

export function ok<T extends object>(outcome: Outcome<T>): { ok: true } & T {
  if (!outcome.ok) throw new Error(`expected success, got: ${outcome.message}`);
  return outcome;
}

export const tokenOf = (outcome: Outcome<{ token: string }>): string => ok(outcome).token;

/**
 * A fresh world per test; after each test, whatever it did, the audit log
 * holds none of its secrets and its chain verifies.
 */
export function useWorlds(): () => World {
  let world: World | undefined;
  afterEach(async () => {
    if (!world) return;
    // Whatever a test did, the log holds none of its secrets and its chain verifies.
    const json = JSON.stringify(world.db.$client.prepare('SELECT * FROM audit_log').all());
    for (const secret of world.secrets) expect(json.toLowerCase(), 'a secret in the audit log').not.toContain(secret.toLowerCase());
    expect((await verifyAuditChain(databaseOf(world.db))).ok).toBe(true);
  });
  return () => {
    world = new World();
    return world;
  };
}
