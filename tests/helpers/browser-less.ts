/**
 * A minimal cookie-keeping HTTP client for the console: follows the same
 * paths a browser would (GET a page, POST its form with an Origin header),
 * without a browser.
 */
import { CookieJar } from './cookie-jar.ts';
export interface PageResponse {
  status: number;
  location: string | null;
  html: string;
  headers: Headers;
}

export class ConsoleClient {
  private readonly cookies = new CookieJar();
  readonly base: string;

  constructor(base: string) {
    this.base = base;
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const cookie = this.cookies.header();
    return { ...(cookie ? { cookie } : {}), 'user-agent': 'candor-tests', ...extra };
  }

  async get(path: string): Promise<PageResponse> {
    const res = await fetch(new URL(path, this.base), { redirect: 'manual', headers: this.headers() });
    this.cookies.remember(res.headers);
    return { status: res.status, location: res.headers.get('location'), html: await res.text(), headers: res.headers };
  }

  /** POSTs a form as a same-origin browser would. */
  async post(path: string, fields: Record<string, string>, extraHeaders: Record<string, string> = {}): Promise<PageResponse> {
    const res = await fetch(new URL(path, this.base), {
      method: 'POST',
      redirect: 'manual',
      headers: this.headers({
        'content-type': 'application/x-www-form-urlencoded',
        origin: this.base,
        'sec-fetch-site': 'same-origin',
        ...extraHeaders,
      }),
      body: new URLSearchParams(fields).toString(),
    });
    this.cookies.remember(res.headers);
    return { status: res.status, location: res.headers.get('location'), html: await res.text(), headers: res.headers };
  }

  /** Follows redirects (GET) until a page answers. */
  async follow(response: PageResponse): Promise<PageResponse> {
    let current = response;
    for (let hops = 0; current.location && hops < 5; hops++) current = await this.get(current.location);
    return current;
  }
}

export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match?.[1]) throw new Error(`no hidden field ${name} in page`);
  return match[1].replaceAll('&amp;', '&').replaceAll('&#43;', '+').replaceAll('&#x2B;', '+');
}
