/** Announcements (change notices) for staff, and objections: filed by customers, tracked by staff. */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { editNotice, type NoticeEdit, publishNotice, scheduleNotice, unscheduleNotice } from '../core/changes/notices.ts';
import { fileObjection, updateObjection } from '../core/changes/objections.ts';
import { noticeContext, objectionDeps, objectionStaffContext } from '../lib/notice-context.ts';
import { refuse, requireAccess, requireStaff, rowIdField } from './guard.ts';

const noticeId = { noticeId: rowIdField() };
const text = (max: number) =>
  z
    .string()
    .max(max)
    .nullish()
    .transform((v) => v ?? '');

/**
 * The draft's fields, posted with every button of its form (Save draft, Publish now, Schedule, Back to
 * draft): the flow stores them in the same transaction as what the button does, so an edit is never
 * dropped. Absent (an older form, a script posting only the id): the notice goes out as saved.
 */
const draftFields = {
  intro: z.string().max(6000).nullish(),
  effectiveOn: text(20),
  objectionDeadline: text(20),
  overrideReason: text(1200),
};
const editOf = (input: {
  intro?: string | null;
  effectiveOn: string;
  objectionDeadline: string;
  overrideReason: string;
}): NoticeEdit | null =>
  input.intro === null || input.intro === undefined
    ? null
    : {
        intro: input.intro,
        effectiveOn: input.effectiveOn,
        objectionDeadline: input.objectionDeadline,
        overrideReason: input.overrideReason,
      };

export const changeActions = {
  editNotice: defineAction({
    accept: 'form',
    input: z.object({ ...noticeId, ...draftFields }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'editNotice');
      const result = await editNotice(noticeContext(ctx), input.noticeId, { ...input, intro: input.intro ?? '' });
      if (!result.ok) refuse(result.message);
      return { noticeId: input.noticeId };
    },
  }),

  /** "Publish now" (`when=now`) or "Schedule" (`when=later`, at `publishAt`); without `when`, a time schedules. */
  publishNotice: defineAction({
    accept: 'form',
    input: z.object({ ...noticeId, ...draftFields, publishAt: text(20), when: text(10) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'publishNotice');
      const nc = noticeContext(ctx);
      const edit = editOf(input);
      const publishAt = input.publishAt.trim();
      const later = input.when === 'later' || (input.when !== 'now' && publishAt !== '');
      if (later) {
        if (publishAt === '') refuse('Choose when to publish it (UTC) to schedule it.');
        const scheduled = await scheduleNotice(nc, input.noticeId, new Date(`${publishAt}Z`), edit);
        if (!scheduled.ok) refuse(scheduled.message);
        return { noticeId: input.noticeId, deliveries: 0, scheduled: true };
      }
      const result = await publishNotice(nc, input.noticeId, edit);
      if (!result.ok) refuse(result.message);
      return { noticeId: input.noticeId, deliveries: result.deliveries, scheduled: false };
    },
  }),

  unscheduleNotice: defineAction({
    accept: 'form',
    input: z.object({ ...noticeId, ...draftFields }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'unscheduleNotice');
      const result = await unscheduleNotice(noticeContext(ctx), input.noticeId, editOf(input));
      if (!result.ok) refuse(result.message);
      return { noticeId: input.noticeId };
    },
  }),

  updateObjection: defineAction({
    accept: 'form',
    input: z.object({ objectionId: rowIdField(), status: text(30), note: text(6000) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'updateObjection');
      const result = await updateObjection(objectionStaffContext(ctx), input.objectionId, {
        status: input.status || null,
        note: input.note,
      });
      if (!result.ok) refuse(result.message);
      return { objectionId: input.objectionId };
    },
  }),

  // the public's own: the signed link in the notice is the credential
  fileObjection: defineAction({
    accept: 'form',
    input: z.object({ token: z.string().max(120), reasons: text(12_000), contactName: text(300), organisation: text(300) }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'fileObjection');
      const result = await fileObjection(objectionDeps(ctx), input.token, input);
      if (!result.ok) refuse(result.message, result.locked ? 'TOO_MANY_REQUESTS' : 'BAD_REQUEST');
      return { reference: `O-${result.id}`, late: result.late };
    },
  }),
};
