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
 * The counters are on the context's database handle; the audit entries are written after the count,
 * by audit/repeats.ts's `recordRefusal`, which is not on the stores yet: on the SQLite connection
 * under the handle (`legacyConnection`), outside any transaction.
 */
import type { Db } from '../../../db/client.ts';
import { databaseOf, legacyConnection } from '../../../db/engine/sqlite.ts';
import type { Database } from '../../../db/engine/types.ts';
import { recordRefusal } from '../audit/repeats.ts';
import { hitLimitNow, type Limit, peekLimitNow } from '../auth/rate-limit.ts';
import type { SubscriptionContext } from './context.ts';

/** Links that are not ones we signed (or issued): a typo is one or two, guessing is many. */
export const refusedLinksPerIp: Limit = { bucket: 'subscription-link-refused:ip', max: 20, windowMs: 15 * 60_000 };

export type LinkPurpose = 'manage' | 'unsubscribe' | 'confirm' | 'objection';

/**
 * What counting a refusal needs: objection links come with no subscription context, and still with
 * the connection (`db`) rather than the handle (src/core/changes/objections.ts is not on the stores yet).
 */
export type RefusalContext = Pick<SubscriptionContext, 'ip' | 'now'> & ({ database: Database } | { db: Db });

const databaseFor = (ctx: RefusalContext): Database => ('database' in ctx ? ctx.database : databaseOf(ctx.db));

const minutes = (ms: number) => Math.max(1, Math.ceil(ms / 60_000));
const keyOf = (ctx: RefusalContext) => ctx.ip ?? 'unknown';

/** The message for an address that is locked out, or null when it may present a link. */
export async function linksLocked(ctx: RefusalContext): Promise<string | null> {
  const state = await peekLimitNow(databaseFor(ctx), refusedLinksPerIp, keyOf(ctx), ctx.now);
  return state.limited ? `Too many invalid links from your network. Try again in ${minutes(state.retryAfterMs)} minutes.` : null;
}

const audit = (
  ctx: RefusalContext,
  action: 'subscriber.link_refused' | 'subscriber.code_failed' | 'subscriber.locked',
  summary: Record<string, unknown>,
) =>
  recordRefusal(legacyConnection(databaseFor(ctx)), { actor: { type: 'anonymous' }, ip: ctx.ip, action, target: null, summary }, ctx.now);

/** Counts and audits a link that fails its signature or names nothing we issued. */
export async function refuseLink(ctx: RefusalContext, purpose: LinkPurpose): Promise<void> {
  const { count } = await hitLimitNow(databaseFor(ctx), refusedLinksPerIp, keyOf(ctx), ctx.now);
  if (count > refusedLinksPerIp.max) return;
  audit(ctx, 'subscriber.link_refused', { purpose });
  // From the last allowed refusal on, linksLocked() refuses before anything is counted: this is the once.
  if (count === refusedLinksPerIp.max) audit(ctx, 'subscriber.locked', { reason: 'invalid links', limit: refusedLinksPerIp.max });
}

/** A wrong SMS code; the caller counts codes per address (subscribeLimits.codePerIp). */
export function refuseCode(ctx: SubscriptionContext, reason: 'wrong code' | 'no tries left'): void {
  audit(ctx, 'subscriber.code_failed', { reason });
}

/** The moment an address reaches the code limit: once per window. */
export function codesLocked(ctx: SubscriptionContext, limit: number): void {
  audit(ctx, 'subscriber.locked', { reason: 'sms codes', limit });
}
