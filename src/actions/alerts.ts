/**
 * Alert drafts in the console (src/core/alerts/drafts.ts): publish a waiting draft (declares its
 * incident through the normal flow), dismiss one, and accept a resolved alert's proposal to resolve
 * its incident. Each needs alerts.manage (the permission table); publishing and resolving also need
 * incidents.manage, since they declare and update an incident.
 */
import { ActionError, defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { dismissDraft, publishDraft, resolveDraftIncident } from '../core/alerts/drafts.ts';
import { can } from '../core/auth/permissions.ts';
import { actingAlertContext } from '../lib/alert-context.ts';
import { requireStaff, rowIdField } from './guard.ts';

/** The second permission of an action that declares or updates an incident. */
function requireIncidents(role: Parameters<typeof can>[0]) {
  if (!can(role, 'incidents.manage'))
    throw new ActionError({ code: 'FORBIDDEN', message: 'You are not allowed to declare or update incidents.' });
}

function refused(result: { message: string; findings?: { label: string; preview: string }[] }): never {
  throw new ActionError({
    code: 'BAD_REQUEST',
    message: result.findings?.length
      ? `${result.message} Found: ${result.findings.map((f) => `${f.label} (${f.preview})`).join(', ')}.`
      : result.message,
  });
}

export const alertActions = {
  publishAlertDraft: defineAction({
    accept: 'form',
    input: z.object({
      draftId: rowIdField(),
      title: z.string().max(400),
      body: z.string().max(40_000),
      confirmPersonalData: z.string().nullish(),
    }),
    handler: async (input, ctx) => {
      const auth = requireStaff(ctx, 'publishAlertDraft');
      requireIncidents(auth.staff.role);
      const result = await publishDraft(
        actingAlertContext(ctx),
        input.draftId,
        { title: input.title, body: input.body, confirmPersonalData: input.confirmPersonalData === 'yes' },
        { via: 'console' },
      );
      if (!result.ok) refused(result);
      return { incidentId: result.incidentId, deliveries: result.deliveries };
    },
  }),

  dismissAlertDraft: defineAction({
    accept: 'form',
    input: z.object({ draftId: rowIdField() }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'dismissAlertDraft');
      const result = await dismissDraft(actingAlertContext(ctx), input.draftId);
      if (!result.ok) refused(result);
      return { dismissed: input.draftId };
    },
  }),

  resolveAlertIncident: defineAction({
    accept: 'form',
    input: z.object({ draftId: rowIdField(), body: z.string().max(40_000), confirmPersonalData: z.string().nullish() }),
    handler: async (input, ctx) => {
      const auth = requireStaff(ctx, 'resolveAlertIncident');
      requireIncidents(auth.staff.role);
      const result = await resolveDraftIncident(actingAlertContext(ctx), input.draftId, {
        body: input.body,
        confirmPersonalData: input.confirmPersonalData === 'yes',
      });
      if (!result.ok) refused(result);
      return { incidentId: result.incidentId, deliveries: result.deliveries };
    },
  }),
};
