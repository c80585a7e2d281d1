/** GET /api/v1/incidents/{id} (with its updates) and PATCH (title, severity): src/lib/api/operations.ts. */
import { editIncident } from '../../../../../core/incidents/edit.ts';
import { incidentView } from '../../../../../core/incidents/incidents.ts';
import { apiIncident, apiIncidentContext, apiUpdate } from '../../../../../lib/api/context.ts';
import { endpoint, notFound, otherMethods, refused } from '../../../../../lib/api/endpoint.ts';
import { editIncidentOp, getIncidentOp } from '../../../../../lib/api/operations.ts';

export const prerender = false;

export const GET = endpoint(getIncidentOp, async ({ params }, { candor }) => {
  const record = await incidentView(candor.database, candor.content.components, Number(params.id));
  if (!record) return notFound(`There is no incident ${params.id}.`);
  return {
    ok: true,
    body: { ...apiIncident(record.incident, candor.config.publicUrl), public: record.public, updates: record.updates.map(apiUpdate) },
  };
});

export const PATCH = endpoint(editIncidentOp, async ({ params, body }, call) => {
  const id = Number(params.id);
  const current = await incidentView(call.candor.database, call.candor.content.components, id);
  if (!current) return notFound(`There is no incident ${params.id}.`);
  if (body.title === undefined && body.severity === undefined) return refused('Send a new "title" or "severity".');
  const result = await editIncident(apiIncidentContext(call), id, {
    title: body.title ?? current.incident.title,
    severity: body.severity ?? current.incident.severity,
    notify: body.notify,
  });
  if (!result.ok) return refused(result.message);
  return { ok: true, body: { incidentId: id, deliveries: result.deliveries } };
});

export const ALL = otherMethods(['GET', 'PATCH']);
