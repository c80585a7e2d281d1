/** The answer of an /api/v2 endpoint: one Statuspage-shaped document, public and read-only, cacheable like /api/v1/status.json. */
import type { APIContext } from 'astro';
import { type StatuspageDocumentName, statuspageDocuments, statuspageFacts } from '../core/incidents/statuspage.ts';

export async function statuspageResponse({ locals }: Pick<APIContext, 'locals'>, name: StatuspageDocumentName): Promise<Response> {
  const { candor } = locals;
  const publicUrl = candor.config.publicUrl;
  const facts = await statuspageFacts(
    candor.database,
    { organisation: candor.content.site.organisation.name, components: candor.content.components },
    publicUrl,
    candor.now(),
  );
  const body = statuspageDocuments[name](facts, publicUrl);
  return new Response(`${JSON.stringify(body, null, 2)}\n`, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'public, max-age=15',
      // public, read-only data; Statuspage answers the same
      'Access-Control-Allow-Origin': '*',
    },
  });
}
