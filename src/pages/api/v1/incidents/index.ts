/** GET /api/v1/incidents (list, newest first) and POST /api/v1/incidents (declare): src/lib/api/operations.ts. */
import { declareIncident, listIncidents } from '../../../../core/incidents/incidents.ts';
import { apiIncident, apiIncidentContext, pageLimit, publishedAnswer, readCursor } from '../../../../lib/api/context.ts';
import { endpoint, otherMethods } from '../../../../lib/api/endpoint.ts';
import { declareIncidentOp, listIncidentsOp } from '../../../../lib/api/operations.ts';
import { defaultFirstUpdate } from '../../../../lib/incident-template.ts';

export const prerender = false;

export const GET = endpoint(listIncidentsOp, async ({ query }, { candor }) => {
  const limit = pageLimit(query.limit);
  const cursor = readCursor(query.cursor);
  const views = await listIncidents(candor.database, candor.content.components, {
    open: query.status === 'open',
    resolved: query.status === 'resolved',
    ...(cursor ? { before: { startedAt: new Date(cursor[0]), id: cursor[1] } } : {}),
    limit: limit + 1,
  });
  const page = views.slice(0, limit);
  const last = page.at(-1);
  return {
    ok: true,
    body: {
      incidents: page.map((v) => apiIncident(v, candor.config.publicUrl)),
      nextCursor: views.length > limit && last ? `${last.startedAt.getTime()}.${last.id}` : null,
    },
  };
});

export const POST = endpoint(declareIncidentOp, async ({ body }, call) => {
  const { content } = call.candor;
  const given = body.body ?? '';
  // As the console's composer: an outage declared without a text gets its template's first update.
  const text = given.trim() === '' ? (defaultFirstUpdate(content, body) ?? '') : given;
  const result = await declareIncident(apiIncidentContext(call), {
    kind: body.kind,
    severity: body.severity,
    title: body.title,
    status: body.status,
    body: text,
    components: body.components,
    organisations: body.organisations,
    publicNotice: body.publicNotice,
    confirmPersonalData: body.confirmPersonalData,
    confirmNoRecipients: body.confirmNoRecipients,
    notify: body.notify,
    nextUpdateBy: body.nextUpdateBy ? new Date(body.nextUpdateBy) : null,
    window: null,
    breach: body.breach
      ? {
          awareAt: new Date(body.breach.awareAt),
          occurredAt: body.breach.occurredAt ? new Date(body.breach.occurredAt) : null,
          nature: body.breach.nature,
          subjects: body.breach.subjects,
          records: body.breach.records,
          consequences: body.breach.consequences,
          measures: body.breach.measures,
        }
      : null,
  });
  return publishedAnswer(result, call.candor.config.publicUrl);
});

export const ALL = otherMethods(['GET', 'POST']);
