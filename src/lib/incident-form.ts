/**
 * The incident composer's form, read into the core's input. Each service
 * has a select named `component:<id>`; an empty value means "not affected".
 */
import type { Component } from '../core/content/schema.ts';
import {
  type ComponentStatus,
  componentStatuses,
  type IncidentKind,
  type IncidentSeverity,
  type IncidentStatus,
} from '../core/incidents/types.ts';

export interface IncidentForm {
  kind: IncidentKind;
  severity: IncidentSeverity;
  title: string;
  status: IncidentStatus;
  body: string;
  components: Record<string, ComponentStatus>;
  organisations: string[];
  publicNotice: boolean;
  confirmPersonalData: boolean;
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
    organisations: text(form, 'organisations', 2000)
      .split(/[,\n]/)
      .map((o) => o.trim())
      .filter(Boolean)
      .slice(0, 50),
    publicNotice: form.get('publicNotice') === 'yes',
    confirmPersonalData: form.get('confirmPersonalData') === 'yes',
  };
}
