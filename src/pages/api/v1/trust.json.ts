import type { APIRoute } from 'astro';
import { changesVersion, subprocessorList } from '../../../core/changes/public.ts';
import { buildTrustDocument } from '../../../core/trust/trust-document.ts';
import { getDocs, getSite } from '../../../lib/trust-content.ts';

export const prerender = false;

let cached: { key: string; body: string } | undefined;

export const GET: APIRoute = async ({ locals }) => {
  const { publicUrl } = locals.candor.config;
  const { db, now } = locals.candor;
  // the subprocessors are the published list in effect today: rebuilt when a notice is published or takes effect
  const key = `${publicUrl.href}|${changesVersion(db, now())}`;
  if (cached?.key !== key) {
    const document = buildTrustDocument({
      site: await getSite(),
      docs: await getDocs(),
      subprocessors: subprocessorList(db, null, now()).items,
      publicUrl,
    });
    cached = { key, body: `${JSON.stringify(document, null, 2)}\n` };
  }
  return new Response(cached.body, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'public, max-age=300',
      'Access-Control-Allow-Origin': '*',
    },
  });
};
