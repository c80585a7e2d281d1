/** What the console shows of alerts (Console → Alerts, the dashboard): drafts, their notices, unmatched alerts. */
import type { Database } from '../../../db/engine/types.ts';
import {
  type AlertDraftRow,
  type AlertEventRow,
  alertDraftById,
  draftEvents,
  openPublishedDrafts,
  recentClosedDrafts,
  unmatchedEvents,
  waitingDrafts,
} from '../../stores/alerts.ts';

export type { AlertDraftRow, AlertEventRow };

export interface AlertOverview {
  /** waiting for a person, oldest first */
  waiting: AlertDraftRow[];
  /** published, their incident not yet resolved through the draft */
  published: AlertDraftRow[];
  /** dismissed or resolved, most recent first */
  closed: AlertDraftRow[];
  /** notices that matched no service, newest first */
  unmatched: AlertEventRow[];
}

export function alertOverview(database: Database): Promise<AlertOverview> {
  return database.read(async (r) => ({
    waiting: await waitingDrafts(r),
    published: await openPublishedDrafts(r),
    closed: await recentClosedDrafts(r),
    unmatched: await unmatchedEvents(r),
  }));
}

/** The drafts waiting for a person (the dashboard's list). */
export function waitingAlertDrafts(database: Database, limit = 20): Promise<AlertDraftRow[]> {
  return database.read((r) => waitingDrafts(r, limit));
}

export function alertDraftDetail(database: Database, id: number): Promise<{ draft: AlertDraftRow; events: AlertEventRow[] } | null> {
  return database.read(async (r) => {
    const draft = await alertDraftById(r, id);
    return draft ? { draft, events: await draftEvents(r, id) } : null;
  });
}

/** What the draft's state means for a person, in a few words. */
export function draftStateLabel(draft: AlertDraftRow): string {
  if (draft.state === 'dismissed') return 'Dismissed';
  if (draft.state === 'published') return draft.closedAt ? 'Published, incident resolved' : 'Published';
  return 'Waiting for a person';
}
