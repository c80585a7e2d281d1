/** POST /api/v1/alerts/grafana: alerts from monitoring (src/lib/api/operations.ts `receiveGrafanaOp`). */
import { alertReceiver } from '../../../../lib/alert-receiver.ts';
import { otherMethods } from '../../../../lib/api/endpoint.ts';
import { receiveGrafanaOp } from '../../../../lib/api/operations.ts';

export const prerender = false;

export const POST = alertReceiver(receiveGrafanaOp, 'grafana');

export const ALL = otherMethods(['POST']);
