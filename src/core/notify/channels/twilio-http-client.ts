/**
 * An `httpClient` for the `twilio` SDK that sends every request for `https://*.twilio.com`
 * to another base URL (`TWILIO_API_BASE_URL`), keeping path and query. The SDK has no
 * base-URL option; it does accept `twilio(sid, token, { httpClient })`.
 *
 * It subclasses the SDK's own `RequestClient`, so auth, form encoding, timeouts and the
 * optional `autoRetry` on 429 behave exactly as in production; only the URI changes.
 *
 * The SDK throws a `RestException` carrying `status`, `code`, `message` and `moreInfo` but not
 * the response headers, so `Retry-After` is lost. `captureTwilioResponses(fn)` gives the raw
 * responses (status, lower-cased headers, body) of the calls made inside `fn`, safely under
 * concurrency (AsyncLocalStorage, not the racy `lastResponse`).
 *
 * Dependency-free apart from the `twilio` package.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import type Response from 'twilio/lib/http/response';

export interface TwilioObservedResponse {
  method: string;
  /** The URI actually requested (after rewriting). */
  uri: string;
  statusCode: number;
  /** Lower-cased header names, string values. */
  headers: Record<string, string>;
  body: unknown;
}

export interface TwilioBaseUrlHttpClientOptions extends RequestClient.RequestClientOptions {
  /** e.g. `http://127.0.0.1:4010` or `https://twilio-proxy.internal/prefix`. */
  baseUrl: string;
  /** Called with every response, including errors the SDK will throw for. */
  onResponse?: (response: TwilioObservedResponse) => void;
}

const capture = new AsyncLocalStorage<TwilioObservedResponse[]>();

/** Rewrites `https://<anything>.twilio.com/path?query` onto `baseUrl`; other URLs are left alone. */
export function rewriteTwilioUrl(uri: string, baseUrl: string): string {
  const url = new URL(uri);
  if (url.hostname !== 'twilio.com' && !url.hostname.endsWith('.twilio.com')) return uri;
  const base = new URL(baseUrl);
  const prefix = base.pathname.replace(/\/+$/, '');
  return `${base.origin}${prefix}${url.pathname}${url.search}`;
}

function normaliseHeaders(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof headers !== 'object' || headers === null) return out;
  // axios hands back an AxiosHeaders instance; its own enumerable keys are the header names.
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || value === null) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

export class TwilioBaseUrlHttpClient extends twilio.RequestClient {
  readonly baseUrl: string;
  private readonly onResponse: ((response: TwilioObservedResponse) => void) | undefined;

  constructor(options: TwilioBaseUrlHttpClientOptions) {
    const { baseUrl, onResponse, ...requestClientOptions } = options;
    super(requestClientOptions);
    const parsed = new URL(baseUrl);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`Twilio base URL must be http(s): ${baseUrl}`);
    this.baseUrl = baseUrl;
    this.onResponse = onResponse;
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<Response<TData>> {
    const uri = rewriteTwilioUrl(opts.uri, this.baseUrl);
    const response = await super.request({ ...opts, uri });
    const observer = capture.getStore();
    if (observer || this.onResponse) {
      const observed: TwilioObservedResponse = {
        method: String(opts.method).toUpperCase(),
        uri,
        statusCode: response.statusCode,
        headers: normaliseHeaders(response.headers),
        body: response.body,
      };
      observer?.push(observed);
      this.onResponse?.(observed);
    }
    return response;
  }
}

/** The client for `TWILIO_API_BASE_URL`, or `undefined` to let the SDK talk to Twilio itself. */
export function twilioHttpClientFromEnv(
  env: Record<string, string | undefined> = process.env,
  options: RequestClient.RequestClientOptions = {},
): TwilioBaseUrlHttpClient | undefined {
  const baseUrl = env.TWILIO_API_BASE_URL;
  return baseUrl ? new TwilioBaseUrlHttpClient({ ...options, baseUrl }) : undefined;
}

/**
 * Runs `fn` and collects the raw responses of the Twilio calls it made through a
 * `TwilioBaseUrlHttpClient`, whether `fn` resolved or threw.
 */
export async function captureTwilioResponses<T>(
  fn: () => Promise<T>,
): Promise<
  { ok: true; value: T; responses: TwilioObservedResponse[] } | { ok: false; error: unknown; responses: TwilioObservedResponse[] }
> {
  const responses: TwilioObservedResponse[] = [];
  return capture.run(responses, async () => {
    try {
      return { ok: true, value: await fn(), responses };
    } catch (error) {
      return { ok: false, error, responses };
    }
  });
}

/** `Retry-After` in seconds from an observed response (delta-seconds or HTTP date), if present. */
export function retryAfterSeconds(response: Pick<TwilioObservedResponse, 'headers'>, now: number = Date.now()): number | undefined {
  const value = response.headers['retry-after'];
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}
