/**
 * Links and codes that fail: someone may be guessing. A signed manage or
 * unsubscribe link and a confirmation link carry far too many random bits
 * to guess, and an SMS code allows 5 tries; the limit and the audit trail
 * are there so that trying is seen, and stopped, all the same.
 *
 * Per client address. Every refusal is audited until the address reaches
 * the limit, the lock-out once; after that nothing more is recorded until
 * the window passes. Identical refusals within 15 minutes are one entry
 * and a count (src/core/audit/repeats.ts), so a flood cannot fill the
 * audit log.
 *
 * The counters and the audit entries (audit/repeats.ts's `recordRefusal`, after the count, in a
 * transaction of its own) are on the context's database handle.
 */
import type { Database } from '../../../db/engine/types.ts';
import { recordRefusal } from '../audit/repeats.ts';
import { hitLimitNow, type Limit, peekLimitNow } from '../auth/rate-limit.ts';
import type { SubscriptionContext } from './context.ts';

/** Links that are not ones we signed (or issued): a typo is one or two, guessing is many. */
export const refusedLinksPerIp: Limit = { bucket: 'subscription-link-refused:ip', max: 20, windowMs: 15 * 60_000 };

export type LinkPurpose = 'manage' | 'unsubscribe' | 'confirm' | 'objection';

/** What counting a refusal needs: objection links come with no subscription context. */
export type RefusalContext = Pick<SubscriptionContext, 'ip' | 'now'> & { database: Database };

const minutes = (ms: number) => Math.max(1, Math.ceil(ms / 60_000));
const keyOf = (ctx: RefusalContext) => ctx.ip ?? 'unknown';

/** The message for an address that is locked out, or null when it may present a link. */
export async function linksLocked(ctx: RefusalContext): Promise<string | null> {
  const state = await peekLimitNow(ctx.database, refusedLinksPerIp, keyOf(ctx), ctx.now);
  return state.limited ? `Too many invalid links from your network. Try again in ${minutes(state.retryAfterMs)} minutes.` : null;
}

const audit = (
  ctx: RefusalContext,
  action: 'subscriber.link_refused' | 'subscriber.code_failed' | 'subscriber.locked',
  summary: Record<string, unknown>,
) => recordRefusal(ctx.database, { actor: { type: 'anonymous' }, ip: ctx.ip, action, target: null, summary }, ctx.now);

/** Counts and audits a link that fails its signature or names nothing we issued. */
export async function refuseLink(ctx: RefusalContext, purpose: LinkPurpose): Promise<void> {
  const { count } = await hitLimitNow(ctx.database, refusedLinksPerIp, keyOf(ctx), ctx.now);
  if (count > refusedLinksPerIp.max) return;
  await audit(ctx, 'subscriber.link_refused', { purpose });
  // From the last allowed refusal on, linksLocked() refuses before anything is counted: this is the once.
  if (count === refusedLinksPerIp.max) await audit(ctx, 'subscriber.locked', { reason: 'invalid links', limit: refusedLinksPerIp.max });
}

/** A wrong SMS code; the caller counts codes per address (subscribeLimits.codePerIp). */
export async function refuseCode(ctx: SubscriptionContext, reason: 'wrong code' | 'no tries left'): Promise<void> {
  await audit(ctx, 'subscriber.code_failed', { reason });
}

/** The moment an address reaches the code limit: once per window. */
export async function codesLocked(ctx: SubscriptionContext, limit: number): Promise<void> {
  await audit(ctx, 'subscriber.locked', { reason: 'sms codes', limit });
}
