/**
 * Access to gated documents: the public's request and its confirmation (the link's token is checked by
 * the flow), reviewers' decisions and the rules on email domains (src/core/access/requests.ts).
 */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import {
  approveAccessRequest as approve,
  refuseAccessRequest as refuse_,
  removeAccessRule as removeRule,
  requestAccess as request,
  saveAccessRule as saveRule,
  verifyAccessRequest as verify,
} from '../core/access/requests.ts';
import { accessContext, staffActor } from '../lib/access-context.ts';
import { refuse, requireAccess, requireStaff, rowIdField } from './guard.ts';

// A missing text field arrives as null; lengths are checked by the flow, with a message naming the field.
const text = (label: string, max: number) =>
  z
    .string()
    .max(max * 2, `${label}: too long (${max.toLocaleString('en-GB')} characters at most).`)
    .nullish();
const documentsField = z.array(z.string().max(120, 'Documents: there is no such document.')).max(50, 'Documents: too many chosen.');
const codeOf = (status: number | undefined) => (status === 429 ? 'TOO_MANY_REQUESTS' : 'BAD_REQUEST');

export const accessRequestActions = {
  requestAccess: defineAction({
    accept: 'form',
    input: z.object({
      documents: documentsField,
      name: text('Name', 200),
      email: text('Work email', 254),
      company: text('Company', 200),
      reason: text('Reason', 2000),
    }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'requestAccess');
      const r = await request(accessContext(ctx), {
        documents: input.documents,
        name: input.name ?? '',
        email: input.email ?? '',
        company: input.company ?? '',
        reason: input.reason ?? '',
      });
      if (!r.ok) refuse(r.message, codeOf(r.status));
      return { message: r.message };
    },
  }),

  verifyAccessRequest: defineAction({
    accept: 'form',
    input: z.object({ token: z.string().max(200) }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'verifyAccessRequest');
      const r = await verify(accessContext(ctx), input.token);
      if (!r.ok) refuse(r.message, codeOf(r.status));
      return { approved: r.approved, message: r.message };
    },
  }),

  approveAccessRequest: defineAction({
    accept: 'form',
    input: z.object({
      requestId: rowIdField('There is no such request.'),
      documents: documentsField,
      expires: z.string().max(40).nullish(),
    }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'approveAccessRequest');
      const r = await approve(accessContext(ctx), staffActor(ctx.locals), input.requestId, {
        documents: input.documents,
        expires: input.expires ?? '',
      });
      if (!r.ok) refuse(r.message);
      return { grantId: r.grantId };
    },
  }),

  refuseAccessRequest: defineAction({
    accept: 'form',
    input: z.object({ requestId: rowIdField('There is no such request.'), message: text('Message', 2000) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'refuseAccessRequest');
      const r = await refuse_(accessContext(ctx), staffActor(ctx.locals), input.requestId, input.message ?? '');
      if (!r.ok) refuse(r.message);
      return { refused: true };
    },
  }),

  saveAccessRule: defineAction({
    accept: 'form',
    input: z.object({
      ruleId: rowIdField('There is no such rule.').nullish(),
      pattern: text('Pattern', 260),
      decision: z.string().max(20).nullish(),
      documents: documentsField,
      grantDays: z.string().max(10).nullish(),
    }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'saveAccessRule');
      const r = await saveRule(accessContext(ctx), staffActor(ctx.locals), {
        id: input.ruleId ?? null,
        pattern: input.pattern ?? '',
        decision: input.decision ?? '',
        documents: input.documents,
        grantDays: input.grantDays ?? '',
      });
      if (!r.ok) refuse(r.message);
      return { pattern: r.pattern };
    },
  }),

  removeAccessRule: defineAction({
    accept: 'form',
    input: z.object({ ruleId: rowIdField('There is no such rule.') }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'removeAccessRule');
      const r = await removeRule(accessContext(ctx), staffActor(ctx.locals), input.ruleId);
      if (!r.ok) refuse(r.message);
      return { pattern: r.pattern };
    },
  }),
};
