/**
 * The incident composer's form, read into the core's input. Each service
 * has a select named `component:<id>`; an empty value means "not affected".
 * Each customer organisation a targeted notice may go to is a checkbox
 * named `organisation:<id>`. The "Notify subscribers" switch is a checkbox
 * `notify` beside a hidden `notifyShown`, so an unticked switch is told apart
 * from a form that has none.
 */
import type { Component } from '../core/content/schema.ts';
import type { BreachFields } from '../core/incidents/breach.ts';
import {
  type ComponentStatus,
  componentStatuses,
  type IncidentKind,
  type IncidentSeverity,
  type IncidentStatus,
  type MaintenanceWindow,
} from '../core/incidents/types.ts';

export interface IncidentForm {
  kind: IncidentKind;
  severity: IncidentSeverity;
  title: string;
  status: IncidentStatus;
  body: string;
  components: Record<string, ComponentStatus>;
  /** ids of the customer organisations ticked */
  organisations: number[];
  /**
   * the free-text company names an older form (or a script) sent as `organisations`: they cannot
   * target anyone, and ignoring them would send to everyone, so the action refuses them
   */
  typedOrganisations: string;
  publicNotice: boolean;
  confirmPersonalData: boolean;
  confirmNoRecipients: boolean;
  breach: BreachFields | null;
  window: MaintenanceWindow | null;
  /** tell subscribers; the composer's switch, on unless unticked (a form without the switch notifies) */
  notify: boolean;
  /** the promised next update (UTC); null: the cadence's default */
  nextUpdateBy: Date | null;
}

const text = (form: FormData, name: string, max: number) => String(form.get(name) ?? '').slice(0, max);

export function readIncidentForm(form: FormData, components: readonly Component[]): IncidentForm {
  const selected: Record<string, ComponentStatus> = {};
  for (const c of components) {
    const value = String(form.get(`component:${c.id}`) ?? '');
    if ((componentStatuses as readonly string[]).includes(value)) selected[c.id] = value as ComponentStatus;
  }
  return {
    kind: text(form, 'kind', 20) as IncidentKind,
    severity: text(form, 'severity', 20) as IncidentSeverity,
    title: text(form, 'title', 300),
    status: text(form, 'status', 20) as IncidentStatus,
    body: text(form, 'body', 30_000),
    components: selected,
    organisations: [...form.keys()]
      .map((key) => /^organisation:([1-9]\d{0,9})$/.exec(key)?.[1])
      .filter((id): id is string => id !== undefined && form.get(`organisation:${id}`) === 'yes')
      .map(Number)
      .slice(0, 100),
    typedOrganisations: text(form, 'organisations', 2000).trim(),
    publicNotice: form.get('publicNotice') === 'yes',
    confirmPersonalData: form.get('confirmPersonalData') === 'yes',
    confirmNoRecipients: form.get('confirmNoRecipients') === 'yes',
    breach: readBreach(form),
    window: readWindow(form),
    notify: form.get('notifyShown') === 'yes' ? form.get('notify') === 'yes' : true,
    nextUpdateBy: utc(text(form, 'nextUpdateBy', 20)),
  };
}

/** The maintenance window; an unreadable time is left invalid for the core to name. */
function readWindow(form: FormData): MaintenanceWindow | null {
  if (text(form, 'kind', 20) !== 'maintenance') return null;
  const startsAt = utc(text(form, 'windowStartsAt', 20));
  const endsAt = utc(text(form, 'windowEndsAt', 20));
  return startsAt || endsAt ? { startsAt: startsAt ?? new Date(Number.NaN), endsAt: endsAt ?? new Date(Number.NaN) } : null;
}

const utc = (value: string): Date | null => (value.trim() === '' ? null : new Date(`${value.trim()}Z`));

/** The breach fieldset; the aware time defaults to now when left empty. */
function readBreach(form: FormData): BreachFields | null {
  if (text(form, 'kind', 20) !== 'breach') return null;
  return {
    awareAt: utc(text(form, 'breachAwareAt', 20)) ?? new Date(),
    occurredAt: utc(text(form, 'breachOccurredAt', 20)),
    nature: text(form, 'breachNature', 5000),
    subjects: text(form, 'breachSubjects', 5000),
    records: text(form, 'breachRecords', 5000),
    consequences: text(form, 'breachConsequences', 5000),
    measures: text(form, 'breachMeasures', 5000),
  };
}
