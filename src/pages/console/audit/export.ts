import type { APIRoute } from 'astro';
import { parseAuditFilter } from '../../../core/audit/filter.ts';
import { exportAuditChunks } from '../../../core/audit/log.ts';
import { errorPage, wantsHtml } from '../../../lib/error-page.ts';
import { auditStaffAction } from '../../../lib/staff-audit.ts';
import { textStream } from '../../../lib/stream.ts';

export const prerender = false;

/** Streams the filtered log as CSV or JSON; the export itself is audited first. */
export const GET: APIRoute = async (ctx) => {
  const { url } = ctx;
  const auth = ctx.locals.auth;
  if (!auth) return new Response('Sign in first.', { status: 401 });
  const format = url.searchParams.get('format');
  const { filter, problems } = parseAuditFilter(url.searchParams);
  if (format !== 'csv' && format !== 'json') problems.unshift('format must be csv or json.');
  if (problems.length > 0 || (format !== 'csv' && format !== 'json')) {
    // a link followed in a browser gets the console's page; a script the lines of text
    if (wantsHtml(ctx.request))
      return errorPage(ctx, { status: 400, title: 'This export cannot be made', message: problems.join(' '), console: true });
    return new Response(problems.join('\n'), { status: 400, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }
  const { database, now } = ctx.locals.candor;
  const at = now();
  await auditStaffAction(ctx, 'audit.exported', 'audit_log', {
    format,
    filter: Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])),
  });
  const chunks = exportAuditChunks(database, filter, format);
  const body = textStream(chunks);
  const stamp = at.toISOString().slice(0, 19).replaceAll(':', '-');
  return new Response(body, {
    headers: {
      'Content-Type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
      'Content-Disposition': `attachment; filename="candor-audit-${stamp}.${format}"`,
    },
  });
};
