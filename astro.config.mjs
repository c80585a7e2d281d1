// @ts-check
import node from '@astrojs/node';
import { defineConfig } from 'astro/config';

export default defineConfig({
  output: 'server',
  // Middleware mode: src/server.ts owns the HTTP server, serves prerendered files
  // from memory and hands Astro each request with its locals (db, config).
  // The adapter's limit is the subscriber import's upload (src/middleware.ts MAX_UPLOAD_BYTES); every other
  // request body is refused above 64 KiB by its declared length before it is read (src/middleware.ts).
  adapter: node({ mode: 'middleware', bodySizeLimit: 256 * 1024 * 1024 }),
  // Our own server (src/server.ts) wraps Astro's handler; this is only the dev default.
  server: { host: '127.0.0.1', port: 4321 },
  trailingSlash: 'ignore',
  // Compression drops the spaces between text and inline elements written on separate lines.
  compressHTML: false,
  build: { inlineStylesheets: 'never' },
  devToolbar: { enabled: false },
  // Shiki colours code with inline styles, which the CSP forbids.
  markdown: { syntaxHighlight: 'prism' },
  vite: { build: { sourcemap: false } },
  security: {
    // Cross-site refusal is done in src/middleware.ts instead, which can let provider callbacks
    // (/webhooks/*) and RFC 8058 one-click unsubscribes through; Astro's check cannot exempt a route.
    checkOrigin: false,
    csp: {
      directives: [
        "default-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
      ],
      // Pagefind's search index is WebAssembly.
      scriptDirective: { resources: ["'self'", "'wasm-unsafe-eval'"] },
      styleDirective: { resources: ["'self'"] },
    },
  },
});
