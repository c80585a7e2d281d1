/**
 * What the console's "Who was told, and when?" page and its downloads ask for, read from the query
 * string: one scope (`organisation`, `subscriber` or `incident`, each an id) and an optional period
 * (`from`, `to`: UTC days, YYYY-MM-DD; `to` is the last day included). Bad input is a message for the
 * page, never an exception.
 */
import type { EvidencePeriod } from '../../stores/evidence.ts';
import type { EvidenceScope } from './collect.ts';

export type EvidenceRequest =
  | { ok: true; scope: EvidenceScope; period: EvidencePeriod; from: string; to: string; query: string }
  | { ok: false; message: string };

const ID = /^\d{1,15}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

function day(raw: string, what: string): { ok: true; value: Date | null } | { ok: false; message: string } {
  if (raw === '') return { ok: true, value: null };
  const value = new Date(`${raw}T00:00:00Z`);
  if (!DAY.test(raw) || Number.isNaN(value.getTime()) || value.toISOString().slice(0, 10) !== raw)
    return { ok: false, message: `The ${what} date must be a day (YYYY-MM-DD), got “${raw.slice(0, 40)}”.` };
  return { ok: true, value };
}

export function readEvidenceRequest(params: URLSearchParams): EvidenceRequest {
  const given = (['organisation', 'subscriber', 'incident'] as const).filter((k) => params.get(k));
  if (given.length !== 1) return { ok: false, message: 'Choose one organisation, subscriber or incident (from its page).' };
  const kind = given[0] as 'organisation' | 'subscriber' | 'incident';
  const id = (params.get(kind) ?? '').trim();
  if (!ID.test(id)) return { ok: false, message: `The ${kind} must be given by its number.` };
  const from = (params.get('from') ?? '').trim();
  const to = (params.get('to') ?? '').trim();
  const start = day(from, 'first');
  if (!start.ok) return start;
  const end = day(to, 'last');
  if (!end.ok) return end;
  // the last day is included: the period ends at the next midnight
  const until = end.value ? new Date(end.value.getTime() + 86_400_000) : null;
  if (start.value && until && start.value >= until) return { ok: false, message: 'The first day must not be after the last.' };
  const scope: EvidenceScope =
    kind === 'organisation'
      ? { type: 'organisation', organisation: id }
      : kind === 'subscriber'
        ? { type: 'subscriber', subscriberId: Number(id) }
        : { type: 'incident', incidentId: Number(id) };
  const query = new URLSearchParams({ [kind]: id, ...(from ? { from } : {}), ...(to ? { to } : {}) }).toString();
  return { ok: true, scope, period: { from: start.value, to: until }, from, to, query };
}
