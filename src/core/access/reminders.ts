/**
 * Reminding reviewers of access requests that wait: a pending request that has waited more than one
 * working day (Monday to Friday, UTC) since it was confirmed, or since its last reminder, is told
 * again on the staff channel. A request confirmed Friday at 16:00 is reminded Monday at 16:00, not
 * Saturday; one confirmed at the weekend counts from Monday 00:00. Each reminder and its `remindedAt`
 * commit together, by a conditional UPDATE on the `remindedAt` seen, so two nodes remind once.
 */
import type { Database } from '../../../db/engine/types.ts';
import { type AccessRequestRow, markReminded, pendingRequests } from '../../stores/access-requests.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';
import { type GatedDocument, reviewMessage } from './requests.ts';

const DAY = 86_400_000;
const weekend = (d: Date) => d.getUTCDay() === 0 || d.getUTCDay() === 6;

/** The moment one working day after `from`: the same time on the next weekday (from a weekend: Tuesday 00:00). */
export function oneWorkingDayAfter(from: Date): Date {
  let t = new Date(from.getTime());
  if (weekend(t)) {
    while (weekend(t)) t = new Date(t.getTime() + DAY);
    t = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  }
  t = new Date(t.getTime() + DAY);
  while (weekend(t)) t = new Date(t.getTime() + DAY);
  return t;
}

/** When a pending request is next due a reminder. */
export function reminderDue(request: Pick<AccessRequestRow, 'remindedAt' | 'verifiedAt' | 'createdAt'>): Date {
  return oneWorkingDayAfter(request.remindedAt ?? request.verifiedAt ?? request.createdAt);
}

export interface ReminderDeps {
  database: Database;
  staff: StaffChannels;
  publicUrl: URL;
  gated: readonly GatedDocument[];
}

/** Reminds reviewers of every pending request due a reminder at `now`; how many were reminded. */
export async function remindWaitingRequests(deps: ReminderDeps, now: Date): Promise<number> {
  const waiting = await deps.database.read((r) => pendingRequests(r));
  let reminded = 0;
  for (const request of waiting) {
    if (reminderDue(request).getTime() > now.getTime()) continue;
    const sent = await deps.database.transaction(async (tx) => {
      if (!(await markReminded(tx, request.id, request.remindedAt, now))) return false;
      await notifyStaff(tx, deps.staff, reviewMessage(deps, request, true), now);
      return true;
    });
    if (sent) reminded++;
  }
  return reminded;
}
