/**
 * Single sign-on settings (owners only, `sso.manage`): require SSO for everyone, and mark owner
 * accounts break-glass. The rules and the audit are src/core/auth/sso-requirement.ts's.
 */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { setBreakGlass, setSsoRequired } from '../core/auth/sso-requirement.ts';
import { authContext } from '../lib/console-auth.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

const onOff = z.enum(['on', 'off'], { message: 'Choose on or off.' });

export const ssoActions = {
  setSsoRequired: defineAction({
    accept: 'form',
    input: z.object({ required: onOff }),
    handler: async (input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'setSsoRequired');
      const result = await setSsoRequired(authContext(ctx), staff, session, input.required === 'on');
      if (!result.ok) refuse(result.message);
      return {
        required: result.required,
        changed: result.changed,
        sessionsEnded: result.sessionsEnded,
        ownSessionEnded: result.ownSessionEnded,
      };
    },
  }),

  setBreakGlass: defineAction({
    accept: 'form',
    input: z.object({ staffId: rowIdField(), breakGlass: onOff }),
    handler: async (input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'setBreakGlass');
      const result = await setBreakGlass(authContext(ctx), staff, session, input.staffId, input.breakGlass === 'on');
      if (!result.ok) refuse(result.message);
      return { email: result.email, breakGlass: result.breakGlass, sessionsEnded: result.sessionsEnded };
    },
  }),
};
