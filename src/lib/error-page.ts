/**
 * The site's own page for a refusal a person's browser will show (src/pages/error.astro, rendered per
 * request with the status and words given here): an empty body or a line of plain text would be
 * dressed by the browser as its own error. Machines asking the same routes (calendar apps, feed
 * readers, one-click unsubscribes, scripts) keep their plain answers: `wantsHtml` tells them apart.
 */
import type { RewritePayload } from 'astro';

export interface ErrorPage {
  status: 400 | 403 | 404 | 410 | 429 | 503;
  /** the heading, e.g. "Page not found" */
  title: string;
  /** one or two sentences: what is wrong and what to do */
  message: string;
  /** inside the console's layout (its navigation for the signed-in person) instead of the public site's */
  console?: boolean;
}

interface RequestLike {
  locals: App.Locals;
  url: URL;
  request: Request;
  rewrite: (payload: RewritePayload) => Promise<Response>;
}

/** A browser following a link or posting a form says it takes HTML; calendar apps, feed readers and scripts do not. */
export function wantsHtml(request: Request): boolean {
  return /\btext\/html\b/i.test(request.headers.get('accept') ?? '');
}

/** Renders the error page with `page`'s status; `headers` are added (no-store and a Referrer-Policy for pages with a token). */
export async function errorPage(ctx: RequestLike, page: ErrorPage, headers: Record<string, string> = {}): Promise<Response> {
  ctx.locals.errorPage = page;
  // A GET of its own: the request may be a form POST whose body was read already.
  const rendered = await ctx.rewrite(new Request(new URL('/error', ctx.url), { headers: ctx.request.headers }));
  const merged = new Headers(rendered.headers);
  for (const [name, value] of Object.entries({ ...(page.console ? { 'Cache-Control': 'no-store' } : {}), ...headers }))
    merged.set(name, value);
  return new Response(rendered.body, { status: page.status, headers: merged });
}

export const notFound = (message: string): ErrorPage => ({ status: 404, title: 'Page not found', message });
export const tooMany = (message: string): ErrorPage => ({ status: 429, title: 'Too many attempts', message });

/** Pages and answers reached with a token in the URL: never cached, never sent on in a Referer. */
export const PERSONAL = { 'Cache-Control': 'no-store', 'Referrer-Policy': 'same-origin' } as const;

/** A console page for a record that does not exist (an id typed or out of date). */
export const consoleNotFound = (what: string, id: number): ErrorPage => ({
  status: 404,
  title: 'Not found',
  message: Number.isInteger(id) && id > 0 ? `There is no ${what} ${id}.` : `There is no such ${what}.`,
  console: true,
});
