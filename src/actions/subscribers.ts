/** Staff handling of subscribers: removal and lifting a suppression, each audited in the transaction that makes it. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { liftSuppression, removeSubscriber } from '../core/subscriptions/directory.ts';
import { staffAudit } from '../lib/subscription-context.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

const id = rowIdField();

export const subscriberActions = {
  removeSubscriber: defineAction({
    accept: 'form',
    input: z.object({ subscriberId: id }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'removeSubscriber');
      const { database, now } = ctx.locals.candor;
      const removed = await removeSubscriber(database, input.subscriberId, staffAudit(ctx), now());
      if (!removed.ok) refuse(removed.message);
      return { removed: input.subscriberId };
    },
  }),

  liftSuppression: defineAction({
    accept: 'form',
    input: z.object({ recipientId: id }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'liftSuppression');
      const { database, now } = ctx.locals.candor;
      const lifted = await liftSuppression(database, input.recipientId, staffAudit(ctx), now());
      if (!lifted.ok) refuse(lifted.message);
      return { lifted: input.recipientId };
    },
  }),
};
