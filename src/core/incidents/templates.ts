/**
 * Update templates from content/templates: the composer starts from one,
 * and the scheduler sends the maintenance ones unattended. Placeholders are
 * filled with plain text; the result is markdown like any update, rendered
 * safely wherever it goes.
 */
import type { TemplateSource } from '../content/load.ts';
import type { Site, templatePlaceholders } from '../content/schema.ts';
import type { IncidentKind, MaintenanceWindow } from './types.ts';

export type TemplateValues = Record<(typeof templatePlaceholders)[number], string>;

const utc = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

export function formatWindow(window: MaintenanceWindow): string {
  const sameDay = window.startsAt.toISOString().slice(0, 10) === window.endsAt.toISOString().slice(0, 10);
  return `${utc(window.startsAt)} to ${sameDay ? window.endsAt.toISOString().slice(11, 16) : utc(window.endsAt).replace(' UTC', '')} UTC`;
}

/** "Search and API", "Search, API and Web app" */
function listNames(names: readonly string[]): string {
  if (names.length <= 1) return names[0] ?? 'our services';
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

export function templateValues(input: {
  site: Site;
  title: string;
  services: readonly string[];
  window: MaintenanceWindow | null;
}): TemplateValues {
  const { privacy } = input.site.contacts;
  return {
    organisation: input.site.organisation.name,
    title: input.title,
    services: listNames(input.services),
    window: input.window ? formatWindow(input.window) : 'the announced window',
    starts: input.window ? utc(input.window.startsAt) : 'the announced time',
    ends: input.window ? utc(input.window.endsAt) : 'the announced time',
    privacyContact: `${privacy.name}, our ${privacy.role}`,
  };
}

export function fillTemplate(body: string, values: TemplateValues): string {
  return body.replace(/\{\{\s*([a-zA-Z]+)\s*\}\}/g, (whole, name: string) =>
    name in values ? values[name as keyof TemplateValues] : whole,
  );
}

/** The templates the composer offers for this kind of incident. */
export function templatesFor(templates: readonly TemplateSource[], kind: IncidentKind): TemplateSource[] {
  return templates.filter((t) => !t.kinds || t.kinds.includes(kind));
}

export function requireTemplate(templates: readonly TemplateSource[], id: string): TemplateSource {
  const template = templates.find((t) => t.id === id);
  // content validation makes the required ones exist; this names the file if that ever changes
  if (!template) throw new Error(`content/templates/${id}.md is missing`);
  return template;
}
