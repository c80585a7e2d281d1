/** Staff revoke a customer's grant of gated documents: at once, audited, and the customer is told by email. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { documentTitles, formatMoment, revokeAccessGrant } from '../core/access/grants.ts';
import { MAX_ROW_ID } from '../core/http/row-id.ts';
import { staffAudit } from '../lib/subscription-context.ts';
import { refuse, requireStaff } from './guard.ts';

const GRANT_ID = 'Choose a grant to revoke (grantId).';

export const accessGrantActions = {
  revokeAccessGrant: defineAction({
    accept: 'form',
    input: z.object({ grantId: z.coerce.number({ error: GRANT_ID }).int(GRANT_ID).positive(GRANT_ID).max(MAX_ROW_ID, GRANT_ID) }),
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
