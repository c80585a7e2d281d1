/**
 * Who belongs to a customer organisation, as Candor verified it: the one
 * definition that sending, the composer's counts and the console's member
 * lists all use. A recipient belongs when it is an email address whose
 * domain (blind index) is one of the organisation's domains, or when staff
 * assigned it or approved its claim. What a subscriber typed as their
 * company never appears here. Whether the address is confirmed and not
 * suppressed (`status = 'active'`) is decided by whoever selects from it.
 * The product reads it through the stores, as builder joins for both engines
 * (src/stores/organisations.ts `memberRows`, `activeMemberCounts`; src/stores/notifications.ts
 * `memberOfAny` for sending and counting). This SQLite text is kept for the synchronous test
 * fixtures (tests/helpers/notify-sync.ts), which compare against it.
 */

/**
 * One row per (organisation, recipient, basis): `basis` is `domain` (with the
 * matching `domain`), `assigned` or `claim` (with its `membership_id`). A
 * recipient can appear under several bases; select DISTINCT recipients.
 */
export const VERIFIED_MEMBERS_SQL = `
  SELECT d.organisation_id AS organisation_id, vr.id AS recipient_id, 'domain' AS basis, d.domain AS domain, NULL AS membership_id
    FROM recipients vr JOIN organisation_domains d ON d.domain_hash = vr.domain_hash
    WHERE vr.channel = 'email'
  UNION ALL
  SELECT m.organisation_id, m.recipient_id, m.basis, NULL, m.id FROM organisation_members m`;

export type MembershipBasis = 'domain' | 'assigned' | 'claim';

export const basisLabels: Record<MembershipBasis, string> = {
  domain: 'email domain',
  assigned: 'assigned by staff',
  claim: 'claim approved by staff',
};
