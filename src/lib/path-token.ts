/**
 * The last segment of the request's path exactly as the client sent it. Astro's route parameters
 * are decoded (`1%2E2` arrives as `1.2`): a signed token must be judged as spelled, so that one
 * token has one spelling.
 */
export function presentedToken(request: Request): string {
  return new URL(request.url).pathname.split('/').at(-1) ?? '';
}
