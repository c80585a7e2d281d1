/**
 * The PDF of each public document, written into the build (dist/client/documents/<slug>.pdf) and
 * served from memory like every other static file (src/runtime/static-files.ts: Content-Type,
 * Content-Disposition, ETag, caching). Only `access: public` documents get a path here: a gated
 * (`nda`) document's PDF stays in content/ and no URL reaches it (tests/integration/documents.test.ts).
 */

import { getCollection } from 'astro:content';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { APIRoute, GetStaticPaths } from 'astro';

export const prerender = true;

export const getStaticPaths = (async () => {
  const documents = await getCollection('documents', (d) => d.data.access === 'public');
  return documents.map((d) => ({ params: { slug: d.id }, props: { pdf: d.data.pdf } }));
}) satisfies GetStaticPaths;

// The build runs at the project root (npm run build), which the collection's paths are relative to.
export const GET: APIRoute = ({ params, props }) =>
  new Response(readFileSync(resolve(String(props.pdf))), {
    headers: {
      'Content-Type': 'application/pdf',
      'Content-Disposition': `attachment; filename="${String(params.slug)}.pdf"`,
    },
  });
