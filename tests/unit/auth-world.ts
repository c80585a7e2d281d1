/**
 * The fixture the console-flow tests share: a fresh database of the engine
 * under test (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set,
 * as the application role under row-level security), a clock moved by hand,
 * and a record of every secret handed out, which the audit log must never
 * contain. The world is seeded and inspected through the flows, the stores
 * and the builder (readRows), never SQL of one engine.
 */

import { randomBytes } from 'node:crypto';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { generateHOTP } from '@oslojs/otp';
import { asc } from 'drizzle-orm';
import { afterEach, expect } from 'vitest';
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
import { readRows } from '../helpers/engine-server.ts';
import type { EngineUnderTest, OpenedEngine } from '../helpers/postgres.ts';

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
  /** the world's database, sealing audit entries with the world's key */
  readonly database: Database;
  readonly keys = [randomBytes(32)];
  now = T0;
  /** every secret handed out in this world: none may reach the audit log */
  readonly secrets = new Set<string>([PASSWORD]);

  /** A world on a fresh database (an engine's `open()`): the caller closes the database. */
  constructor(database: Database) {
    this.database = bindAuditKeys(database, auditKeyring(WORLD_SECRET));
  }

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

  /** The audit log's entries, oldest first, with the columns' names as stored (optionally one action's). */
  async audit(action?: string): Promise<AuditRow[]> {
    const rows = await readRows(this.database, (q) => q.db.select().from(q.t.auditLog).orderBy(asc(q.t.auditLog.id)));
    return rows
      .map((r) => ({
        action: r.action,
        actor_type: r.actorType,
        actor_id: r.actorId,
        target: r.target,
        ip: r.ip,
        summary: r.summary,
      }))
      .filter((r) => !action || r.action === action);
  }

  /** Every column of every audit entry as text, for checks that no secret reached the log. */
  async auditText(): Promise<string> {
    return JSON.stringify(await readRows(this.database, (q) => q.db.select().from(q.t.auditLog).orderBy(asc(q.t.auditLog.id))));
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
 * A fresh world per test, on a fresh database of the engine; after each test, whatever it did,
 * the audit log holds none of its secrets and its chain verifies, and the database is dropped.
 */
export function useWorlds(engine: EngineUnderTest): () => Promise<World> {
  let world: World | undefined;
  let opened: OpenedEngine | undefined;
  afterEach(async () => {
    const w = world;
    const o = opened;
    world = undefined;
    opened = undefined;
    try {
      if (!w) return;
      // Whatever a test did, the log holds none of its secrets and its chain verifies.
      const json = await w.auditText();
      for (const secret of w.secrets) expect(json.toLowerCase(), 'a secret in the audit log').not.toContain(secret.toLowerCase());
      expect((await verifyAuditChain(w.database)).ok).toBe(true);
    } finally {
      await o?.close();
    }
  });
  return async () => {
    if (opened) throw new Error('one world per test');
    opened = await engine.open();
    world = new World(opened.database);
    return world;
  };
}
