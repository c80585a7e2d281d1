/**
 * Staff accounts and sessions made directly in a test server's database,
 * for tests about authorisation rather than about signing in. Two kinds:
 * - synchronous (`signedInStaff`, `staffMember`, `newSession` on a `Db`): they
 *   write the rows straight into the SQLite file with drizzle, as
 *   src/stores/staff.ts and sessions.ts would, for tests on SQLite only;
 * - async on either engine's `Database` (`signedInStaffOn`, `staffMemberOn`,
 *   `newSessionOn`), through those stores and src/core/auth/session.ts's
 *   `createSession`, for tests that run the server on both engines
 *   (tests/helpers/engine-server.ts).
 * Both hand out the token src/core/auth/session.ts checks.
 */

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeBase32IgnorePadding } from '@oslojs/encoding';
import { generateTOTP } from '@oslojs/otp';
import { type Db, openDatabase } from '../../db/client.ts';
import type { Database } from '../../db/engine/types.ts';
import { staff, staffSessions } from '../../db/schema.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import type { Role } from '../../src/core/auth/permissions.ts';
import { createSession } from '../../src/core/auth/session.ts';
import { randomToken } from '../../src/core/crypto/random.ts';
import { markSessionVerified } from '../../src/stores/sessions.ts';
import { insertStaffIfAbsent, updateStaffRow } from '../../src/stores/staff.ts';
import { TEST_KEYS } from './notify.ts';

export const POLICY = { idleMinutes: 60, absoluteHours: 12 };

/**
 * The server's database, sealing audit entries with the server's audit key: from the secret the
 * server generated into its data dir, or, with none there, the test keys given in its environment.
 */
export function openTestDb(dataDir: string): Db {
  const secret = existsSync(join(dataDir, 'secrets.json')) ? storedSecrets(dataDir).secret : TEST_KEYS.secret;
  return bindAuditKeys(openDatabase(join(dataDir, 'candor.db')), auditKeyring(secret));
}

function storedSecrets(dataDir: string): { secret: string; encryptionKey: string } {
  return JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as { secret: string; encryptionKey: string };
}

export function encryptionKey(dataDir: string): Buffer {
  return Buffer.from(storedSecrets(dataDir).encryptionKey, 'hex');
}

let counter = 0;

/** An active staff member of the role with a fully signed-in session; returns the session cookie value. */
export function signedInStaff(db: Db, role: Role): { email: string; staffId: number; token: string } {
  const email = `${role}-${++counter}-${process.pid}@lumenwork.example`;
  const staffId = staffMember(db, role, { enrolled: role === 'owner' || role === 'admin', email });
  return { email, staffId, token: newSession(db, staffId, { mfaVerified: true }) };
}

/** The current code for a key shown as text on the enrolment page. */
export function totpFromKeyText(keyText: string): string {
  return generateTOTP(decodeBase32IgnorePadding(keyText.replace(/\s+/g, '')), 30, 6);
}

/** An active staff member of the role, with or without an enrolled second factor; returns its id. */
export function staffMember(db: Db, role: Role, options: { enrolled: boolean; email?: string }): number {
  const now = new Date();
  const email = options.email ?? `${role}-${++counter}-${process.pid}@lumenwork.example`;
  const member = db
    .insert(staff)
    .values({
      email,
      role,
      status: 'active',
      passwordHash: 'x',
      totpEnrolledAt: options.enrolled ? now : null,
      createdAt: now,
      updatedAt: now,
    })
    .returning({ id: staff.id })
    .get();
  return member.id;
}

/** A new session for a staff member, past its second factor or (mfaVerified false) after the password only. */
export function newSession(db: Db, staffId: number, options: { mfaVerified: boolean }): string {
  const now = new Date();
  const id = randomToken();
  const secret = randomToken();
  db.insert(staffSessions)
    .values({
      id,
      staffId,
      secretHash: createHash('sha256').update(secret).digest(),
      createdAt: now,
      lastActiveAt: now,
      expiresAt: new Date(now.getTime() + POLICY.absoluteHours * 3_600_000),
      mfaVerifiedAt: options.mfaVerified ? now : null,
      ip: '127.0.0.1',
      userAgent: 'tests',
    })
    .run();
  return `${id}.${secret}`;
}

/** As `signedInStaff`, on either engine: an active staff member of the role with a fully signed-in session. */
export async function signedInStaffOn(database: Database, role: Role): Promise<{ email: string; staffId: number; token: string }> {
  const email = `${role}-${++counter}-${process.pid}@lumenwork.example`;
  const staffId = await staffMemberOn(database, role, { enrolled: role === 'owner' || role === 'admin', email });
  return { email, staffId, token: await newSessionOn(database, staffId, { mfaVerified: true }) };
}

/** As `staffMember`, on either engine: an active account of the role (invited, then given a password and, when asked, a second factor). */
export async function staffMemberOn(database: Database, role: Role, options: { enrolled: boolean; email?: string }): Promise<number> {
  const email = options.email ?? `${role}-${++counter}-${process.pid}@lumenwork.example`;
  return database.transaction(async (tx) => {
    const now = new Date();
    const member = await insertStaffIfAbsent(tx, email, role, now);
    if (!member) throw new Error(`${email} has an account already`);
    await updateStaffRow(tx, member.id, { status: 'active', passwordHash: 'x', totpEnrolledAt: options.enrolled ? now : null }, now);
    return member.id;
  });
}

/** As `newSession`, on either engine: a session past its second factor or (mfaVerified false) after the password only. */
export async function newSessionOn(database: Database, staffId: number, options: { mfaVerified: boolean }): Promise<string> {
  return database.transaction(async (tx) => {
    const now = new Date();
    const { token, session } = await createSession(tx, staffId, { ip: '127.0.0.1', userAgent: 'tests' }, POLICY, now);
    if (options.mfaVerified) await markSessionVerified(tx, session.id, now);
    return token;
  });
}
