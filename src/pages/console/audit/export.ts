import type { APIRoute } from 'astro';
import { parseAuditFilter } from '../../../core/audit/filter.ts';
import { exportAuditChunks, recordAudit } from '../../../core/audit/log.ts';
import { staffLabel } from '../../../core/auth/staff.ts';

export const prerender = false;

/** Streams the filtered log as CSV or JSON; the export itself is audited first. */
export const GET: APIRoute = ({ locals, url, clientAddress, request }) => {
  const auth = locals.auth;
  if (!auth) return new Response('Sign in first.', { status: 401 });
  const format = url.searchParams.get('format');
  if (format !== 'csv' && format !== 'json') return new Response('format must be csv or json', { status: 400 });
  const { filter, problems } = parseAuditFilter(url.searchParams);
  if (problems.length) return new Response(problems.join('\n'), { status: 400, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  const { db, now } = locals.candor;
  const at = now();
  recordAudit(
    db,
    {
      actor: { type: 'staff', id: auth.staff.id, label: staffLabel(auth.staff) },
      ip: clientAddress,
      userAgent: request.headers.get('user-agent'),
      action: 'audit.exported',
      target: 'audit_log',
      summary: { format, filter: Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])) },
    },
    at,
  );
  const chunks = exportAuditChunks(db, filter, format);
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
  });
  const stamp = at.toISOString().slice(0, 19).replaceAll(':', '-');
  return new Response(body, {
    headers: {
      'Content-Type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
      'Content-Disposition': `attachment; filename="candor-audit-${stamp}.${format}"`,
    },
  });
};
