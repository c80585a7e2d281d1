/**
 * One staff API operation as an Astro endpoint: the token (apiCaller), then the path, query and body
 * checked with the operation's zod schemas (src/lib/api/operations.ts), `Idempotency-Key` on a POST
 * (src/core/api/idempotency.ts), then the endpoint's handler, which makes one core call. Every refusal
 * is an RFC 9457 problem; nothing the client sends can cause a 500 or show a stack trace. No CORS
 * header is ever sent, and no cookie is read.
 */
import type { APIContext, APIRoute } from 'astro';
import type { z } from 'zod';
import {
  claimIdempotency,
  completeIdempotency,
  IDEMPOTENCY_HEADER,
  idempotencyKeyProblem,
  REPLAYED_HEADER,
  releaseIdempotency,
  requestFingerprint,
} from '../../core/api/idempotency.ts';
import type { ApiPrincipal } from '../../core/api/tokens.ts';
import { apiCaller, apiJson, type Problem, problem } from '../api-request.ts';
import { clientIp } from '../client-ip.ts';
import { type ApiOperation, type HttpMethod, takesIdempotencyKey } from './operations.ts';

/** What a handler answers: the success body (sent with the operation's success status), or a problem. */
export type Answer<R> = { ok: true; body: R } | { ok: false; problem: Problem };

export interface ApiCall {
  principal: ApiPrincipal;
  candor: App.Locals['candor'];
  ip: string | null;
  userAgent: string | null;
}

type Input<O extends ApiOperation> = {
  params: z.output<O['params']>;
  query: z.output<O['query']>;
  body: O['body'] extends z.ZodType ? z.output<O['body']> : undefined;
};

export const notFound = (what: string): Answer<never> => ({
  ok: false,
  problem: { status: 404, type: 'not-found', title: 'Not found.', detail: what },
});

/** The flow refused the request as the console would; `field` names the field when the refusal is about one. */
export function refused(message: string, field = '', extra: Record<string, unknown> = {}): Answer<never> {
  return {
    ok: false,
    problem: {
      status: 422,
      type: 'refused',
      title: 'The request was refused.',
      detail: message,
      extra: { errors: [{ field, message }], ...extra },
    },
  };
}

const issuesOf = (error: z.ZodError) =>
  error.issues.slice(0, 20).map((issue) => ({ field: issue.path.map(String).join('.'), message: issue.message }));

function invalid(publicUrl: URL, where: string, error: z.ZodError): Response {
  const errors = issuesOf(error).map((e) => ({ ...e, field: e.field === '' ? where : where === 'body' ? e.field : `${where}.${e.field}` }));
  return problem(publicUrl, {
    status: 422,
    type: 'validation-failed',
    title: 'The request is not valid.',
    detail: errors.map((e) => `${e.field || 'the request'}: ${e.message}`).join('; '),
    extra: { errors },
  });
}

function badRequest(publicUrl: URL, type: 'malformed-request' | 'idempotency-key-required', detail: string): Response {
  return problem(publicUrl, {
    status: 400,
    type,
    title: type === 'malformed-request' ? 'The request is malformed.' : 'An Idempotency-Key header is required.',
    detail,
  });
}

