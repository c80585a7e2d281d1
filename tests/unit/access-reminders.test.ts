/**
 * When reviewers are reminded of a waiting access request (src/core/access/reminders.ts), on a clock:
 * one working day (Monday to Friday, UTC) after it was confirmed or last reminded, never at the weekend.
 */
import { describe, expect, it } from 'vitest';
import { oneWorkingDayAfter, reminderDue } from '../../src/core/access/reminders.ts';

const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();

describe('one working day after', () => {
  it.each([
    ['Monday 10:00 → Tuesday 10:00', '2026-11-30T10:00:00Z', '2026-12-01T10:00:00.000Z'],
    ['Thursday 23:59 → Friday 23:59', '2026-12-03T23:59:00Z', '2026-12-04T23:59:00.000Z'],
    ['Friday 16:00 → Monday 16:00, not Saturday', '2026-12-04T16:00:00Z', '2026-12-07T16:00:00.000Z'],
    ['Saturday 10:00 → Tuesday 00:00 (counted from Monday)', '2026-12-05T10:00:00Z', '2026-12-08T00:00:00.000Z'],
    ['Sunday 23:00 → Tuesday 00:00', '2026-12-06T23:00:00Z', '2026-12-08T00:00:00.000Z'],
  ])('%s', (_name, from, due) => {
    expect(iso(oneWorkingDayAfter(at(from)))).toBe(due);
  });

  it('counts from the last reminder, else the confirmation, else the request', () => {
    const createdAt = at('2026-12-01T09:00:00Z');
    expect(iso(reminderDue({ createdAt, verifiedAt: null, remindedAt: null }))).toBe('2026-12-02T09:00:00.000Z');
    expect(iso(reminderDue({ createdAt, verifiedAt: at('2026-12-01T12:00:00Z'), remindedAt: null }))).toBe('2026-12-02T12:00:00.000Z');
    expect(iso(reminderDue({ createdAt, verifiedAt: at('2026-12-01T12:00:00Z'), remindedAt: at('2026-12-04T16:00:00Z') }))).toBe(
      '2026-12-07T16:00:00.000Z',
    );
  });

  it('a clock walked over three weeks in 15-minute steps reminds at most once per working day, never at the weekend', () => {
    let request = { createdAt: at('2026-12-04T16:00:00Z'), verifiedAt: at('2026-12-04T16:00:00Z'), remindedAt: null as Date | null };
    const reminders: Date[] = [];
    for (let t = request.createdAt.getTime(); t < request.createdAt.getTime() + 21 * 86_400_000; t += 15 * 60_000) {
      const now = new Date(t);
      if (reminderDue(request) <= now) {
        reminders.push(now);
        request = { ...request, remindedAt: now };
      }
    }
    expect(iso(reminders[0] ?? new Date(0))).toBe('2026-12-07T16:00:00.000Z');
    expect(reminders.every((d) => d.getUTCDay() !== 0 && d.getUTCDay() !== 6)).toBe(true);
    const days = reminders.map((d) => d.toISOString().slice(0, 10));
    expect(new Set(days).size).toBe(days.length);
    // 15 working days in the three weeks after a Friday, less the Friday itself
    expect(reminders.length).toBe(14);
  });
});
