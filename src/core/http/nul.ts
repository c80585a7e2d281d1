/**
 * Whether a request body carries a NUL character in a field: raw in any body, `%00` in a form
 * (`application/x-www-form-urlencoded`), `\u0000` in JSON. No field takes one, and PostgreSQL cannot
 * store one in text at all (it refuses the whole statement, which would be a server error), where
 * SQLite would store it; the middleware refuses such a body so both engines answer alike.
 *
 * Only an encoding of NUL counts: a form's literal `%00` arrives as `%2500`, and a JSON string's
 * literal backslash before `u0000` as `\\u0000`; neither is refused.
 */
export function carriesNul(body: Uint8Array, contentType: string): boolean {
  if (body.includes(0)) return true;
  const text = Buffer.from(body).toString('latin1');
  if (/\bx-www-form-urlencoded\b/i.test(contentType)) return /%00/.test(text);
  // an escape is `\u0000` after an even number (zero included) of other backslashes
  if (/\bjson\b/i.test(contentType)) return /(?<!\\)(?:\\\\)*\\u0000/i.test(text);
  return false;
}
