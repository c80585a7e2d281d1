/**
 * Whom a notification reached, computed from its delivery rows (the
 * recorded facts) and nothing else: per channel, how many deliveries were
 * queued (intended), how many reached their recipient, how many did not
 * and why, how many are still on their way, and when the last one
 * reached its recipient.
 *
 * Reached means the provider accepted the message (`sent`: Resend, Twilio
 * or Slack took it, the webhook endpoint answered 2xx) or confirmed it
 * delivered (`delivered`). It does not include:
 * - `failed`: retries ran out, the provider refused it, or it bounced
 *   after being accepted (a bounce turns `sent` into `failed`);
 * - `suppressed`: not sent because the address is quarantined or was
 *   removed, or the provider refuses it for good;
 * - logged: `sent` by the log transport of a channel without provider
 *   keys, which writes the message down instead of sending it
 *   (src/core/notify/channels/log.ts): nobody received it.
 * `pending` and `sending` are on their way.
 */
import type { Reader, Tx } from '../../../db/engine/types.ts';
import { type ChannelName, channels } from '../../../db/schema/notify.ts';
import { type ReachRow, reachRows } from '../../stores/notifications.ts';
import { LOGGED_MESSAGE_ID_PREFIX } from './channels/log.ts';

export interface ReachCounts {
  /** deliveries queued: everyone the notice was meant for */
  intended: number;
  /** accepted by the provider or confirmed delivered */
  reached: number;
  /** of those reached, confirmed delivered by the provider's callback */
  delivered: number;
  failed: number;
  /** not sent: the address is quarantined or removed, or the provider refuses it */
  suppressed: number;
  /** only written down by the log transport: no provider is configured for the channel */
  logged: number;
  /** pending or being sent */
  onTheWay: number;
}

/**
 * everyone: every intended recipient was reached (and at least one was intended);
 * on-the-way: some are still being sent and none is lost yet;
 * not-everyone: some were reached, or may still be, but at least one was not and will not be;
 * no-one: nothing is on its way and nobody was reached (including a notice queued for no one).
 */
export type ReachOutcome = 'everyone' | 'on-the-way' | 'not-everyone' | 'no-one';

export interface NotificationReach extends ReachCounts {
  notificationId: number;
  channels: Partial<Record<ChannelName, ReachCounts>>;
  /** when the last recipient reached was reached (accepted, or confirmed when no acceptance was recorded) */
  lastReachedAt: Date | null;
  outcome: ReachOutcome;
}

export const channelLabels: Record<ChannelName, string> = {
  email: 'Email',
  sms: 'SMS',
  slack: 'Slack',
  webhook: 'Webhook',
  teams: 'Microsoft Teams',
  discord: 'Discord',
};

const zero = (): ReachCounts => ({ intended: 0, reached: 0, delivered: 0, failed: 0, suppressed: 0, logged: 0, onTheWay: 0 });

export function reachOutcome(c: ReachCounts): ReachOutcome {
  if (c.intended > 0 && c.reached === c.intended) return 'everyone';
  if (c.onTheWay === 0 && c.reached === 0) return 'no-one';
  if (c.failed + c.suppressed + c.logged > 0) return 'not-everyone';
  return 'on-the-way';
}

/** The reach of each notification asked for; one with no delivery row reached no one. */
export async function notificationReach(r: Reader | Tx, notificationIds: readonly number[]): Promise<Map<number, NotificationReach>> {
  return reachOf(notificationIds, await reachRows(r, notificationIds, LOGGED_MESSAGE_ID_PREFIX));
}

/** The reach of each notification from its deliveries counted per channel and fact (src/stores/notifications.ts). */
export function reachOf(notificationIds: readonly number[], rows: readonly ReachRow[]): Map<number, NotificationReach> {
  const result = new Map<number, NotificationReach>();
  for (const id of notificationIds) result.set(id, { notificationId: id, ...zero(), channels: {}, lastReachedAt: null, outcome: 'no-one' });
  for (const row of rows) {
    const reach = result.get(row.notificationId);
    if (!reach) continue;
    const channel = reach.channels[row.channel] ?? zero();
    reach.channels[row.channel] = channel;
    for (const counts of [reach, channel]) {
      counts.intended += row.n;
      counts[row.fact] += row.n;
      if (row.fact === 'reached') counts.delivered += row.delivered;
    }
    if (row.fact === 'reached' && row.lastAt !== null && (reach.lastReachedAt === null || row.lastAt > reach.lastReachedAt))
      reach.lastReachedAt = row.lastAt;
  }
  for (const reach of result.values()) reach.outcome = reachOutcome(reach);
  return result;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** What was not reached and what is still coming, e.g. "2 failed; 1 not sent (quarantined or removed)". */
function losses(c: ReachCounts): string[] {
  return [
    ...(c.failed ? [`${c.failed} failed`] : []),
    ...(c.suppressed ? [`${c.suppressed} not sent (address quarantined or removed, or refused by the provider)`] : []),
    ...(c.logged ? [`${c.logged} only logged (no provider is configured, so nothing was sent)`] : []),
    ...(c.onTheWay ? [`${c.onTheWay} on ${c.onTheWay === 1 ? 'its' : 'their'} way`] : []),
  ];
}

/** One sentence for a notice's reach: "reached 41 of 43; 2 failed", "reached no one: it was queued for no one". */
export function describeReach(c: ReachCounts): string {
  const outcome = reachOutcome(c);
  if (c.intended === 0) return 'reached no one: no recipient matched its audience, so nothing was queued';
  if (outcome === 'everyone') return c.intended === 1 ? 'reached its 1 recipient' : `reached all ${c.intended} recipients`;
  const rest = losses(c);
  if (outcome === 'no-one') return `reached no one of ${plural(c.intended, 'recipient')}: ${rest.join('; ')}`;
  const sofar = c.onTheWay > 0 ? ' so far' : '';
  return `reached ${c.reached} of ${c.intended}${sofar}; ${rest.join('; ')}`;
}

/** The figures alone, for a table that names the outcome beside them: "3 of 4; 1 failed", "all 4". */
export function reachFigures(c: ReachCounts): string {
  if (c.intended === 0) return 'nothing was queued: no recipient matched its audience';
  if (reachOutcome(c) === 'everyone') return `all ${c.intended}`;
  return [`${c.reached} of ${c.intended}${c.onTheWay > 0 ? ' so far' : ''}`, ...losses(c)].join('; ');
}

/** Per channel, e.g. "Email: 40 of 41 reached (38 confirmed delivered), 1 failed". */
export function describeChannels(reach: Pick<NotificationReach, 'channels'>): string[] {
  return channels.flatMap((channel) => {
    const c = reach.channels[channel];
    if (!c) return [];
    const confirmed = c.delivered ? ` (${c.delivered} confirmed delivered)` : '';
    const short = [
      ...(c.failed ? [`${c.failed} failed`] : []),
      ...(c.suppressed ? [`${c.suppressed} not sent`] : []),
      ...(c.logged ? [`${c.logged} only logged`] : []),
      ...(c.onTheWay ? [`${c.onTheWay} on the way`] : []),
    ];
    return `${channelLabels[channel]}: ${c.reached} of ${c.intended} reached${confirmed}${short.length ? `, ${short.join(', ')}` : ''}`;
  });
}
