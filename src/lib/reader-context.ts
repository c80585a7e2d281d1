/**
 * Glue between a request under /documents and customers' reading (src/core/access): the reader cookie
 * (never the staff session's) and the context the flows take.
 */
import type { AstroCookies } from 'astro';
import { type ReaderContext, type ReaderSession, readerCookie, validateReaderSession } from '../core/access/reader-sessions.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  cookies: AstroCookies;
  clientAddress: string;
  request: Request;
}

const https = (locals: App.Locals) => locals.candor.config.publicUrl.protocol === 'https:';

export function readerContext(ctx: RequestLike): ReaderContext {
  const { candor } = ctx.locals;
  return {
    database: candor.database,
    keys: candor.keys,
    now: candor.now(),
    client: { ip: clientIp(ctx), userAgent: ctx.request.headers.get('user-agent') },
    publicUrl: candor.config.publicUrl,
    organisation: candor.content.site.organisation.name,
  };
}

/** The reader's session from the reader cookie, or null (and the cookie cleared when it names no live session). */
export async function readerSession(ctx: RequestLike): Promise<ReaderSession | null> {
  const { name } = readerCookie(https(ctx.locals));
  const token = ctx.cookies.get(name)?.value;
  if (!token) return null;
  const { candor } = ctx.locals;
  const session = await validateReaderSession(candor.database, token, candor.now());
  if (!session) clearReaderCookie(ctx);
  return session;
}

export function setReaderCookie(ctx: RequestLike, token: string, expiresAt: Date): void {
  const { name, secure, path } = readerCookie(https(ctx.locals));
  ctx.cookies.set(name, token, { httpOnly: true, secure, sameSite: 'lax', path, expires: expiresAt });
}

export function clearReaderCookie(ctx: RequestLike): void {
  const { name, secure, path } = readerCookie(https(ctx.locals));
  ctx.cookies.delete(name, { httpOnly: true, secure, sameSite: 'lax', path });
}

/** A redirect of a reader's page (to sign in, to the NDA, to the library): never cached, like the pages themselves. */
export function readerRedirect(to: string): Response {
  return new Response(null, { status: 303, headers: { Location: to, 'Cache-Control': 'no-store' } });
}
