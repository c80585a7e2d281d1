/** GET /api/v1/subscribers: every subscriber address, paged (personal data: subscribers.view; audited). */
import { subscriberAddressPage } from '../../../../core/subscriptions/directory.ts';
import { apiStaffAudit, pageLimit, readCursor } from '../../../../lib/api/context.ts';
import { endpoint, otherMethods } from '../../../../lib/api/endpoint.ts';
import { listSubscribersOp } from '../../../../lib/api/operations.ts';

export const prerender = false;

export const GET = endpoint(listSubscribersOp, async ({ query }, call) => {
  const { candor } = call;
  const limit = pageLimit(query.limit);
  const cursor = readCursor(query.cursor);
  const rows = await subscriberAddressPage(
    candor.database,
    candor.keys,
    cursor ? { subscriberId: cursor[0], recipientId: cursor[1] } : null,
    limit,
    apiStaffAudit(call),
    candor.now(),
  );
  const last = rows.at(-1);
  return {
    ok: true,
    body: {
      addresses: rows.map((r) => ({ ...r, subscribedAt: r.subscribedAt.toISOString() })),
      nextCursor: rows.length === limit && last ? `${last.subscriberId}.${last.addressId}` : null,
    },
  };
});

export const ALL = otherMethods(['GET']);
