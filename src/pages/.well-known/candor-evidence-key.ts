import type { APIRoute } from 'astro';
import { deriveEvidenceKey, publishedKeyText } from '../../core/evidence/key.ts';

// Per request: the key is derived from this installation's secret, which a build does not have.
export const prerender = false;

/** The public key that verifies this installation's evidence documents (PEM, with its key id). */
export const GET: APIRoute = ({ locals }) => {
  const key = deriveEvidenceKey(locals.candor.keys.secret);
  return new Response(publishedKeyText(key), {
    headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'public, max-age=3600', 'X-Candor-Key-Id': key.keyId },
  });
};
