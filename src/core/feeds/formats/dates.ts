/** The date syntaxes the formats require. */

/** RFC 822 (as updated by RFC 1123), as RSS 2.0 requires: `Tue, 03 Jun 2025 09:30:00 GMT`. */
export function rfc822(date: Date): string {
  return date.toUTCString();
}

/** RFC 3339 in UTC to the second, as Atom and JSON Feed require: `2025-06-03T09:30:00Z`. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
