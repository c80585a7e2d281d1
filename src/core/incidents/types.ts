/** The vocabulary of incidents: what they are, how bad, where they stand. */

export const incidentKinds = ['outage', 'security', 'breach', 'maintenance'] as const;
export type IncidentKind = (typeof incidentKinds)[number];

export const incidentSeverities = ['minor', 'major', 'critical'] as const;
export type IncidentSeverity = (typeof incidentSeverities)[number];

/**
 * The lifecycle of an incident; each transition is carried by an update.
 * Scheduled maintenance has its own: scheduled → in progress → (verifying)
 * → completed, the last stored as `resolved` so "open" means one thing.
 */
export const incidentStatuses = ['investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress'] as const;
export type IncidentStatus = (typeof incidentStatuses)[number];

const incidentLifecycle = ['investigating', 'identified', 'monitoring', 'resolved'] as const satisfies readonly IncidentStatus[];
const maintenanceLifecycle = ['scheduled', 'in_progress', 'monitoring', 'resolved'] as const satisfies readonly IncidentStatus[];

/** The statuses an update of this kind of incident may carry, in lifecycle order. */
export function statusesFor(kind: IncidentKind): readonly IncidentStatus[] {
  return kind === 'maintenance' ? maintenanceLifecycle : incidentLifecycle;
}

export const componentStatuses = ['operational', 'degraded', 'partial_outage', 'major_outage', 'under_maintenance'] as const;
export type ComponentStatus = (typeof componentStatuses)[number];

export const componentStatusLabels: Record<ComponentStatus, string> = {
  operational: 'Operational',
  degraded: 'Degraded performance',
  partial_outage: 'Partial outage',
  major_outage: 'Major outage',
  under_maintenance: 'Under maintenance',
};

/** How bad a state is, for "the worst state": maintenance is announced, so it ranks below any disruption. */
export const componentStatusRank: Record<ComponentStatus, number> = {
  operational: 0,
  under_maintenance: 1,
  degraded: 2,
  partial_outage: 3,
  major_outage: 4,
};

/** The worst of these states; 'operational' when there are none. */
export function worstStatus(statuses: Iterable<ComponentStatus>): ComponentStatus {
  let worst: ComponentStatus = 'operational';
  for (const s of statuses) if (componentStatusRank[s] > componentStatusRank[worst]) worst = s;
  return worst;
}

export const incidentStatusLabels: Record<IncidentStatus, string> = {
  investigating: 'Investigating',
  identified: 'Identified',
  monitoring: 'Monitoring',
  resolved: 'Resolved',
  scheduled: 'Scheduled',
  in_progress: 'In progress',
};

const maintenanceLabels: Partial<Record<IncidentStatus, string>> = { monitoring: 'Verifying', resolved: 'Completed' };

/** A status as readers of this kind of incident expect it: maintenance is "completed", not "resolved". */
export function statusLabel(kind: IncidentKind, status: IncidentStatus): string {
  return (kind === 'maintenance' ? maintenanceLabels[status] : undefined) ?? incidentStatusLabels[status];
}

/** Maintenance closed before its window opened was called off, not completed. */
export function wasCancelled(incident: Pick<IncidentView, 'kind' | 'status' | 'resolvedAt' | 'window'>): boolean {
  return (
    incident.kind === 'maintenance' &&
    incident.status === 'resolved' &&
    incident.resolvedAt !== null &&
    incident.window !== null &&
    incident.resolvedAt < incident.window.startsAt
  );
}

/** The label of an update (or, with the incident's own status, of the incident) of this incident. */
export function updateLabel(incident: Pick<IncidentView, 'kind' | 'status' | 'resolvedAt' | 'window'>, status: IncidentStatus): string {
  return status === 'resolved' && wasCancelled(incident) ? 'Cancelled' : statusLabel(incident.kind, status);
}

export const incidentKindLabels: Record<IncidentKind, string> = {
  outage: 'Service disruption',
  security: 'Security incident',
  breach: 'Data breach',
  maintenance: 'Scheduled maintenance',
};

/** What renderers get: plain data, no database rows. */
export interface IncidentView {
  id: number;
  kind: IncidentKind;
  severity: IncidentSeverity;
  title: string;
  status: IncidentStatus;
  components: { id: string; name: string; status: ComponentStatus }[];
  startedAt: Date;
  resolvedAt: Date | null;
  /** when the next public update is promised, for open incidents */
  nextUpdateBy: Date | null;
  /** scheduled maintenance: the announced window */
  window: MaintenanceWindow | null;
}

export interface MaintenanceWindow {
  startsAt: Date;
  endsAt: Date;
}

export interface UpdateView {
  id: number;
  status: IncidentStatus;
  /** staff-written markdown; rendered safely, never trusted */
  body: string;
  publishedAt: Date;
  /** false when staff published it without notifying subscribers */
  notified?: boolean;
  /** when its text was last edited after publishing */
  editedAt?: Date | null;
}
