/**
 * The audit log filter as a reader types it in the console's query string.
 * Bad values are reported, never thrown.
 */

import { rowId } from '../http/row-id.ts';
import { type AuditAction, isAuditAction } from './actions.ts';
import type { AuditExportFilter } from './log.ts';

export interface ParsedAuditFilter {
  filter: AuditExportFilter;
  problems: string[];
  /** the values to show back in the form */
  form: { actor: string; action: string; from: string; to: string };
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export function parseAuditFilter(params: URLSearchParams): ParsedAuditFilter {
  const problems: string[] = [];
  const form = {
    actor: params.get('actor')?.trim().slice(0, 20) ?? '',
    action: params.get('action')?.trim().slice(0, 100) ?? '',
    from: params.get('from')?.trim().slice(0, 10) ?? '',
    to: params.get('to')?.trim().slice(0, 10) ?? '',
  };
  const filter: AuditExportFilter = {};
  if (form.actor) {
    const actorId = /^\d+$/.test(form.actor) ? rowId(form.actor) : null;
    if (actorId !== null) filter.actorId = actorId;
    else problems.push('Actor must be a staff member from the list.');
  }
  if (form.action) {
    if (isAuditAction(form.action)) filter.action = form.action as AuditAction;
    else problems.push(`There is no action called "${form.action}".`);
  }
  const day = (value: string, label: string): Date | undefined => {
    if (!value) return undefined;
    const date = new Date(`${value}T00:00:00Z`);
    if (!DAY.test(value) || Number.isNaN(date.getTime())) {
      problems.push(`${label} must be a date (YYYY-MM-DD).`);
      return undefined;
    }
    return date;
  };
  const from = day(form.from, 'From');
  const to = day(form.to, 'To');
  if (from) filter.from = from;
  // "to" is the whole day the reader picked
  if (to) filter.to = new Date(to.getTime() + 86_400_000);
  if (from && to && from > to) problems.push('From must not be after To.');
  return { filter, problems, form };
}
