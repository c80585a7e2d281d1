import type { APIRoute } from 'astro';
import { buildTrustDocument } from '../../../core/trust/trust-document.ts';
import { getDocs, getSite, getSubprocessors } from '../../../lib/trust-content.ts';

export const prerender = false;

let cached: { publicUrl: string; body: string } | undefined;

export const GET: APIRoute = async ({ locals }) => {
  const { publicUrl } = locals.candor.config;
  if (cached?.publicUrl !== publicUrl.href) {
    const document = buildTrustDocument({
      site: await getSite(),
      docs: await getDocs(),
      subprocessors: await getSubprocessors(),
      publicUrl,
    });
    cached = { publicUrl: publicUrl.href, body: `${JSON.stringify(document, null, 2)}\n` };
  }
  return new Response(cached.body, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'public, max-age=300',
      'Access-Control-Allow-Origin': '*',
    },
  });
};
