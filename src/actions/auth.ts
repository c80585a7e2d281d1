/** Sign-in, second factor, enrolment, one-time links, sign-out. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { completeEnrolment, completeLink, signIn, signOut, verifySecondFactor } from '../core/auth/console-auth.ts';
import { authContext, clearSessionCookie, setDeviceCookie, setSessionCookie } from '../lib/console-auth.ts';
import { safeConsolePath } from '../lib/safe-redirect.ts';
import { refuse, requireAccess, requireStaff } from './guard.ts';

const nextPath = { console: '/console', mfa: '/console/mfa', enrol: '/console/mfa/enrol' } as const;

export const authActions = {
  signIn: defineAction({
    accept: 'form',
    input: z.object({
      email: z.string().trim().min(1, 'Enter your email address.').max(320),
      password: z.string().min(1, 'Enter your password.').max(1024),
      next: z.string().max(2048).optional(),
    }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'signIn');
      const result = await signIn(authContext(ctx), input.email, input.password);
      if (!result.ok) refuse(result.message, 'UNAUTHORIZED');
      setSessionCookie(ctx, result.token);
      setDeviceCookie(ctx, result.device);
      return { redirect: result.next === 'console' ? safeConsolePath(input.next) : nextPath[result.next] };
    },
  }),

  verifyMfa: defineAction({
    accept: 'form',
    input: z.object({ code: z.string().trim().min(1, 'Enter a code.').max(64), next: z.string().max(2048).optional() }),
    handler: async (input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'verifyMfa');
      const result = await verifySecondFactor(authContext(ctx), staff, session, input.code);
      if (!result.ok) refuse(result.message);
      setDeviceCookie(ctx, result.device);
      return { redirect: safeConsolePath(input.next) };
    },
  }),

  enrolMfa: defineAction({
    accept: 'form',
    input: z.object({ pending: z.string().max(512), code: z.string().trim().min(1, 'Enter the 6-digit code.').max(16) }),
    handler: async (input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'enrolMfa');
      if (staff.totpEnrolledAt && !session.mfaVerifiedAt) refuse('Confirm your current authenticator first.');
      const result = await completeEnrolment(authContext(ctx), staff, session, input.pending, input.code);
      if (!result.ok) refuse(result.message);
      setDeviceCookie(ctx, result.device);
      return { recoveryCodes: result.recoveryCodes };
    },
  }),

  completeLink: defineAction({
    accept: 'form',
    input: z.object({ token: z.string().max(200), password: z.string().max(1024), confirm: z.string().max(1024) }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'completeLink');
      const result = await completeLink(authContext(ctx), input.token, input.password, input.confirm);
      if (!result.ok) refuse(result.message);
      setSessionCookie(ctx, result.token);
      setDeviceCookie(ctx, result.device);
      return { redirect: nextPath[result.next === 'mfa' ? 'console' : result.next] };
    },
  }),

  signOut: defineAction({
    accept: 'form',
    handler: async (_input, ctx) => {
      const { staff, session } = requireStaff(ctx, 'signOut');
      await signOut(authContext(ctx), staff, session);
      clearSessionCookie(ctx);
      return { signedOut: true };
    },
  }),
};
