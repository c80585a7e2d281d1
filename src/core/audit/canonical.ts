/**
 * The audit log's canonical JSON (object keys sorted at every depth, so the
 * same content always hashes the same) and the fingerprint that makes two
 * refusals "the same" for the repeat windows (repeats.ts), which the
 * verifier (log.ts) recomputes: one definition for both.
 */
import { createHash } from 'node:crypto';
import { sourceOf } from '../auth/lockouts.ts';

/** JSON with object keys sorted at every depth, so the same content always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries: [string, unknown][] = Object.entries(value);
    const fields = entries
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What makes two refusals one window: everything but the user agent, the address as its source (an IPv6 network). */
export function refusalFingerprint(entry: {
  action: string;
  actorType: string;
  actorId: number | null;
  ip: string | null;
  target: string | null;
  summary: unknown;
}): string {
  const { action, actorType, actorId, target, summary } = entry;
  const source = entry.ip === null ? null : sourceOf(entry.ip);
  return createHash('sha256').update(canonicalJson({ action, actorType, actorId, source, target, summary })).digest('hex');
}
