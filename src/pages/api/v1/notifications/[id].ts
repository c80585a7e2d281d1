/** GET /api/v1/notifications/{id}: a notification's delivery progress (src/lib/api/operations.ts). */
import { notificationProgress } from '../../../../core/notify/progress.ts';
import { endpoint, notFound, otherMethods } from '../../../../lib/api/endpoint.ts';
import { notificationProgressOp } from '../../../../lib/api/operations.ts';

export const prerender = false;

export const GET = endpoint(notificationProgressOp, async ({ params }, { candor }) => {
  const [progress] = await notificationProgress(candor.database, { ids: [Number(params.id)] });
  if (!progress) return notFound(`There is no notification ${params.id}.`);
  return { ok: true, body: { ...progress, createdAt: progress.createdAt.toISOString() } };
});

export const ALL = otherMethods(['GET']);