function serverError(publicUrl: URL, operation: ApiOperation, err: unknown): Response {
  console.error(`[candor] api ${operation.id} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return problem(publicUrl, {
    status: 500,
    type: 'server-error',
    title: 'Something went wrong on our side.',
    detail: 'It was logged. A POST may be retried with the same Idempotency-Key.',
  });
}

/** The body as JSON, when sent as JSON; a response when it is not. An empty body reads as `{}`. */
async function readBody(
  ctx: APIContext,
  publicUrl: URL,
): Promise<{ ok: true; text: string; value: unknown } | { ok: false; response: Response }> {
  const text = await ctx.request.text();
  if (text.trim() === '') return { ok: true, text, value: {} };
  const type = ctx.request.headers.get('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    return {
      ok: false,
      response: badRequest(publicUrl, 'malformed-request', 'Send the body as JSON, with "Content-Type: application/json".'),
    };
  }
  try {
    return { ok: true, text, value: JSON.parse(text) };
  } catch {
    return { ok: false, response: badRequest(publicUrl, 'malformed-request', 'The request body is not valid JSON.') };
  }
}

function withHeaders(response: Response, headers: Record<string, string>): Response {
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
  return response;
}

const answered = (publicUrl: URL, status: number, answer: Answer<unknown>): Response =>
  answer.ok ? apiJson(answer.body, status) : problem(publicUrl, answer.problem);

/** The operation's endpoint: checks, then `handler`. */
export function endpoint<O extends ApiOperation>(
  operation: O,
  handler: (input: Input<O>, call: ApiCall) => Promise<Answer<z.input<O['success']['schema']>>>,
): APIRoute {
  return async (ctx) => {
    const { candor } = ctx.locals;
    const publicUrl = candor.config.publicUrl;
    const caller = await apiCaller(ctx, operation.permission);
    if (!caller.ok) return caller.response;
    const respond = (response: Response) => withHeaders(response, caller.headers);
    try {
      const params = operation.params.safeParse(ctx.params);
      if (!params.success)
        return respond(
          problem(publicUrl, {
            status: 404,
            type: 'not-found',
            title: 'Not found.',
            detail: 'No such row: ids are positive whole numbers.',
          }),
        );
      const query = operation.query.safeParse(Object.fromEntries(ctx.url.searchParams));
      if (!query.success) return respond(invalid(publicUrl, 'query', query.error));
      const keyed = takesIdempotencyKey(operation);
      const key = keyed ? ctx.request.headers.get(IDEMPOTENCY_HEADER) : null;
      if (keyed) {
        const keyProblem = idempotencyKeyProblem(key);
        if (keyProblem) return respond(badRequest(publicUrl, 'idempotency-key-required', keyProblem));
      }
      let bodyText = '';
      let body: unknown;
      if (operation.body) {
        const read = await readBody(ctx, publicUrl);
        if (!read.ok) return respond(read.response);
        bodyText = read.text;
        const parsed = operation.body.safeParse(read.value);
        if (!parsed.success) return respond(invalid(publicUrl, 'body', parsed.error));
        body = parsed.data;
      }
      const input = { params: params.data, query: query.data, body } as Input<O>;
      const call: ApiCall = { principal: caller.principal, candor, ip: clientIp(ctx), userAgent: ctx.request.headers.get('user-agent') };
      if (key === null) return respond(answered(publicUrl, operation.success.status, await handler(input, call)));
      return respond(await idempotent(ctx, operation, caller.principal.tokenId, key, bodyText, () => handler(input, call)));
    } catch (err) {
      return respond(serverError(publicUrl, operation, err));
    }
  };
}

/** Runs a POST once per key: replays its kept answer, refuses a reused or running key, releases the key after a server error. */
async function idempotent(
  ctx: APIContext,
  operation: ApiOperation,
  tokenId: number,
  key: string,
  bodyText: string,
  run: () => Promise<Answer<unknown>>,
): Promise<Response> {
  const { candor } = ctx.locals;
  const publicUrl = candor.config.publicUrl;
  const fingerprint = requestFingerprint(ctx.request.method, ctx.url.pathname + ctx.url.search, bodyText);
  const claim = await claimIdempotency(candor.database, tokenId, key, fingerprint, candor.now());
  if (claim.kind === 'replay') {
    const type = claim.status >= 400 ? 'application/problem+json' : 'application/json; charset=utf-8';
    return new Response(claim.body, {
      status: claim.status,
      headers: { 'Content-Type': type, 'Cache-Control': 'no-store', [REPLAYED_HEADER]: 'true' },
    });
  }
  if (claim.kind === 'mismatch') {
    return problem(publicUrl, {
      status: 422,
      type: 'idempotency-key-reused',
      title: 'This Idempotency-Key was used for a different request.',
      detail: `The ${IDEMPOTENCY_HEADER} "${key.slice(0, 60)}" was first sent with another method, path or body: use a new key for a new request.`,
      extra: { errors: [{ field: IDEMPOTENCY_HEADER, message: 'already used for a different request' }] },
    });
  }
  if (claim.kind === 'in-progress') {
    return problem(publicUrl, {
      status: 409,
      type: 'idempotency-key-in-use',
      title: 'A request with this Idempotency-Key is still running.',
      detail: 'Retry in a moment: you will then get its answer.',
      headers: { 'Retry-After': '1' },
    });
  }
  let response: Response;
  try {
    response = answered(publicUrl, operation.success.status, await run());
  } catch (err) {
    await releaseIdempotency(candor.database, tokenId, key);
    return serverError(publicUrl, operation, err);
  }
  if (response.status >= 500) await releaseIdempotency(candor.database, tokenId, key);
  else await completeIdempotency(candor.database, tokenId, key, response.status, await response.clone().text());
  return response;
}

/** The `ALL` export of a staff route: 405 naming the methods it takes (`Allow`); an OPTIONS preflight gets no CORS grant. */
export function otherMethods(allowed: readonly HttpMethod[]): APIRoute {
  const allow = [...allowed, 'OPTIONS'].join(', ');
  return (ctx) => {
    if (ctx.request.method === 'OPTIONS')
      return new Response(null, { status: 204, headers: { Allow: allow, 'Cache-Control': 'no-store' } });
    return problem(ctx.locals.candor.config.publicUrl, {
      status: 405,
      type: 'method-not-allowed',
      title: 'Method not allowed.',
      detail: `${ctx.request.method.slice(0, 20)} is not taken here; this path takes ${allowed.join(', ')}.`,
      headers: { Allow: allow },
    });
  };
}
