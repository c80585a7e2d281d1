/** Staff management (owners): invitations, roles, disabling, sessions, lock-outs. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import {
  changeRole,
  clearLockout,
  inviteStaff,
  rememberDevice,
  resetStaffSignIn,
  revokeAllSessionsOf,
  setStaffEnabled,
} from '../core/auth/console-auth.ts';
import { sendInvitationEmail } from '../core/auth/invitation-email.ts';
import { getStaff, staffRoles } from '../core/auth/staff.ts';
import { authContext, setDeviceCookie } from '../lib/console-auth.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

const staffId = rowIdField();

export const staffActions = {
  inviteStaff: defineAction({
    accept: 'form',
    input: z.object({ email: z.string().trim().min(1, 'Enter an email address.').max(320), role: z.enum(staffRoles) }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'inviteStaff');
      const result = await inviteStaff(authContext(ctx), staff, input.email, input.role);
      if (!result.ok) refuse(result.message);
      const { candor } = ctx.locals;
      const link = new URL(`console/link/${result.token}`, candor.config.publicUrl).href;
      const emailed = candor.config.providers.email !== null;
      if (emailed) {
        await sendInvitationEmail(
          candor.database,
          candor.keys,
          result.member.email,
          result.member.role,
          link,
          candor.content.site.organisation.name,
          staff.email,
          candor.now(),
        );
      }
      return { email: result.member.email, role: result.member.role, link, emailed };
    },
  }),

  changeRole: defineAction({
    accept: 'form',
    input: z.object({ staffId, role: z.enum(staffRoles) }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'changeRole');
      const result = await changeRole(authContext(ctx), staff, input.staffId, input.role);
      if (!result.ok) refuse(result.message);
      return { staffId: input.staffId };
    },
  }),

  disableStaff: defineAction({
    accept: 'form',
    input: z.object({ staffId }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'disableStaff');
      const result = await setStaffEnabled(authContext(ctx), staff, input.staffId, false);
      if (!result.ok) refuse(result.message);
      return { staffId: input.staffId };
    },
  }),

  enableStaff: defineAction({
    accept: 'form',
    input: z.object({ staffId }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'enableStaff');
      const result = await setStaffEnabled(authContext(ctx), staff, input.staffId, true);
      if (!result.ok) refuse(result.message);
      return { staffId: input.staffId };
    },
  }),

  resetStaffSignIn: defineAction({
    accept: 'form',
    input: z.object({ staffId }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'resetStaffSignIn');
      const target = await getStaff(ctx.locals.candor.database, input.staffId);
      if (!target) refuse('No such staff member.');
      const result = await resetStaffSignIn(authContext(ctx), staff, target.email);
      if (!result.ok) refuse(result.message);
      const link = new URL(`console/link/${result.token}`, ctx.locals.candor.config.publicUrl).href;
      return { email: result.member.email, role: result.member.role, link };
    },
  }),

  clearStaffLockout: defineAction({
    accept: 'form',
    input: z.object({ staffId }),
    handler: async (input, ctx) => {
      const { staff } = requireStaff(ctx, 'clearStaffLockout');
      const result = await clearLockout(authContext(ctx), staff, input.staffId);
      if (!result.ok) refuse(result.message);
      return { email: result.member.email };
    },
  }),

  revokeStaffSessions: defineAction({
    accept: 'form',
    input: z.object({ staffId }),
    handler: async (input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'revokeStaffSessions');
      const target = await getStaff(ctx.locals.candor.database, input.staffId);
      if (!target) refuse('No such staff member.');
      const own = target.id === staff.id;
      const revoked = await revokeAllSessionsOf(authContext(ctx), staff, target, own ? session.id : undefined);
      // Their recognised devices were forgotten too; an owner ending their own keeps this one.
      if (own) setDeviceCookie(ctx, await rememberDevice(authContext(ctx), staff.id));
      return { revoked };
    },
  }),
};
