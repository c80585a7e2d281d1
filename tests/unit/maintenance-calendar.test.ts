import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { needsObjectionPeriod } from '../../src/core/changes/notices.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { escapeText, foldLine, maintenanceCalendar } from '../../src/core/incidents/calendar.ts';
import { windowProblem } from '../../src/core/incidents/maintenance.ts';
import { fillTemplate, formatWindow, templateValues } from '../../src/core/incidents/templates.ts';
import type { IncidentView } from '../../src/core/incidents/types.ts';
import { ROOT } from '../helpers/server.ts';

const window = { startsAt: new Date('2026-03-10T02:00:00Z'), endsAt: new Date('2026-03-10T04:30:00Z') };
const incident: IncidentView = {
  id: 12,
  kind: 'maintenance',
  severity: 'minor',
  title: 'Upgrade; search, reindex\\done',
  status: 'scheduled',
  components: [],
  startedAt: window.startsAt,
  resolvedAt: null,
  nextUpdateBy: null,
  window,
};

describe('maintenance calendar (.ics)', () => {
  const ics = maintenanceCalendar({
    incident,
    organisation: 'Lumenwork',
    url: 'https://trust.example/incidents/12',
    host: 'trust.example',
    now: new Date('2026-03-01T00:00:00Z'),
    description: `Line one.\nLine two with ${'é'.repeat(60)}`,
  });

  it('is one event in UTC, with CRLF line ends and a stable UID', () => {
    expect(ics).toMatch(/^BEGIN:VCALENDAR\r\nVERSION:2\.0\r\n/);
    expect(ics).toContain('\r\nDTSTART:20260310T020000Z\r\nDTEND:20260310T043000Z\r\n');
    expect(ics).toContain('UID:maintenance-12@trust.example\r\n');
    expect(ics?.endsWith('END:VEVENT\r\nEND:VCALENDAR\r\n')).toBe(true);
  });

  it('escapes text and folds long lines at 75 octets without splitting a character', () => {
    expect(ics).toContain('SUMMARY:Lumenwork maintenance: Upgrade\\; search\\, reindex\\\\done');
    for (const line of (ics ?? '').split('\r\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(75);
    const unfolded = (ics ?? '').replace(/\r\n /g, '');
    expect(unfolded).toContain(`DESCRIPTION:Line one.\\nLine two with ${'é'.repeat(60)}`);
    expect(escapeText('a\r\nb')).toBe('a\\nb');
    expect(foldLine('x'.repeat(80))).toBe(`${'x'.repeat(75)}\r\n ${'x'.repeat(5)}`);
  });

  it('marks maintenance called off before its window as cancelled; there is no calendar without a window', () => {
    const off = maintenanceCalendar({
      incident: { ...incident, status: 'resolved', resolvedAt: new Date('2026-03-05T00:00:00Z') },
      organisation: 'Lumenwork',
      url: 'u',
      host: 'h',
      now: new Date(),
      description: '',
    });
    expect(off).toContain('STATUS:CANCELLED');
    expect(
      maintenanceCalendar({
        incident: { ...incident, window: null },
        organisation: 'L',
        url: 'u',
        host: 'h',
        now: new Date(),
        description: '',
      }),
    ).toBeNull();
  });
});

describe('maintenance windows and templates', () => {
  const now = new Date('2026-03-01T00:00:00Z');
  it('names what is wrong with a window', () => {
    expect(windowProblem(null, now)).toMatch(/needs a window/);
    expect(windowProblem({ startsAt: window.endsAt, endsAt: window.startsAt }, now)).toBe(
      'The maintenance window must end after it starts.',
    );
    expect(windowProblem({ startsAt: new Date('2026-02-01T00:00Z'), endsAt: new Date('2026-02-01T01:00Z') }, now)).toMatch(/already over/);
    expect(windowProblem({ startsAt: window.startsAt, endsAt: new Date('2026-03-20T00:00Z') }, now)).toMatch(/7 days at most/);
    expect(windowProblem({ startsAt: new Date('2027-06-01T00:00Z'), endsAt: new Date('2027-06-01T01:00Z') }, now)).toMatch(/next year/);
    expect(windowProblem(window, now)).toBeNull();
  });

  it('fills the placeholders of the content templates', () => {
    const { site, templates } = loadContent(join(ROOT, 'content'));
    const reminder = templates.find((t) => t.id === 'maintenance-reminder');
    const values = templateValues({ site, title: 'Upgrade', services: ['Search', 'API', 'Web app'], window });
    const text = fillTemplate(reminder?.body ?? '', values);
    expect(text).toContain('Search, API and Web app starts at 2026-03-10 02:00 UTC');
    expect(text).not.toContain('{{');
    expect(formatWindow(window)).toBe('2026-03-10 02:00 UTC to 04:30 UTC');
    expect(formatWindow({ startsAt: window.startsAt, endsAt: new Date('2026-03-11T01:00Z') })).toBe(
      '2026-03-10 02:00 UTC to 2026-03-11 01:00 UTC',
    );
  });
});

describe('which subprocessor changes customers may object to', () => {
  const base = { subject: 'subprocessor' as const, id: 'x', name: 'X', before: null, after: null };
  it('additions and material changes, not corrections of links', () => {
    expect(needsObjectionPeriod({ ...base, change: 'added', fields: [] })).toBe(true);
    expect(needsObjectionPeriod({ ...base, change: 'removed', fields: [] })).toBe(false);
    expect(needsObjectionPeriod({ ...base, change: 'changed', fields: ['location'] })).toBe(true);
    expect(needsObjectionPeriod({ ...base, change: 'changed', fields: ['dpaUrl', 'website'] })).toBe(false);
    expect(
      needsObjectionPeriod({ subject: 'doc', change: 'changed', id: 'd', name: 'D', before: null, after: null, sections: ['A'] }),
    ).toBe(false);
  });
});
