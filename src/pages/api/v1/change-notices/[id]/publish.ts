/** POST /api/v1/change-notices/{id}/publish: publish a drafted change notice now, as saved (src/lib/api/operations.ts). */
import { getNotice, publishNotice } from '../../../../../core/changes/notices.ts';
import { apiNoticeContext } from '../../../../../lib/api/context.ts';
import { endpoint, notFound, otherMethods, refused } from '../../../../../lib/api/endpoint.ts';
import { publishNoticeOp } from '../../../../../lib/api/operations.ts';

export const prerender = false;

export const POST = endpoint(publishNoticeOp, async ({ params }, call) => {
  const id = Number(params.id);
  if (!(await getNotice(call.candor.database, id))) return notFound(`There is no change notice ${params.id}.`);
  const result = await publishNotice(apiNoticeContext(call), id);
  if (!result.ok) return refused(result.message);
  return { ok: true, body: { noticeId: id, deliveries: result.deliveries } };
});

export const ALL = otherMethods(['POST']);
