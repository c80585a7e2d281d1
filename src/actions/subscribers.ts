/** Staff handling of subscribers: removal and lifting a suppression, both audited. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { liftSuppression } from '../core/subscriptions/directory.ts';
import { deleteSubscriber } from '../core/subscriptions/subscribers.ts';
import { auditStaffAction } from '../lib/staff-audit.ts';
import { refuse, requireStaff } from './guard.ts';

const id = z.coerce.number().int().positive();

export const subscriberActions = {
  removeSubscriber: defineAction({
    accept: 'form',
    input: z.object({ subscriberId: id }),
    handler: (input, ctx) => {
      requireStaff(ctx, 'removeSubscriber');
      const { db } = ctx.locals.candor;
      const channels = (
        db.$client.prepare('SELECT count(*) AS n FROM recipients WHERE subscriber_id = ?').get(input.subscriberId) as { n: number }
      ).n;
      if (channels === 0 && !db.$client.prepare('SELECT 1 FROM subscribers WHERE id = ?').get(input.subscriberId))
        refuse('That subscriber was already removed.');
      deleteSubscriber(db, input.subscriberId);
      auditStaffAction(ctx, 'subscribers.removed', `subscriber:${input.subscriberId}`, { channels });
      return { removed: input.subscriberId };
    },
  }),

  liftSuppression: defineAction({
    accept: 'form',
    input: z.object({ recipientId: id }),
    handler: (input, ctx) => {
      requireStaff(ctx, 'liftSuppression');
      const { db } = ctx.locals.candor;
      const row = db.$client.prepare('SELECT status, suppressed_reason, channel FROM recipients WHERE id = ?').get(input.recipientId) as
        | { status: string; suppressed_reason: string | null; channel: string }
        | undefined;
      if (row?.status !== 'suppressed') refuse('That address is not suppressed.');
      liftSuppression(db, input.recipientId);
      auditStaffAction(ctx, 'subscribers.unsuppressed', `recipient:${input.recipientId}`, {
        channel: row.channel,
        before: { reason: row.suppressed_reason },
      });
      return { lifted: input.recipientId };
    },
  }),
};
