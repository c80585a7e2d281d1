/**
 * The three alert receivers (POST /api/v1/alerts/{alertmanager,grafana,generic}) as staff API
 * operations (src/lib/api/operations.ts): the endpoint runner checks the token (alerts.ingest) and the
 * payload against its schema; this turns the payload into notices and hands them to the alert flows.
 * Answers 202: what each alert did, and for alerts that matched no service, how to map them.
 */
import { receiveAlerts } from '../core/alerts/drafts.ts';
import type { alertReceiptSchema } from '../core/alerts/payloads.ts';
import { type AlertSource, readAlertPayload } from '../core/alerts/payloads.ts';
import { alertCaller, alertContext } from './alert-context.ts';
import { endpoint, refused } from './api/endpoint.ts';
import type { ApiOperation } from './api/operations.ts';

/** A receiver operation: its body is one source's payload, its answer the receipt. */
type ReceiverOperation = ApiOperation & { success: { schema: typeof alertReceiptSchema } };

export function alertReceiver(operation: ReceiverOperation, source: AlertSource) {
  return endpoint(operation, async ({ body }, call) => {
    const read = readAlertPayload(source, body);
    // the runner checked the body against this source's schema already
    if (!read.ok) return refused(read.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    const outcomes = await receiveAlerts(alertContext(call), alertCaller(call.principal), source, read.notices, read.detail);
    const unmatched = outcomes.filter((o) => o.result === 'unmatched').length;
    return {
      ok: true,
      body: {
        received: outcomes.length,
        alerts: outcomes,
        ...(unmatched
          ? {
              unmatched,
              message: `${unmatched} alert(s) matched no service: give them a "component" label naming a service id of content/components.yaml, or add an alerts.match mapping to that service. They were recorded and nothing else was done.`,
            }
          : {}),
      },
    };
  });
}
