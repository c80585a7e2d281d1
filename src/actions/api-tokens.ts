/** Console → API tokens: make one (the secret is in this answer only) and revoke one; the rules and audit are src/core/api/tokens.ts's. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { createApiToken, DEFAULT_TOKEN_DAYS, revokeApiToken } from '../core/api/tokens.ts';
import { clientIp } from '../lib/client-ip.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

export const apiTokenActions = {
  createApiToken: defineAction({
    accept: 'form',
    input: z.object({
      name: z.string().max(200),
      scopes: z.array(z.string().max(60)).max(50).optional(),
      days: z.union([z.literal(''), z.coerce.number()]).optional(),
    }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'createApiToken');
      const created = await createApiToken(
        ctx.locals.candor.database,
        { id: staff.id, email: staff.email, role: staff.role },
        { ip: clientIp(ctx), userAgent: ctx.request.headers.get('user-agent') },
        {
          name: input.name,
          scopes: input.scopes ?? [],
          days: input.days === '' || input.days === undefined ? DEFAULT_TOKEN_DAYS : input.days,
        },
        ctx.locals.candor.now(),
      );
      if (!created.ok) refuse(created.message);
      return { token: created.token, name: created.view.name, prefix: created.view.prefix };
    },
  }),

  revokeApiToken: defineAction({
    accept: 'form',
    input: z.object({ tokenId: rowIdField() }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'revokeApiToken');
      const revoked = await revokeApiToken(
        ctx.locals.candor.database,
        { id: staff.id, email: staff.email, role: staff.role },
        { ip: clientIp(ctx), userAgent: ctx.request.headers.get('user-agent') },
        input.tokenId,
        ctx.locals.candor.now(),
      );
      if (!revoked.ok) refuse(revoked.message);
      return { revoked: input.tokenId };
    },
  }),
};
