/**
 * Customers' own actions under /documents: ask for a sign-in link, press its button, accept the NDA, sign
 * out. Public in the permission table (no staff session is needed, and none helps): accepting and signing
 * out check the reader session themselves (src/lib/reader-context.ts), never the staff one.
 */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { acceptNda } from '../core/access/nda.ts';
import { completeReaderLink, endReaderSession, requestReaderLink } from '../core/access/reader-sessions.ts';
import { clearReaderCookie, readerContext, readerSession, setReaderCookie } from '../lib/reader-context.ts';
import { refuse, requireAccess } from './guard.ts';

export const readerActions = {
  requestReaderLink: defineAction({
    accept: 'form',
    input: z.object({ email: z.string().max(320, 'Email: at most 320 characters.').nullish() }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'requestReaderLink');
      const result = await requestReaderLink(readerContext(ctx), input.email ?? '');
      if (!result.ok) refuse(result.message, result.tooMany ? 'TOO_MANY_REQUESTS' : 'BAD_REQUEST');
      return { message: result.message };
    },
  }),

  completeReaderLink: defineAction({
    accept: 'form',
    input: z.object({ token: z.string().max(200).nullish() }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'completeReaderLink');
      const result = await completeReaderLink(readerContext(ctx), input.token ?? '');
      if (!result.ok) refuse(result.message);
      setReaderCookie(ctx, result.token, result.expiresAt);
      return { redirect: '/documents/library' };
    },
  }),

  acceptNda: defineAction({
    accept: 'form',
    input: z.object({
      fullName: z.string().max(1000, 'Full name: at most 200 characters.').nullish(),
      company: z.string().max(1000, 'Company: at most 200 characters.').nullish(),
      agree: z.string().max(10).nullish(),
      version: z.string().max(64).nullish(),
    }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'acceptNda');
      const session = await readerSession(ctx);
      // Not 401: that is the console's "sign in" (a staff session), which is no help here.
      if (!session) refuse('Your session has ended. Sign in again to accept the agreement.');
      const result = await acceptNda(readerContext(ctx), ctx.locals.candor.content.ndas, session, {
        fullName: input.fullName ?? '',
        company: input.company ?? '',
        agree: input.agree === 'yes',
        version: input.version ?? '',
      });
      if (!result.ok) refuse(result.message);
      return { redirect: '/documents/library' };
    },
  }),

  signOutReader: defineAction({
    accept: 'form',
    handler: async (_input, ctx) => {
      requireAccess(ctx, 'signOutReader');
      const session = await readerSession(ctx);
      if (session) await endReaderSession(readerContext(ctx), session);
      clearReaderCookie(ctx);
      return { signedOut: true };
    },
  }),
};
