/** Staff revoke a customer's grant of gated documents: at once, audited, and the customer is told by email. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { documentTitles, formatMoment, revokeAccessGrant } from '../core/access/grants.ts';
import { staffAudit } from '../lib/subscription-context.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

export const accessGrantActions = {
  revokeAccessGrant: defineAction({
    accept: 'form',
    input: z.object({ grantId: rowIdField('Choose a grant to revoke (grantId).') }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'revokeAccessGrant');
      const { database, now, config, content } = ctx.locals.candor;
      const at = now();
      const revoked = await revokeAccessGrant(
        {
          database,
          publicUrl: config.publicUrl,
          organisation: content.site.organisation.name,
          titles: documentTitles(content.documents),
        },
        input.grantId,
        staffAudit(ctx),
        at,
      );
      if (!revoked.ok) refuse(revoked.message);
      return { grantId: input.grantId, name: revoked.grant.name, at: formatMoment(at) };
    },
  }),
};
