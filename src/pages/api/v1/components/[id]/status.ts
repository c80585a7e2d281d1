/**
 * PUT /api/v1/components/{id}/status (incidents.manage): sets the service's automation state, as a
 * firing alert would (src/core/alerts/drafts.ts `setAutomationState`). Body: `componentStatusBodySchema`.
 */
import type { APIRoute } from 'astro';
import { setAutomationState } from '../../../../../core/alerts/drafts.ts';
import { readComponentStatusBody } from '../../../../../core/alerts/payloads.ts';
import { alertCaller, alertContext } from '../../../../../lib/alert-context.ts';
import { apiCaller, apiJson, problem } from '../../../../../lib/api-request.ts';

export const prerender = false;

export const PUT: APIRoute = async (ctx) => {
  const caller = await apiCaller(ctx, 'incidents.manage');
  if (!caller.ok) return caller.response;
  const publicUrl = ctx.locals.candor.config.publicUrl;
  // JSON only, as the receivers: the middleware's NUL check reads JSON and form bodies by their type
  if (!/\bjson\b/i.test(ctx.request.headers.get('content-type') ?? ''))
    return problem(publicUrl, {
      status: 415,
      type: 'unsupported-media-type',
      title: 'Send the status change as JSON.',
      detail: 'The Content-Type must be application/json.',
      headers: caller.headers,
    });
  let body: unknown;
  try {
    body = await ctx.request.json();
  } catch {
    return problem(publicUrl, {
      status: 400,
      type: 'malformed-json',
      title: 'The request body is not valid JSON.',
      headers: caller.headers,
    });
  }
  const read = readComponentStatusBody(body);
  if (!read.ok) {
    const first = read.errors[0];
    return problem(publicUrl, {
      status: 422,
      type: 'invalid-payload',
      title: 'The status change is not valid.',
      detail: first ? `${first.field}: ${first.message}` : undefined,
      extra: { errors: read.errors },
      headers: caller.headers,
    });
  }
  const id = ctx.params.id ?? '';
  const result = await setAutomationState(alertContext(ctx), alertCaller(caller.principal), id, read.value);
  if (!result.ok)
    return problem(publicUrl, {
      status: 404,
      type: 'not-found',
      title: 'No such service.',
      detail: result.message,
      headers: caller.headers,
    });
  return apiJson({ component: id, status: read.value.status, previous: result.previous, changed: result.changed }, 200, caller.headers);
};
