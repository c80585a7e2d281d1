/**
 * Staff accounts: who they are, their role and their state. The rows are src/stores/staff.ts's
 * (issue 15); what is read for pages is read here in one snapshot of the database.
 */
import { z } from 'zod';
import type { Database } from '../../../db/engine/types.ts';
import { staffById, staffRows } from '../../stores/staff.ts';
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

export function getStaff(database: Database, id: number): Promise<StaffMember | undefined> {
  return database.read((r) => staffById(r, id));
}

/** Every staff member, by email. */
export function listStaff(database: Database): Promise<StaffMember[]> {
  return database.read((r) => staffRows(r));
}

/** A label for the audit log and the console: the email, which is what staff recognise. */
export function staffLabel(member: StaffMember): string {
  return member.email;
}
