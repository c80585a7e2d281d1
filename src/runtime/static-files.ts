/**
 * Serves the build's prerendered pages and assets from memory, with
 * precomputed gzip and brotli bodies and strong ETags. Pages a trust center
 * serves during an incident surge must not touch the disk per request.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, extname, join, relative, sep } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

interface StaticFile {
  body: Buffer;
  gzip: Buffer | undefined;
  brotli: Buffer | undefined;
  etag: string;
  type: string;
  cacheControl: string;
  /** PDFs (public documents) download under their own name rather than open in place of the page */
  disposition: string | undefined;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.pdf': 'application/pdf',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.pf_meta': 'application/octet-stream',
  '.pf_index': 'application/octet-stream',
  '.pf_fragment': 'application/octet-stream',
  '.pagefind': 'application/octet-stream',
};
const ERROR_PAGES = new Set(['/404.html', '/500.html', '/404/index.html', '/500/index.html']);
const COMPRESSIBLE = new Set(['.html', '.css', '.js', '.mjs', '.json', '.txt', '.xml', '.svg']);

export class StaticFiles {
  private readonly files = new Map<string, StaticFile>();

  constructor(clientDir: string) {
    for (const path of walk(clientDir)) {
      const urlPath = `/${relative(clientDir, path).split(sep).join('/')}`;
      // Error pages are rendered by the app with their own status, never served as 200.
      if (ERROR_PAGES.has(urlPath)) continue;
      const ext = extname(path);
      const body = readFileSync(path);
      const compress = COMPRESSIBLE.has(ext) && body.length > 512;
      this.files.set(urlPath, {
        body,
        gzip: compress ? gzipSync(body, { level: 9 }) : undefined,
        brotli: compress ? brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }) : undefined,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        type: TYPES[ext] ?? 'application/octet-stream',
        cacheControl: urlPath.startsWith('/_astro/')
          ? 'public, max-age=31536000, immutable'
          : ext === '.html'
            ? 'public, max-age=60, must-revalidate'
            : 'public, max-age=300',
        disposition: ext === '.pdf' ? `attachment; filename="${basename(path)}"` : undefined,
      });
    }
  }

  get size(): number {
    return this.files.size;
  }

  /** The file for a request path, trying the directory's index.html as Astro writes pages. */
  lookup(pathname: string): StaticFile | undefined {
    let path: string;
    try {
      path = decodeURIComponent(pathname);
    } catch {
      return undefined;
    }
    if (path.includes('\0') || path.split('/').includes('..')) return undefined;
    const exact = this.files.get(path);
    if (exact) return exact;
    const dir = path.endsWith('/') ? path : `${path}/`;
    return this.files.get(`${dir}index.html`);
  }

  /** Answers the request when it names a file; returns false to let the app handle it. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    const file = this.lookup(pathname);
    if (!file) return false;
    res.setHeader('Content-Type', file.type);
    res.setHeader('ETag', file.etag);
    res.setHeader('Cache-Control', file.cacheControl);
    res.setHeader('Vary', 'Accept-Encoding');
    if (file.disposition) res.setHeader('Content-Disposition', file.disposition);
    if (req.headers['if-none-match'] === file.etag) {
      res.statusCode = 304;
      res.end();
      return true;
    }
    const accept = String(req.headers['accept-encoding'] ?? '');
    let body = file.body;
    if (file.brotli && /\bbr\b/.test(accept)) {
      body = file.brotli;
      res.setHeader('Content-Encoding', 'br');
    } else if (file.gzip && /\bgzip\b/.test(accept)) {
      body = file.gzip;
      res.setHeader('Content-Encoding', 'gzip');
    }
    res.setHeader('Content-Length', body.length);
    res.statusCode = 200;
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}
