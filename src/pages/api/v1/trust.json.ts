import type { APIRoute } from 'astro';
import { currentSubprocessors } from '../../../core/changes/public.ts';
import { buildTrustDocument } from '../../../core/trust/trust-document.ts';
import { getDocs, getSite } from '../../../lib/trust-content.ts';

export const prerender = false;

// Rendered once per changes version and then served from memory (src/runtime/status-snapshots.ts).
export const GET: APIRoute = async ({ locals }) => {
  const { database, now, config } = locals.candor;
  const document = buildTrustDocument({
    site: await getSite(),
    docs: await getDocs(),
    // the published list in effect today, not content/: a subprocessor is public once its notice is
    subprocessors: (await currentSubprocessors(database, now())).items,
    publicUrl: config.publicUrl,
  });
  return new Response(`${JSON.stringify(document, null, 2)}\n`, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'public, max-age=300',
      'Access-Control-Allow-Origin': '*',
    },
  });
};
