/** POST /api/v1/alerts/alertmanager: alerts from monitoring (src/lib/api/operations.ts `receiveAlertmanagerOp`). */
import { alertReceiver } from '../../../../lib/alert-receiver.ts';
import { otherMethods } from '../../../../lib/api/endpoint.ts';
import { receiveAlertmanagerOp } from '../../../../lib/api/operations.ts';

export const prerender = false;

export const POST = alertReceiver(receiveAlertmanagerOp, 'alertmanager');

export const ALL = otherMethods(['POST']);
