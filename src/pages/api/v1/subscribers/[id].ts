/** DELETE /api/v1/subscribers/{id}: as the console's removeSubscriber (src/lib/api/operations.ts). */
import { removeSubscriber } from '../../../../core/subscriptions/directory.ts';
import { apiStaffAudit } from '../../../../lib/api/context.ts';
import { endpoint, notFound, otherMethods } from '../../../../lib/api/endpoint.ts';
import { removeSubscriberOp } from '../../../../lib/api/operations.ts';

export const prerender = false;

export const DELETE = endpoint(removeSubscriberOp, async ({ params }, call) => {
  const id = Number(params.id);
  const removed = await removeSubscriber(call.candor.database, id, apiStaffAudit(call), call.candor.now());
  if (!removed.ok) return notFound(removed.message);
  return { ok: true, body: { removed: id } };
});

export const ALL = otherMethods(['DELETE']);
