import type { APIRoute } from 'astro';
import { buildSecurityTxt } from '../../core/trust/security-txt.ts';
import { getSite } from '../../lib/trust-content.ts';

// Per request: Canonical and Policy name the public URL the server runs under.
export const prerender = false;

export const GET: APIRoute = async ({ locals }) => {
  const body = buildSecurityTxt(await getSite(), locals.candor.config.publicUrl);
  return new Response(body, {
    headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'public, max-age=3600' },
  });
};
