import { type ActionAPIContext, ActionError } from 'astro:actions';
import { z } from 'astro/zod';
import { consoleActions } from '../core/auth/permissions.ts';
import { MAX_ROW_ID } from '../core/http/row-id.ts';
import { decideFor } from '../lib/console-auth.ts';

/**
 * Every action checks the same table the middleware does, so an action is
 * never reachable through a path the middleware did not consider.
 */
export function requireAccess(ctx: ActionAPIContext, name: keyof typeof consoleActions) {
  const decision = decideFor(consoleActions[name], ctx.locals.auth);
  if (decision === 'sign-in') throw new ActionError({ code: 'UNAUTHORIZED', message: 'Sign in first.' });
  if (decision !== 'allow') throw new ActionError({ code: 'FORBIDDEN', message: 'You are not allowed to do this.' });
  return ctx.locals.auth;
}

/** The signed-in staff member for actions that need one. */
export function requireStaff(ctx: ActionAPIContext, name: keyof typeof consoleActions) {
  const auth = requireAccess(ctx, name);
  if (!auth) throw new ActionError({ code: 'UNAUTHORIZED', message: 'Sign in first.' });
  return auth;
}

export function refuse(message: string, code: 'BAD_REQUEST' | 'UNAUTHORIZED' | 'TOO_MANY_REQUESTS' = 'BAD_REQUEST'): never {
  throw new ActionError({ code, message });
}

/** A form field naming a row by its id: a whole number a row can have (src/core/http/row-id.ts), or the input is refused. */
export const rowIdField = (message?: string) => z.coerce.number().int().positive(message).max(MAX_ROW_ID, message);
