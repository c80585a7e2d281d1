/** The NUL refusal (src/core/http/nul.ts): every encoding of a NUL in a field, and nothing that only looks like one. */
import { describe, expect, it } from 'vitest';
import { carriesNul } from '../../src/core/http/nul.ts';

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json; charset=utf-8';
const bytes = (text: string) => new TextEncoder().encode(text);

describe('a NUL in a request body', () => {
  it('is found raw in any body, encoded in a form, escaped in JSON', () => {
    expect(carriesNul(bytes('title=a\u0000b'), FORM)).toBe(true);
    expect(carriesNul(bytes('--x\r\nContent-Disposition: form-data; name="t"\r\n\r\na\u0000b'), 'multipart/form-data; boundary=x')).toBe(
      true,
    );
    expect(carriesNul(bytes(new URLSearchParams({ title: 'nul\u0000byte' }).toString()), FORM)).toBe(true);
    expect(carriesNul(bytes(JSON.stringify({ title: 'nul\u0000byte' })), JSON_TYPE)).toBe(true);
    expect(carriesNul(bytes('{"t":"\\U0000"}'), JSON_TYPE)).toBe(true);
    // an escaped backslash, then the escape of a NUL
    expect(carriesNul(bytes(JSON.stringify({ title: '\\\u0000' })), JSON_TYPE)).toBe(true);
  });

  it('is not found in text that only spells one: a literal "%00" in a form, a literal "\\u0000" or "%00" in JSON', () => {
    expect(carriesNul(bytes(new URLSearchParams({ title: '100%00 sure' }).toString()), FORM)).toBe(false);
    expect(carriesNul(bytes(JSON.stringify({ title: 'write \\u0000 for NUL' })), JSON_TYPE)).toBe(false);
    expect(carriesNul(bytes(JSON.stringify({ url: 'https://x.example/a%00b' })), JSON_TYPE)).toBe(false);
    expect(carriesNul(bytes('title=plain'), FORM)).toBe(false);
    expect(carriesNul(new Uint8Array(0), JSON_TYPE)).toBe(false);
  });
});
