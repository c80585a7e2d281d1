/**
 * The console's evidence downloads (JSON and PDF): the query read (src/core/evidence/request.ts), the
 * document built, signed and audited as the signed-in staff member (src/core/evidence/collect.ts).
 */
import type { APIContext } from 'astro';
import { exportEvidence } from '../core/evidence/collect.ts';
import type { EvidenceDocument } from '../core/evidence/document.ts';
import { readEvidenceRequest } from '../core/evidence/request.ts';
import { staffAudit } from './subscription-context.ts';

export async function evidenceDownload(
  ctx: APIContext,
  format: 'json' | 'pdf',
): Promise<{ ok: true; document: EvidenceDocument; json: string; filename: string } | { ok: false; response: Response }> {
  const { candor } = ctx.locals;
  const request = readEvidenceRequest(ctx.url.searchParams);
  const refuse = (status: number, message: string) => ({
    ok: false as const,
    response: new Response(`${message}\n`, {
      status,
      headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' },
    }),
  });
  if (!request.ok) return refuse(400, request.message);
  const now = candor.now();
  const result = await exportEvidence(
    {
      database: candor.database,
      keys: candor.keys,
      now,
      organisation: candor.content.site.organisation.name,
      publicUrl: candor.config.publicUrl,
      ...staffAudit(ctx),
    },
    request.scope,
    request.period,
    format,
  );
  if (!result.ok) return refuse(404, result.message);
  const { scope } = result.document.header;
  const filename = `candor-evidence-${scope.type}-${scope.id.replace(/[^0-9A-Za-z-]/g, '-')}-${now.toISOString().slice(0, 10)}.${format}`;
  return { ok: true, document: result.document, json: `${JSON.stringify(result.document, null, 2)}\n`, filename };
}
