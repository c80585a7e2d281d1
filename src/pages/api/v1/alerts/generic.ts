/** POST /api/v1/alerts/generic: alerts from monitoring (src/lib/api/operations.ts `receiveGenericOp`). */
import { alertReceiver } from '../../../../lib/alert-receiver.ts';
import { otherMethods } from '../../../../lib/api/endpoint.ts';
import { receiveGenericOp } from '../../../../lib/api/operations.ts';

export const prerender = false;

export const POST = alertReceiver(receiveGenericOp, 'generic');

export const ALL = otherMethods(['POST']);
