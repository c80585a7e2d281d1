/**
 * Request glue for the token-authenticated endpoints (the staff API under /api/v1/ and the alert
 * receivers): errors as RFC 9457 problem details, and the token check (src/core/api/tokens.ts) with
 * its rate-limit headers. No cookie is ever read here: a browser's session grants nothing on these
 * routes, so they need no CSRF defence, and no CORS header is sent (closed by default).
 */
import type { APIContext } from 'astro';
import { type ApiPrincipal, apiTokenLimit, authenticateApiToken } from '../core/api/tokens.ts';
import type { Permission } from '../core/auth/permissions.ts';
import { clientIp } from './client-ip.ts';

/** Where a problem type is explained: the API reference page, one anchor per type. */
export const PROBLEM_BASE = '/api/reference#problem-';

export interface Problem {
  status: number;
  /** a short slug: the type is `<public url>/api/reference#problem-<type>` */
  type: string;
  title: string;
  detail?: string;
  /** extension members (RFC 9457 §3.2), e.g. `errors` naming each bad field */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An RFC 9457 problem details response (`application/problem+json`). */
export function problem(publicUrl: URL, p: Problem): Response {
  const body = {
    type: new URL(`${PROBLEM_BASE}${p.type}`, publicUrl).href,
    title: p.title,
    status: p.status,
    ...(p.detail === undefined ? {} : { detail: p.detail }),
    ...p.extra,
  };
  return new Response(`${JSON.stringify(body, null, 2)}\n`, {
    status: p.status,
    headers: { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store', ...p.headers },
  });
}

/** A JSON answer of the staff API. */
export function apiJson(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(`${JSON.stringify(body, null, 2)}\n`, {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers },
  });
}

type Ctx = Pick<APIContext, 'request' | 'locals' | 'url' | 'clientAddress'>;

export type Caller = { ok: true; principal: ApiPrincipal; headers: Record<string, string> } | { ok: false; response: Response };

/**
 * The token's principal when it holds `permission`, else the problem to answer (401 with
 * `WWW-Authenticate`, 403, or 429 with `Retry-After`). Successful calls carry RateLimit headers
 * (draft-ietf-httpapi-ratelimit-headers) for the caller to pace itself.
 */
export async function apiCaller(ctx: Ctx, permission: Permission): Promise<Caller> {
  const { candor } = ctx.locals;
  const result = await authenticateApiToken(
    candor.database,
    ctx.request.headers.get('authorization'),
    permission,
    { method: ctx.request.method, path: ctx.url.pathname, client: { ip: clientIp(ctx), userAgent: ctx.request.headers.get('user-agent') } },
    candor.now(),
  );
  const publicUrl = candor.config.publicUrl;
  if (result.ok) {
    return {
      ok: true,
      principal: result.principal,
      headers: {
        'RateLimit-Limit': String(apiTokenLimit.max),
        'RateLimit-Remaining': String(result.remaining),
        'RateLimit-Reset': String(result.resetSeconds),
      },
    };
  }
  if (result.status === 401) {
    return {
      ok: false,
      response: problem(publicUrl, {
        status: 401,
        type: 'unauthorized',
        title: 'A valid API token is required.',
        detail: result.message,
        headers: { 'WWW-Authenticate': `Bearer realm="candor", error="invalid_token"` },
      }),
    };
  }
  if (result.status === 403) {
    return {
      ok: false,
      response: problem(publicUrl, { status: 403, type: 'forbidden', title: 'The token lacks a permission.', detail: result.message }),
    };
  }
  return {
    ok: false,
    response: problem(publicUrl, {
      status: 429,
      type: 'rate-limited',
      title: 'Too many requests.',
      detail: `${result.message} Try again in ${result.retryAfterSeconds} s.`,
      headers: { 'Retry-After': String(result.retryAfterSeconds) },
    }),
  };
}
