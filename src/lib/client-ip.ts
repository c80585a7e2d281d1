/**
 * The client's address for audit records. Astro throws when the adapter
 * cannot tell (prerendering, some test harnesses), and an unknown address
 * must never stop the action being recorded.
 */
export function clientIp(ctx: { clientAddress: string }): string | null {
  try {
    return ctx.clientAddress || null;
  } catch {
    return null;
  }
}
