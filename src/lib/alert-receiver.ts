/**
 * The three alert receivers' shared glue (POST /api/v1/alerts/{alertmanager,grafana,generic}): the token
 * (alerts.ingest), the JSON body, the payload's fields (422 naming each bad one), then the alert flows.
 * Answers 202: what each alert did, and for alerts that matched no service, how to map them.
 */
import type { APIContext } from 'astro';
import { receiveAlerts } from '../core/alerts/drafts.ts';
import { type AlertSource, readAlertPayload } from '../core/alerts/payloads.ts';
import { alertCaller, alertContext } from './alert-context.ts';
import { apiCaller, apiJson, problem } from './api-request.ts';

export async function receiveAlertRequest(ctx: APIContext, source: AlertSource): Promise<Response> {
  const caller = await apiCaller(ctx, 'alerts.ingest');
  if (!caller.ok) return caller.response;
  const publicUrl = ctx.locals.candor.config.publicUrl;
  if (!/\bjson\b/i.test(ctx.request.headers.get('content-type') ?? ''))
    return problem(publicUrl, {
      status: 415,
      type: 'unsupported-media-type',
      title: 'Send the alert as JSON.',
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
  const read = readAlertPayload(source, body);
  if (!read.ok) {
    const first = read.errors[0];
    return problem(publicUrl, {
      status: 422,
      type: 'invalid-payload',
      title: `The ${source} payload is not valid.`,
      detail: first ? `${first.field}: ${first.message}` : 'The payload is not valid.',
      extra: { errors: read.errors },
      headers: caller.headers,
    });
  }
  const outcomes = await receiveAlerts(alertContext(ctx), alertCaller(caller.principal), source, read.notices, read.detail);
  const unmatched = outcomes.filter((o) => o.result === 'unmatched').length;
  return apiJson(
    {
      received: outcomes.length,
      alerts: outcomes,
      ...(unmatched
        ? {
            unmatched,
            message: `${unmatched} alert(s) matched no service: give them a "component" label naming a service id of content/components.yaml, or add an alerts.match mapping to that service. They were recorded and nothing else was done.`,
          }
        : {}),
    },
    202,
    caller.headers,
  );
}
