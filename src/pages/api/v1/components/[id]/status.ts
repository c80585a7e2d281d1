/**
 * PUT /api/v1/components/{id}/status (incidents.manage): sets the service's automation state, as a
 * firing alert would (src/core/alerts/drafts.ts `setAutomationState`; src/lib/api/operations.ts).
 */
import { setAutomationState } from '../../../../../core/alerts/drafts.ts';
import { alertCaller, alertContext } from '../../../../../lib/alert-context.ts';
import { endpoint, notFound, otherMethods } from '../../../../../lib/api/endpoint.ts';
import { setComponentStatusOp } from '../../../../../lib/api/operations.ts';

export const prerender = false;

export const PUT = endpoint(setComponentStatusOp, async ({ params, body }, call) => {
  const result = await setAutomationState(alertContext(call), alertCaller(call.principal), params.id, body);
  if (!result.ok) return notFound(result.message);
  return { ok: true, body: { component: params.id, status: body.status, previous: result.previous, changed: result.changed } };
});

export const ALL = otherMethods(['PUT']);
