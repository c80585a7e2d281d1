/** Deliveries and channel checks from the console. */

import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { retryFailed } from '../core/notify/progress.ts';
import { sendTestMessage as sendTest } from '../core/notify/test-send.ts';
import { channels } from '../core/notify/types.ts';
import { auditStaffAction } from '../lib/staff-audit.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

export const notifyActions = {
  retryFailedDeliveries: defineAction({
    accept: 'form',
    input: z.object({ notificationId: rowIdField() }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'retryFailedDeliveries');
      const { database, now } = ctx.locals.candor;
      const retried = await retryFailed(database, input.notificationId, now());
      await auditStaffAction(ctx, 'deliveries.retried', `notification:${input.notificationId}`, { retried });
      return { retried };
    },
  }),

  sendTestMessage: defineAction({
    accept: 'form',
    input: z.object({ channel: z.enum(channels), address: z.string().max(2048) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'sendTestMessage');
      const { database, now, keys, config, content } = ctx.locals.candor;
      const result = await sendTest(
        database,
        keys,
        { allowHosts: config.providers.webhookAllowHosts },
        input.channel,
        input.address,
        content.site.organisation.name,
        config.publicUrl,
        now(),
      );
      if (!result.ok) refuse(result.message);
      await auditStaffAction(ctx, 'settings.test_sent', `notification:${result.notificationId}`, {
        channel: input.channel,
        recipient: result.recipientId,
      });
      return { notificationId: result.notificationId, channel: result.channel, webhookSecret: result.webhookSecret };
    },
  }),
};
