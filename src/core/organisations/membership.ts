/**
 * Who belongs to a customer organisation, as Candor verified it: the one
 * definition that sending, the composer's counts and the console's member
 * lists all use. A recipient belongs when it is an email address whose
 * domain (blind index) is one of the organisation's domains, or when staff
 * assigned it or approved its claim. What a subscriber typed as their
 * company never appears here. Whether the address is confirmed and not
 * suppressed (`status = 'active'`) is decided by whoever selects from it.
 * It is read through the stores, as builder joins for both engines
 * (src/stores/organisations.ts `memberRows`, `activeMemberCounts`; src/stores/notifications.ts
 * `memberOfAny` for sending and counting).
 */

export type MembershipBasis = 'domain' | 'assigned' | 'claim';

export const basisLabels: Record<MembershipBasis, string> = {
  domain: 'email domain',
  assigned: 'assigned by staff',
  claim: 'claim approved by staff',
};
