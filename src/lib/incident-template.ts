/**
 * "Start from a template": the composer's fields filled from
 * content/templates/<id>.md, named by `?template=` in the page's address.
 */
import type { TrustContent } from '../core/content/load.ts';
import { fillTemplate, templateValues } from '../core/incidents/templates.ts';
import type { IncidentView } from '../core/incidents/types.ts';

export function templateFields(url: URL, content: TrustContent, incident: IncidentView | null): Record<string, string> {
  const id = url.searchParams.get('template');
  const template = id ? content.templates.find((t) => t.id === id) : undefined;
  if (!template) return {};
  const body = fillTemplate(
    template.body,
    templateValues({
      site: content.site,
      title: incident?.title ?? '',
      // a new incident has no services yet: the marker stands out in the preview until they are named
      services: incident ? incident.components.map((c) => c.name) : ['_the affected services_'],
      window: incident?.window ?? null,
    }),
  );
  const fields: Record<string, string> = { body };
  const onlyKind = template.kinds?.length === 1 ? template.kinds[0] : undefined;
  if (!incident && onlyKind) fields.kind = onlyKind;
  if (template.status) fields.status = template.status;
  return fields;
}

/**
 * The first update of an outage declared without a text: the outage template for its status
 * (content/templates), naming the services chosen. Declaring takes a title and a service, nothing more.
 */
export function defaultFirstUpdate(
  content: TrustContent,
  input: { kind: string; status: string; title: string; components: Record<string, string> },
): string | null {
  if (input.kind !== 'outage') return null;
  const template = content.templates.find((t) => t.kinds?.includes('outage') && t.status === input.status);
  if (!template) return null;
  const services = content.components.filter((c) => input.components[c.id] !== undefined).map((c) => c.name);
  if (services.length === 0) return null;
  return fillTemplate(template.body, templateValues({ site: content.site, title: input.title, services, window: null }));
}
