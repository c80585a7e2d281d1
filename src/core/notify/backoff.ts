/**
 * When to try again: exponential backoff with full jitter (so a recovered
 * provider is not hit by every delivery at once), never sooner than the
 * provider's Retry-After.
 */
export interface RetryPolicy {
  baseMs: number;
  capMs: number;
  maxAttempts: number;
}

export const defaultRetryPolicy: RetryPolicy = { baseMs: 5_000, capMs: 30 * 60_000, maxAttempts: 10 };

export function retryDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs: number | null | undefined,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** Retry-After is seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
