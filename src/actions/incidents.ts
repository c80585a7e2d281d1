/** The incident composer: preview exactly what goes out, then publish it. */
import { ActionError, defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { rowId } from '../core/http/row-id.ts';
import { breachNoticeSection, markAuthorityNotified } from '../core/incidents/breach.ts';
import { editIncident, editUpdate } from '../core/incidents/edit.ts';
import {
  auditIncident,
  declareIncident,
  incidentDraft,
  postUpdate,
  previewIncidentUpdate,
  updateProblem,
} from '../core/incidents/incidents.ts';
import { windowProblem } from '../core/incidents/maintenance.ts';
import { redact, scanForPersonalData } from '../core/incidents/pii-guard.ts';
import { publishPostmortem } from '../core/incidents/postmortem.ts';
import { cancelScheduledUpdate, scheduleUpdate } from '../core/incidents/schedule.ts';
import { incidentKinds, incidentSeverities } from '../core/incidents/types.ts';
import { incidentContext } from '../lib/incident-context.ts';
import { type IncidentForm, readIncidentForm } from '../lib/incident-form.ts';
import { defaultFirstUpdate } from '../lib/incident-template.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

const TYPED_ORGANISATIONS =
  'Choose the customer organisations from the list: a typed company name cannot target a notice, since anyone can type it at sign-up.';

/**
 * A targeted notice that reaches no one is refused with 412 (its confirmation, "Send anyway", is the
 * precondition), so the composer can show that confirmation next to the refusal.
 */
function refused(result: { message: string; findings?: { label: string; preview: string }[]; noRecipients?: true }): never {
  throw new ActionError({
    code: result.noRecipients ? 'PRECONDITION_FAILED' : 'BAD_REQUEST',
    message: result.findings?.length
      ? `${result.message} Found: ${result.findings.map((f) => `${f.label} (${f.preview})`).join(', ')}.`
      : result.message,
  });
}

const incidentIdOf = (form: FormData): number | null => rowId(form.get('incidentId')?.toString());

/** The composer's form; an outage declared without a text gets its template's first update (src/lib/incident-template.ts). */
function composed(form: FormData, ctx: Parameters<typeof incidentContext>[0]): IncidentForm {
  const { content } = ctx.locals.candor;
  const input = readIncidentForm(form, content.components);
  if (incidentIdOf(form) === null && input.body.trim() === '') input.body = defaultFirstUpdate(content, input) ?? '';
  return input;
}

export const incidentActions = {
  previewIncident: defineAction({
    accept: 'form',
    handler: async (form: FormData, ctx) => {
      requireStaff(ctx, 'previewIncident');
      const ic = incidentContext(ctx);
      const input = composed(form, ctx);
      if (input.typedOrganisations !== '') refuse(TYPED_ORGANISATIONS);
      const id = incidentIdOf(form);
      const draft = (id === null ? null : await incidentDraft(ic.database, id)) ?? {
        id: null,
        kind: input.kind,
        severity: input.severity,
        title: input.title,
        organisations: input.organisations.length ? input.organisations : null,
        window: input.window,
      };
      // Publishing names what is missing; a preview without a kind or a severity had no cadence to
      // compute from, and a half-written window reached the date formatting: both were 500s.
      if (!(incidentKinds as readonly string[]).includes(draft.kind) || !(incidentSeverities as readonly string[]).includes(draft.severity))
        refuse('Choose the kind and severity of the incident to preview it.');
      if (draft.id === null && draft.kind === 'maintenance') {
        const problem = windowProblem(draft.window, ic.now);
        if (problem) refuse(problem);
      }
      // What publishing would refuse is refused here too, naming it (an unreadable promise or status was a 500).
      const checked = draft.id === null && draft.kind === 'maintenance' ? { ...input, status: 'scheduled' as const } : input;
      const problem = await updateProblem(ic, id, { ...checked, kind: draft.kind });
      if (problem) refuse(problem);
      const facts = id === null ? input.breach : null;
      if (facts && (Number.isNaN(facts.awareAt.getTime()) || (facts.occurredAt && Number.isNaN(facts.occurredAt.getTime()))))
        refuse('Write the times of the breach as YYYY-MM-DD HH:MM (UTC).');
      // "Redact them": the flagged items are replaced, and the composer comes back with the cleaned text.
      if (form.get('redact') === 'yes') input.body = redact(input.body, scanForPersonalData(input.body));
      const staffText = input.body;
      // The preview shows the first breach notice as it will go out: with the Art. 33(3) facts appended.
      const shown =
        id === null && input.breach ? { ...input, body: `${input.body.trim()}\n\n${breachNoticeSection(input.breach, ic.site)}` } : input;
      const preview = await previewIncidentUpdate(ic, draft, shown);
      return { ...preview, findings: scanForPersonalData(staffText), body: staffText };
    },
  }),

  publishIncident: defineAction({
    accept: 'form',
    handler: async (form: FormData, ctx) => {
      requireStaff(ctx, 'publishIncident');
      const ic = incidentContext(ctx);
      const input = composed(form, ctx);
      // Ignoring typed names would publish to every subscriber: refused, naming the way that works.
      if (input.typedOrganisations !== '') refuse(TYPED_ORGANISATIONS);
      const id = incidentIdOf(form);
      const scheduleAt = String(form.get('scheduleAt') ?? '').trim();
      if (scheduleAt !== '') {
        if (id === null)
          throw new ActionError({ code: 'BAD_REQUEST', message: 'Declare the incident now; later updates can be scheduled.' });
        const scheduled = await scheduleUpdate(ic, id, input, new Date(`${scheduleAt}Z`));
        if (!scheduled.ok) refused(scheduled);
        return { incidentId: id, notificationId: 0, deliveries: 0, scheduled: scheduled.id };
      }
      const result = id === null ? await declareIncident(ic, input) : await postUpdate(ic, id, input);
      if (!result.ok) refused(result);
      return { incidentId: result.incidentId, notificationId: result.notificationId, deliveries: result.deliveries, scheduled: null };
    },
  }),

  publishPostmortem: defineAction({
    accept: 'form',
    input: z.object({
      incidentId: rowIdField(),
      postmortem: z.string().max(60_000),
      confirmPersonalData: z.string().nullish(),
      confirmNoRecipients: z.string().nullish(),
    }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'publishPostmortem');
      const result = await publishPostmortem(
        incidentContext(ctx),
        input.incidentId,
        input.postmortem,
        input.confirmPersonalData === 'yes',
        input.confirmNoRecipients === 'yes',
      );
      if (!result.ok) refused(result);
      return { deliveries: result.deliveries };
    },
  }),

  markAuthorityNotified: defineAction({
    accept: 'form',
    input: z.object({ incidentId: rowIdField() }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'markAuthorityNotified');
      const ic = incidentContext(ctx);
      // Recorded and audited in one transaction, once: of concurrent clicks one records it.
      const recorded = await markAuthorityNotified(ic.database, input.incidentId, ic.now, (tx) =>
        auditIncident(ic, tx, 'incidents.authority_notified', `incident:${input.incidentId}`, { at: ic.now.toISOString() }),
      );
      if (!recorded)
        throw new ActionError({ code: 'BAD_REQUEST', message: 'This is not a breach, or the authority was already recorded as notified.' });
      return { notifiedAt: ic.now.toISOString() };
    },
  }),

  editIncidentUpdate: defineAction({
    accept: 'form',
    input: z.object({
      incidentId: rowIdField(),
      updateId: rowIdField(),
      body: z.string().max(30_000),
      notify: z.string().nullish(),
      confirmPersonalData: z.string().nullish(),
    }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'editIncidentUpdate');
      const result = await editUpdate(incidentContext(ctx), input.incidentId, input.updateId, {
        body: input.body,
        notify: input.notify === 'yes',
        confirmPersonalData: input.confirmPersonalData === 'yes',
      });
      if (!result.ok) refused(result);
      return { updateId: input.updateId, deliveries: result.deliveries, notified: input.notify === 'yes' };
    },
  }),

  editIncident: defineAction({
    accept: 'form',
    input: z.object({
      incidentId: rowIdField(),
      title: z.string().max(300),
      severity: z.string().max(20),
      notify: z.string().nullish(),
    }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'editIncident');
      const result = await editIncident(incidentContext(ctx), input.incidentId, {
        title: input.title,
        severity: input.severity,
        notify: input.notify === 'yes',
      });
      if (!result.ok) refused(result);
      return { deliveries: result.deliveries, notified: input.notify === 'yes' };
    },
  }),

  cancelScheduledUpdate: defineAction({
    accept: 'form',
    input: z.object({ scheduledId: rowIdField() }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'cancelScheduledUpdate');
      const result = await cancelScheduledUpdate(incidentContext(ctx), input.scheduledId);
      if (!result.ok) throw new ActionError({ code: 'BAD_REQUEST', message: result.message });
      return { cancelled: input.scheduledId };
    },
  }),
};
