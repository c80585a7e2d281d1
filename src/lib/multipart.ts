/**
 * A multipart/form-data upload (RFC 7578) read as it arrives: its small fields into memory (capped),
 * its one file part written to a temporary file as the bytes come, with back-pressure, so a large
 * upload never sits whole in memory. The file is spooled rather than parsed off the socket because
 * the server's request timeout (src/server.ts, 30 s for receiving the whole request) would cut a long
 * import short while the client still sends; the import then streams it from disk. The file goes into a
 * `.candor-upload-XXXXXX` folder of the data dir, removed when the request is done; one a crash left
 * behind is swept at the next start (src/core/backup/leftovers.ts), as the backups' copies are.
 */
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';

export interface SpooledUpload {
  fields: Map<string, string>;
  file: { field: string; name: string; path: string; bytes: number } | null;
  /** removes the temporary file and its folder */
  dispose: () => void;
}

export type SpoolResult = ({ ok: true } & SpooledUpload) | { ok: false; message: string };

export interface SpoolLimits {
  fileBytes: number;
  fieldBytes: number;
  fields: number;
}

const DEFAULT_LIMITS: SpoolLimits = { fileBytes: 256 * 1024 * 1024, fieldBytes: 1024, fields: 20 };

function boundaryOf(contentType: string): string | null {
  if (!/^multipart\/form-data\s*;/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

function dispositionOf(headerBlock: string): { name: string; filename: string | null } | null {
  const line = headerBlock.split('\r\n').find((l) => /^content-disposition\s*:/i.test(l));
  if (!line) return null;
  const name = /;\s*name="([^"]*)"/i.exec(line)?.[1];
  if (name === undefined) return null;
  const filename = /;\s*filename="([^"]*)"/i.exec(line)?.[1] ?? null;
  return { name, filename };
}

/** Reads the upload: the fields, and the file part (the first one with a filename) spooled to disk in `dataDir`. */
export async function spoolMultipart(
  body: AsyncIterable<Uint8Array> | null,
  contentType: string,
  dataDir: string,
  limits: SpoolLimits = DEFAULT_LIMITS,
): Promise<SpoolResult> {
  const boundary = boundaryOf(contentType);
  if (!boundary || !body) return { ok: false, message: 'Send the file with the form (multipart/form-data).' };
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const dir = mkdtempSync(join(dataDir, '.candor-upload-'));
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  const fields = new Map<string, string>();
  let file: SpooledUpload['file'] = null;
  let out: WriteStream | null = null;
  let field: { name: string; chunks: Buffer[]; bytes: number } | null = null;
  type State = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'done';
  let state = 'preamble' as State;
  // The first boundary has no CRLF before it: one is supplied so every boundary reads alike.
  let buffer: Buffer = Buffer.from('\r\n');
  const fail = (message: string): SpoolResult => {
    out?.destroy();
    dispose();
    return { ok: false, message };
  };

  const emit = async (bytes: Buffer): Promise<string | null> => {
    if (bytes.length === 0) return null;
    if (field) {
      field.bytes += bytes.length;
      if (field.bytes > limits.fieldBytes) return `The form field "${field.name.slice(0, 40)}" is too long.`;
      field.chunks.push(bytes);
      return null;
    }
    if (out && file) {
      file.bytes += bytes.length;
      if (file.bytes > limits.fileBytes) return `The file is too large (at most ${Math.round(limits.fileBytes / 2 ** 20)} MiB).`;
      if (!out.write(bytes)) await once(out, 'drain');
    }
    return null;
  };
  const endPart = async () => {
    if (field) {
      if (fields.size >= limits.fields) return 'The form has too many fields.';
      fields.set(field.name, Buffer.concat(field.chunks).toString('utf8'));
      field = null;
    }
    if (out) {
      const closing = out;
      out = null;
      closing.end();
      await once(closing, 'close');
    }
    return null;
  };

  try {
    for await (const chunk of body) {
      buffer = buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([buffer, chunk]);
      for (;;) {
        if (state === 'done') break;
        if (state === 'preamble') {
          const at = buffer.indexOf(delimiter);
          if (at < 0) {
            buffer = buffer.subarray(Math.max(0, buffer.length - delimiter.length + 1));
            break;
          }
          buffer = buffer.subarray(at + delimiter.length);
          state = 'after-boundary';
        }
        if (state === 'after-boundary') {
          if (buffer.length < 2) break;
          if (buffer[0] === 0x2d && buffer[1] === 0x2d) {
            state = 'done';
            break;
          }
          const lineEnd = buffer.indexOf('\r\n');
          if (lineEnd < 0) break;
          buffer = buffer.subarray(lineEnd + 2);
          state = 'headers';
        }
        if (state === 'headers') {
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buffer.length > 8 * 1024) return fail('A part of the form has headers that are too long.');
            break;
          }
          const disposition = dispositionOf(buffer.subarray(0, end).toString('utf8'));
          buffer = buffer.subarray(end + 4);
          if (!disposition) return fail('A part of the form has no name.');
          if (disposition.filename !== null && !file) {
            const path = join(dir, 'upload');
            file = { field: disposition.name, name: disposition.filename, path, bytes: 0 };
            out = createWriteStream(path, { mode: 0o600 });
          } else if (disposition.filename === null) {
            field = { name: disposition.name, chunks: [], bytes: 0 };
          }
          // a second file part is read past and dropped (neither field nor out is set)
          state = 'body';
        }
        if (state === 'body') {
          const at = buffer.indexOf(delimiter);
          if (at < 0) {
            const keep = delimiter.length - 1;
            const problem = await emit(buffer.subarray(0, Math.max(0, buffer.length - keep)));
            if (problem) return fail(problem);
            buffer = Buffer.from(buffer.subarray(Math.max(0, buffer.length - keep)));
            break;
          }
          const problem = (await emit(buffer.subarray(0, at))) ?? (await endPart());
          if (problem) return fail(problem);
          buffer = buffer.subarray(at + delimiter.length);
          state = 'after-boundary';
        }
      }
      if (state === 'done') break;
    }
  } catch (err) {
    return fail(`The upload did not arrive whole (${err instanceof Error ? err.message.slice(0, 100) : 'connection closed'}).`);
  }
  if (state !== 'done') return fail('The upload ended before the form did: send it again.');
  return { ok: true, fields, file, dispose };
}
