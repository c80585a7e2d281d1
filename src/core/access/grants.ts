/**
 * Grants of gated documents after they are made: their state at a moment (live, expiring soon, expired,
 * revoked), revoking one at once, and the notice each customer gets once, 7 days before their grant
 * ends. A grant is expired when expiresAt <= now: nothing has to run for a download to be refused
 * (the reader checks `isGrantLive`). Revoking is one conditional UPDATE, audited and announced to the
 * customer by email in its transaction; the notice is claimed by a conditional UPDATE of
 * expiry_notice_at in the transaction that queues the email, so two nodes send it once. Emails go to
 * the customer's verified address through the notification outbox (src/core/notify/outbox.ts).
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import { type AccessGrantRow, claimExpiryNotice, grantById, grantsDueNotice, revokeGrantRow } from '../../stores/access-activity.ts';
import { writeAudit } from '../audit/log.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import type { StaffAudit } from '../subscriptions/context.ts';
import { escapeHtml } from '../text/escape.ts';

export type { AccessGrantRow };

const DAY_MS = 86_400_000;
/** A customer hears this long before their grant ends; the console calls such a grant "expiring soon". */
export const GRANT_NOTICE_DAYS = 7;
/** Where a customer asks for access again (helper "requests"'s page). */
export const REQUEST_PATH = 'documents/request';

export type GrantState = 'active' | 'expiring' | 'expired' | 'revoked';

/** Whether the grant lets its customer read at `now`: not revoked and not yet at its expiry. */
export function isGrantLive(grant: Pick<AccessGrantRow, 'expiresAt' | 'revokedAt'>, now: Date): boolean {
  return grant.revokedAt === null && grant.expiresAt.getTime() > now.getTime();
}

export function grantState(grant: Pick<AccessGrantRow, 'expiresAt' | 'revokedAt'>, now: Date): GrantState {
  if (grant.revokedAt !== null) return 'revoked';
  if (grant.expiresAt.getTime() <= now.getTime()) return 'expired';
  return grant.expiresAt.getTime() - now.getTime() <= GRANT_NOTICE_DAYS * DAY_MS ? 'expiring' : 'active';
}

/** "10 December 2026, 14:00 UTC" */
export function formatMoment(at: Date): string {
  const date = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(at);
  return `${date}, ${at.toISOString().slice(11, 16)} UTC`;
}

/** What the emails need to say who writes and what the documents are. */
export interface GrantMailDeps {
  database: Database;
  publicUrl: URL;
  /** the organisation's name (content/site.yaml) */
  organisation: string;
  /** document titles by slug; a slug not listed is shown as itself */
  titles: ReadonlyMap<string, string>;
}

function documentList(deps: GrantMailDeps, slugs: readonly string[]): string[] {
  return slugs.map((slug) => deps.titles.get(slug) ?? slug);
}

function email(subject: string, lines: string[], link: { label: string; href: string }) {
  return {
    subject,
    html: `${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n')}\n<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>`,
    text: `${lines.join('\n\n')}\n\n${link.label}: ${link.href}\n`,
  };
}

async function mailCustomer(
  tx: Tx,
  grant: AccessGrantRow,
  kind: string,
  content: ReturnType<typeof email>,
  now: Date,
  createdBy: number | null,
): Promise<number> {
  const { notificationId } = await enqueueNotification(
    tx,
    {
      kind,
      title: content.subject,
      content: { email: content },
      // The address was verified before any grant was made: a grant's customer is told even if the
      // row still reads pending; a suppressed or removed address is not written to.
      audience: { kind: 'recipients', ids: [grant.recipientId], includePending: true },
      createdBy,
    },
    now,
  );
  return notificationId;
}

export type RevokeResult = { ok: true; grant: AccessGrantRow } | { ok: false; message: string };

/**
 * Staff revoke a grant: at once (downloads check revokedAt), audited (`access.grant.revoked`), and the
 * customer is emailed that their access ended, all in one transaction. A grant revoked already, or
 * ended already, is refused with a message saying so.
 */
