/** Staff accounts: who they are, their role and their state. */
import { asc, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../../../db/client.ts';
import { staff } from '../../../db/schema.ts';
import type { Role } from './permissions.ts';
import type { StaffMember } from './session.ts';

/** The staff roles, for pages and actions (which never import the schema). */
export { staffRoles } from '../../../db/schema/staff.ts';

const emailSchema = z.email();

/** Lower-cased and trimmed, or null when it is not an email address. */
export function normaliseEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  if (email.length > 254 || !emailSchema.safeParse(email).success) return null;
  return email;
}

export function findStaffByEmail(db: Db, email: string): StaffMember | undefined {
  return db.select().from(staff).where(eq(staff.email, email)).get();
}

export function getStaff(db: Db, id: number): StaffMember | undefined {
  return db.select().from(staff).where(eq(staff.id, id)).get();
}

export function listStaff(db: Db): StaffMember[] {
  return db.select().from(staff).orderBy(asc(staff.email)).all();
}

export function insertStaff(db: Db, email: string, role: Role, now: Date): StaffMember {
  return db.insert(staff).values({ email, role, status: 'invited', createdAt: now, updatedAt: now }).returning().get();
}

export function updateStaff(db: Db, id: number, changes: Partial<Omit<StaffMember, 'id' | 'createdAt'>>, now: Date): void {
  db.update(staff)
    .set({ ...changes, updatedAt: now })
    .where(eq(staff.id, id))
    .run();
}

/** Raises the member's device generation: none of their recognised-device cookies is recognised any more (devices.ts). */
export function forgetDevices(db: Db, id: number, now: Date): void {
  db.update(staff)
    .set({ deviceGeneration: sql`${staff.deviceGeneration} + 1`, updatedAt: now })
    .where(eq(staff.id, id))
    .run();
}

export function countActiveOwners(db: Db): number {
  const row = db.select({ n: sql<number>`count(*)` }).from(staff).where(sql`${staff.role} = 'owner' AND ${staff.status} = 'active'`).get();
  return row?.n ?? 0;
}

/** A label for the audit log and the console: the email, which is what staff recognise. */
export function staffLabel(member: StaffMember): string {
  return member.email;
}
