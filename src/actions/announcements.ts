/**
 * The announcement composer: every button posts the whole form (Preview, Save draft, Publish now,
 * Schedule, Back to draft), and the flow stores what was typed in the same transaction as what the
 * button does. Lengths here only bound the request; the flow names what is wrong.
 */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import {
  type AnnouncementInput,
  announcementTopics,
  discardAnnouncement,
  previewAnnouncement,
  publishAnnouncement,
  saveAnnouncement,
  scheduleAnnouncement,
  unscheduleAnnouncement,
} from '../core/changes/announcements.ts';
import { rowId } from '../core/http/row-id.ts';
import { noticeContext } from '../lib/notice-context.ts';
import { refuse, requireStaff } from './guard.ts';

const text = (max: number) =>
  z
    .string()
    .max(max)
    .nullish()
    .transform((v) => v ?? '');

const composer = z.object({
  /** empty for a new announcement */
  announcementId: text(20),
  /** the composer's key for a new announcement: the same form posted twice makes one */
  formKey: text(100),
  title: text(2000),
  body: text(60_000),
  effectiveOn: text(40),
  publishAt: text(40),
  when: text(10),
  // one checkbox per change topic (announcementTopics)
  'topic:subprocessors': text(10),
  'topic:docs': text(10),
});
type ComposerForm = z.infer<typeof composer>;

/** The announcement the form is about, or null for a new one; anything else than a positive whole number is refused. */
function idOf(form: ComposerForm): number | null {
  const raw = form.announcementId.trim();
  if (raw === '') return null;
  return rowId(raw) ?? refuse('There is no such announcement.');
}

function inputOf(form: ComposerForm): AnnouncementInput {
  const ticked: Record<string, string> = { ...form };
  return {
    title: form.title,
    body: form.body,
    effectiveOn: form.effectiveOn,
    formKey: form.formKey,
    topics: announcementTopics.filter((t) => ticked[`topic:${t}`] === 'yes'),
  };
}

/** The time typed in the form (UTC, from a datetime-local field), or null when empty. */
function timeOf(form: ComposerForm): Date | null {
  const raw = form.publishAt.trim();
  if (raw === '') return null;
  const at = new Date(`${raw}Z`);
  if (Number.isNaN(at.getTime())) refuse(`The publication time must be a date and time (UTC), got "${raw.slice(0, 20)}".`);
  return at;
}

export const announcementActions = {
  previewAnnouncement: defineAction({
    accept: 'form',
    input: composer,
    handler: async (form, ctx) => {
      requireStaff(ctx, 'previewAnnouncement');
      const result = await previewAnnouncement(noticeContext(ctx), idOf(form), inputOf(form), timeOf(form));
      if (!result.ok) refuse(result.message);
      return { content: result.content, recipients: result.recipients };
    },
  }),

  saveAnnouncement: defineAction({
    accept: 'form',
    input: composer,
    handler: async (form, ctx) => {
      requireStaff(ctx, 'saveAnnouncement');
      const result = await saveAnnouncement(noticeContext(ctx), idOf(form), inputOf(form));
      if (!result.ok) refuse(result.message);
      return { id: result.id };
    },
  }),

  /** "Publish now" (`when=now`) or "Schedule" (`when=later`, at `publishAt`). */
  publishAnnouncement: defineAction({
    accept: 'form',
    input: composer,
    handler: async (form, ctx) => {
      requireStaff(ctx, 'publishAnnouncement');
      const ac = noticeContext(ctx);
      if (form.when === 'later') {
        const at = timeOf(form);
        if (!at) refuse('Choose when to publish it (UTC) to schedule it.');
        const scheduled = await scheduleAnnouncement(ac, idOf(form), inputOf(form), at);
        if (!scheduled.ok) refuse(scheduled.message);
        return { id: scheduled.id, deliveries: 0, scheduled: true };
      }
      const result = await publishAnnouncement(ac, idOf(form), inputOf(form));
      if (!result.ok) refuse(result.message);
      return { id: result.id, deliveries: result.deliveries, scheduled: false };
    },
  }),

  unscheduleAnnouncement: defineAction({
    accept: 'form',
    input: composer,
    handler: async (form, ctx) => {
      requireStaff(ctx, 'unscheduleAnnouncement');
      const id = idOf(form);
      if (id === null) refuse('That announcement is not scheduled.');
      const result = await unscheduleAnnouncement(noticeContext(ctx), id, inputOf(form));
      if (!result.ok) refuse(result.message);
      return { id };
    },
  }),

  discardAnnouncement: defineAction({
    accept: 'form',
    input: z.object({ announcementId: text(20) }),
    handler: async (form, ctx) => {
      requireStaff(ctx, 'discardAnnouncement');
      const id = rowId(form.announcementId) ?? refuse('There is no such announcement.');
      const result = await discardAnnouncement(noticeContext(ctx), id);
      if (!result.ok) refuse(result.message);
      return { id };
    },
  }),
};
