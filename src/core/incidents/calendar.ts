/**
 * The maintenance window as an iCalendar file (RFC 5545), one VEVENT. Written
 * here rather than with a calendar library: one event needs escaping, line
 * folding and UTC times, and the libraries bring a validation framework with
 * them for that.
 */
import type { IncidentView } from './types.ts';

/** RFC 5545 3.3.11: backslash, semicolon, comma and newlines are escaped in TEXT. */
export function escapeText(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/;/g, '\\;')
    .replace(/,/g, '\\,')
    .replace(/\r\n|\r|\n/g, '\\n');
}

/** RFC 5545 3.1: lines longer than 75 octets are folded, never inside a UTF-8 sequence. */
export function foldLine(line: string): string {
  const parts: string[] = [];
  let current = '';
  let octets = 0;
  for (const char of line) {
    const size = Buffer.byteLength(char);
    const limit = parts.length === 0 ? 75 : 74; // continuation lines start with a space
    if (octets + size > limit) {
      parts.push(current);
      current = '';
      octets = 0;
    }
    current += char;
    octets += size;
  }
  parts.push(current);
  return parts.join('\r\n ');
}

const stamp = (d: Date) => `${d.toISOString().replace(/[-:]/g, '').slice(0, 15)}Z`;

export function maintenanceCalendar(input: {
  incident: IncidentView;
  organisation: string;
  url: string;
  /** the host of the public URL, for a UID unique to this installation */
  host: string;
  now: Date;
  description: string;
}): string | null {
  const { incident } = input;
  if (!incident.window) return null;
  const cancelled = incident.status === 'resolved' && incident.resolvedAt !== null && incident.resolvedAt < incident.window.startsAt;
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    `PRODID:-//Candor//${escapeText(input.organisation)} trust center//EN`,
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    'BEGIN:VEVENT',
    `UID:maintenance-${incident.id}@${input.host}`,
    `DTSTAMP:${stamp(input.now)}`,
    `DTSTART:${stamp(incident.window.startsAt)}`,
    `DTEND:${stamp(incident.window.endsAt)}`,
    `SUMMARY:${escapeText(`${input.organisation} maintenance: ${incident.title}`)}`,
    `DESCRIPTION:${escapeText(`${input.description}\n\n${input.url}`)}`,
    `URL:${input.url}`,
    `STATUS:${cancelled ? 'CANCELLED' : 'CONFIRMED'}`,
    'TRANSP:TRANSPARENT',
    'END:VEVENT',
    'END:VCALENDAR',
  ];
  return `${lines.map(foldLine).join('\r\n')}\r\n`;
}
