/** POST /api/v1/incidents/{id}/updates: an update, or the resolution (src/lib/api/operations.ts). */
import { incidentView, postUpdate } from '../../../../../core/incidents/incidents.ts';
import { apiIncidentContext, publishedAnswer } from '../../../../../lib/api/context.ts';
import { endpoint, notFound, otherMethods } from '../../../../../lib/api/endpoint.ts';
import { postUpdateOp } from '../../../../../lib/api/operations.ts';

export const prerender = false;

export const POST = endpoint(postUpdateOp, async ({ params, body }, call) => {
  const id = Number(params.id);
  if (!(await incidentView(call.candor.database, call.candor.content.components, id)))
    return notFound(`There is no incident ${params.id}.`);
  const result = await postUpdate(apiIncidentContext(call), id, {
    status: body.status,
    body: body.body,
    components: body.components,
    notify: body.notify,
    nextUpdateBy: body.nextUpdateBy ? new Date(body.nextUpdateBy) : null,
    confirmPersonalData: body.confirmPersonalData,
    confirmNoRecipients: body.confirmNoRecipients,
  });
  return publishedAnswer(result, call.candor.config.publicUrl);
});

export const ALL = otherMethods(['POST']);
