/** A staff member's own account: sessions, password, recovery codes. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { changePassword, regenerateRecoveryCodes, rememberDevice, revokeAllSessionsOf, revokeSession } from '../core/auth/console-auth.ts';
import { listSessions } from '../core/auth/session.ts';
import { authContext, setDeviceCookie } from '../lib/console-auth.ts';
import { refuse, requireStaff } from './guard.ts';

export const accountActions = {
  revokeSession: defineAction({
    accept: 'form',
    input: z.object({ sessionId: z.string().min(1).max(64) }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'revokeSession');
      const target = (await listSessions(ctx.locals.candor.database, staff.id)).find((s) => s.id === input.sessionId);
      if (!target) refuse('That session has already ended.');
      await revokeSession(authContext(ctx), staff, target);
      return { revoked: 1 };
    },
  }),

  revokeOtherSessions: defineAction({
    accept: 'form',
    handler: async (_input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'revokeOtherSessions');
      const revoked = await revokeAllSessionsOf(authContext(ctx), staff, staff, session.id);
      // Every recognised device was forgotten with the sessions; this one stays recognised.
      setDeviceCookie(ctx, await rememberDevice(authContext(ctx), staff.id));
      return { revoked };
    },
  }),

  changePassword: defineAction({
    accept: 'form',
    input: z.object({ current: z.string().max(1024), password: z.string().max(1024), confirm: z.string().max(1024) }),
    handler: async (input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'changePassword');
      const result = await changePassword(authContext(ctx), staff, session, input.current, input.password, input.confirm);
      if (!result.ok) refuse(result.message);
      setDeviceCookie(ctx, await rememberDevice(authContext(ctx), staff.id));
      return { endedSessions: result.endedSessions };
    },
  }),

  regenerateRecoveryCodes: defineAction({
    accept: 'form',
    handler: async (_input, ctx) => {
      const { staff } = requireStaff(ctx, 'regenerateRecoveryCodes');
      if (!staff.totpEnrolledAt) refuse('Set up an authenticator app first.');
      return { recoveryCodes: await regenerateRecoveryCodes(authContext(ctx), staff) };
    },
  }),
};
