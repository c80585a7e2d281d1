/** Deliveries and channel checks from the console. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { channels } from '../../db/schema/notify.ts';
import { recordAudit } from '../core/audit/log.ts';
import { staffLabel } from '../core/auth/staff.ts';
import { retryFailed } from '../core/notify/progress.ts';
import { sendTestMessage as sendTest } from '../core/notify/test-send.ts';
import { refuse, requireStaff } from './guard.ts';

export const notifyActions = {
  retryFailedDeliveries: defineAction({
    accept: 'form',
    input: z.object({ notificationId: z.coerce.number().int().positive() }),
    handler: (input, ctx) => {
      const { staff } = requireStaff(ctx, 'retryFailedDeliveries');
      const { db, now } = ctx.locals.candor;
      const at = now();
      const retried = retryFailed(db, input.notificationId, at);
      recordAudit(
        db,
        {
          actor: { type: 'staff', id: staff.id, label: staffLabel(staff) },
          ip: ctx.clientAddress,
          userAgent: ctx.request.headers.get('user-agent'),
          action: 'deliveries.retried',
          target: `notification:${input.notificationId}`,
          summary: { retried },
        },
        at,
      );
      return { retried };
    },
  }),

  sendTestMessage: defineAction({
    accept: 'form',
    input: z.object({ channel: z.enum(channels), address: z.string().max(2048) }),
    handler: (input, ctx) => {
      const { staff } = requireStaff(ctx, 'sendTestMessage');
      const { db, now, secrets, config, content } = ctx.locals.candor;
      const at = now();
      const keys = { keys: [secrets.encryptionKey], secret: secrets.secret };
      const result = sendTest(
        db,
        keys,
        { allowHosts: config.providers.webhookAllowHosts },
        input.channel,
        input.address,
        content.site.organisation.name,
        config.publicUrl,
        at,
      );
      if (!result.ok) refuse(result.message);
      recordAudit(
        db,
        {
          actor: { type: 'staff', id: staff.id, label: staffLabel(staff) },
          ip: ctx.clientAddress,
          userAgent: ctx.request.headers.get('user-agent'),
          action: 'settings.test_sent',
          target: `notification:${result.notificationId}`,
          summary: { channel: input.channel, recipient: result.recipientId },
        },
        at,
      );
      return { notificationId: result.notificationId, channel: result.channel, webhookSecret: result.webhookSecret };
    },
  }),
};