export function revokeAccessGrant(deps: GrantMailDeps, grantId: number, staff: StaffAudit, now: Date): Promise<RevokeResult> {
  return deps.database.transaction(async (tx): Promise<RevokeResult> => {
    const grant = await grantById(tx, grantId);
    if (!grant) return { ok: false, message: `There is no grant #${grantId}.` };
    if (grant.revokedAt) return { ok: false, message: `Grant #${grantId} was already revoked on ${formatMoment(grant.revokedAt)}.` };
    if (!isGrantLive(grant, now))
      return { ok: false, message: `Grant #${grantId} already expired on ${formatMoment(grant.expiresAt)}; there is nothing to revoke.` };
    const staffId = staff.actor.type === 'staff' ? staff.actor.id : null;
    if (staffId === null) throw new Error('a grant is revoked by a staff member');
    if (!(await revokeGrantRow(tx, grantId, now, staffId))) return { ok: false, message: `Grant #${grantId} was already revoked.` };
    const titles = documentList(deps, grant.documents);
    const notificationId = await mailCustomer(
      tx,
      grant,
      'access-grant-revoked',
      email(
        `Your access to ${deps.organisation} documents has ended`,
        [
          `Hello ${grant.name},`,
          `${deps.organisation} has ended your access to these documents on its trust center, as of ${formatMoment(now)}:`,
          titles.join('; '),
          'If you still need them, you can ask for access again.',
        ],
        { label: 'Ask for access again', href: new URL(REQUEST_PATH, deps.publicUrl).href },
      ),
      now,
      staffId,
    );
    await writeAudit(
      tx,
      {
        ...staff,
        action: 'access.grant.revoked',
        target: `access_grant:${grantId}`,
        summary: { documents: grant.documents, expiresAt: grant.expiresAt.toISOString(), notification: notificationId },
      },
      now,
    );
    return { ok: true, grant: { ...grant, revokedAt: now, revokedBy: staffId } };
  });
}

/** Grants looked at per round; the next round takes any beyond. */
const NOTICE_BATCH = 200;

/**
 * Emails each customer whose grant ends within GRANT_NOTICE_DAYS of `now`, once per grant: each grant is
 * claimed (expiry_notice_at) in the transaction that queues its email and its audit entry, so of two
 * nodes running this at once exactly one sends it. Returns the grants noticed by this call.
 */
export async function sendGrantExpiryNotices(deps: GrantMailDeps, now: Date): Promise<number[]> {
  const horizon = new Date(now.getTime() + GRANT_NOTICE_DAYS * DAY_MS);
  const due = await deps.database.read((r) => grantsDueNotice(r, now, horizon, NOTICE_BATCH));
  const sent: number[] = [];
  for (const grant of due) {
    const claimed = await deps.database.transaction(async (tx) => {
      if (!(await claimExpiryNotice(tx, grant.id, now, horizon))) return false;
      const ends = formatMoment(grant.expiresAt);
      const notificationId = await mailCustomer(
        tx,
        grant,
        'access-grant-expiry',
        email(
          `Your access to ${deps.organisation} documents ends on ${ends}`,
          [
            `Hello ${grant.name},`,
            `Your access to these documents on the ${deps.organisation} trust center ends on ${ends}:`,
            documentList(deps, grant.documents).join('; '),
            'If you need them after that date, ask for access again.',
          ],
          { label: 'Ask for access again', href: new URL(REQUEST_PATH, deps.publicUrl).href },
        ),
        now,
        null,
      );
      await writeAudit(
        tx,
        {
          actor: { type: 'system' },
          action: 'access.grant.expiry_noticed',
          target: `access_grant:${grant.id}`,
          summary: { expiresAt: grant.expiresAt.toISOString(), notification: notificationId },
        },
        now,
      );
      return true;
    });
    if (claimed) sent.push(grant.id);
  }
  return sent;
}

/** Document titles by slug, for the emails. */
export function documentTitles(documents: readonly { slug: string; title: string }[]): Map<string, string> {
  return new Map(documents.map((d) => [d.slug, d.title]));
}
