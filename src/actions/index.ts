/**
 * Console form handlers. Each one validates its input, checks the
 * permission table (src/core/auth/permissions.ts), calls one core flow,
 * which records the audit entry.
 */
import { accessGrantActions } from './access-grants.ts';
import { accessRequestActions } from './access-requests.ts';
import { accountActions } from './account.ts';
import { alertActions } from './alerts.ts';
import { announcementActions } from './announcements.ts';
import { apiTokenActions } from './api-tokens.ts';
import { authActions } from './auth.ts';
import { changeActions } from './changes.ts';
import { incidentActions } from './incidents.ts';
import { notifyActions } from './notify.ts';
import { organisationActions } from './organisations.ts';
import { readerActions } from './reader.ts';
import { ssoActions } from './sso.ts';
import { staffActions } from './staff.ts';
import { subscribeActions } from './subscribe.ts';
import { subscriberActions } from './subscribers.ts';

export const server = {
  ...authActions,
  ...accountActions,
  ...staffActions,
  ...ssoActions,
  ...notifyActions,
  ...subscribeActions,
  ...subscriberActions,
  ...organisationActions,
  ...incidentActions,
  ...alertActions,
  ...changeActions,
  ...announcementActions,
  ...accessGrantActions,
  ...accessRequestActions,
  ...readerActions,
  ...apiTokenActions,
};
