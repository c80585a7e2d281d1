/**
 * Every route the app answers, classified by who may reach it and what an
 * attacker must not get from it. tests/security/routes.test.ts finds the
 * routes from src/pages and from the build's manifest (which adds Astro's
 * own endpoints) and fails for any route missing here, so a new page is
 * classified before it ships.
 *
 * Console routes (/console/...) are classified by src/core/auth/permissions.ts
 * and walked for every role by tests/integration/console-authorisation.test.ts
 * (table: tests/helpers/authorisation-table.ts); here they only get the
 * checks every route gets.
 */

export type RouteKind =
  /** anyone; public information only */
  | 'public'
  /** personal: reached only with a signed token in the URL or a provider's redirect */
  | 'token'
  /** customers' reading of gated documents: reached only with a reader session (src/core/access/reader-sessions.ts), never a staff one */
  | 'reader'
  /** provider callbacks: POST only, accepted only with a valid signature */
  | 'webhook'
  /** Astro's own endpoints, which Candor does not use directly */
  | 'internal'
  /** the staff API (src/lib/api/operations.ts): a Bearer API token only, never a cookie; problem details; no CORS */
  | 'api';

export interface RouteExpectation {
  kind: RouteKind;
  /** a concrete path to request (for dynamic routes, one that does not exist or a forged token) */
  path: string;
  /** what an anonymous GET of `path` answers */
  status: number;
  /** public data for machines: Access-Control-Allow-Origin: * (never with credentials) */
  cors?: true;
  /** the prerendered file is served before Astro (no per-request headers beyond the server's) */
  static?: true;
}

/** A signed-looking token that no server signed. */
export const FORGED = 'a1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export const routeTable: Record<string, RouteExpectation> = {
  '/': { kind: 'public', path: '/', status: 200, static: true },
  '/404': { kind: 'public', path: '/404', status: 404 },
  // the error page is rendered by the app when something fails, never served for its own URL
  '/500': { kind: 'public', path: '/500', status: 404 },
  // the styled page of refusals a browser shows (src/lib/error-page.ts renders it with their status); by its own URL, "Page not found"
  '/error': { kind: 'public', path: '/error', status: 404 },
  '/api': { kind: 'public', path: '/api', status: 200, static: true },
  // alerts from monitoring (POST, alerts.ingest) and a service's automation state (PUT): staff API operations, so a GET is 405
  '/api/v1/alerts/alertmanager': { kind: 'api', path: '/api/v1/alerts/alertmanager', status: 405 },
  '/api/v1/alerts/generic': { kind: 'api', path: '/api/v1/alerts/generic', status: 405 },
  '/api/v1/alerts/grafana': { kind: 'api', path: '/api/v1/alerts/grafana', status: 405 },
  '/api/v1/components/[id]/status': { kind: 'api', path: '/api/v1/components/public-api/status', status: 405 },
  '/api/v1/changes.json': { kind: 'public', path: '/api/v1/changes.json', status: 200, cors: true },
  '/api/v1/status.json': { kind: 'public', path: '/api/v1/status.json', status: 200, cors: true },
  '/api/v1/subprocessors.json': { kind: 'public', path: '/api/v1/subprocessors.json', status: 200, cors: true },
  '/api/v1/trust.json': { kind: 'public', path: '/api/v1/trust.json', status: 200, cors: true },
  '/api/openapi.json': { kind: 'public', path: '/api/openapi.json', status: 200 },
  '/api/reference': { kind: 'public', path: '/api/reference', status: 200 },
  // the staff API: anonymous → 401 (a route without GET: 405 first)
  '/api/v1/incidents': { kind: 'api', path: '/api/v1/incidents', status: 401 },
  '/api/v1/incidents/[id]': { kind: 'api', path: '/api/v1/incidents/999999', status: 401 },
  '/api/v1/incidents/[id]/updates': { kind: 'api', path: '/api/v1/incidents/999999/updates', status: 405 },
  '/api/v1/maintenances': { kind: 'api', path: '/api/v1/maintenances', status: 405 },
  '/api/v1/subscribers': { kind: 'api', path: '/api/v1/subscribers', status: 401 },
  '/api/v1/subscribers/[id]': { kind: 'api', path: '/api/v1/subscribers/999999', status: 405 },
  '/api/v1/change-notices/[id]/publish': { kind: 'api', path: '/api/v1/change-notices/999999/publish', status: 405 },
  '/api/v1/notifications/[id]': { kind: 'api', path: '/api/v1/notifications/999999', status: 401 },
  '/api/v1/trust.schema.json': { kind: 'public', path: '/api/v1/trust.schema.json', status: 200, static: true },
  '/api/v2/components.json': { kind: 'public', path: '/api/v2/components.json', status: 200, cors: true },
  '/api/v2/incidents.json': { kind: 'public', path: '/api/v2/incidents.json', status: 200, cors: true },
  '/api/v2/incidents/unresolved.json': { kind: 'public', path: '/api/v2/incidents/unresolved.json', status: 200, cors: true },
  '/api/v2/scheduled-maintenances.json': { kind: 'public', path: '/api/v2/scheduled-maintenances.json', status: 200, cors: true },
  '/api/v2/scheduled-maintenances/active.json': {
    kind: 'public',
    path: '/api/v2/scheduled-maintenances/active.json',
    status: 200,
    cors: true,
  },
  '/api/v2/scheduled-maintenances/upcoming.json': {
    kind: 'public',
    path: '/api/v2/scheduled-maintenances/upcoming.json',
    status: 200,
    cors: true,
  },
  '/api/v2/status.json': { kind: 'public', path: '/api/v2/status.json', status: 200, cors: true },
  '/api/v2/summary.json': { kind: 'public', path: '/api/v2/summary.json', status: 200, cors: true },
  '/changes': { kind: 'public', path: '/changes', status: 200 },
  '/docs': { kind: 'public', path: '/docs', status: 200, static: true },
  '/docs/[slug]': { kind: 'public', path: '/docs/encryption', status: 200, static: true },
  '/documents': { kind: 'public', path: '/documents', status: 200 },
  '/documents/request': { kind: 'public', path: '/documents/request', status: 200 },
  '/documents/verify/[token]': { kind: 'token', path: `/documents/verify/${FORGED}`, status: 404 },
  // only public documents have a file; a gated one's path is a 404 (tests/integration/documents.test.ts)
  '/documents/[slug].pdf': { kind: 'public', path: '/documents/iso-27001-certificate.pdf', status: 200, static: true },
  '/feeds/[name].[format]': { kind: 'public', path: '/feeds/incidents.xml', status: 200, cors: true },
  '/incidents/[id]': { kind: 'public', path: '/incidents/999999', status: 404 },
  '/incidents/[id].ics': { kind: 'public', path: '/incidents/999999.ics', status: 404 },
  '/search': { kind: 'public', path: '/search', status: 200, static: true },
  '/status': { kind: 'public', path: '/status', status: 200 },
  '/subprocessors': { kind: 'public', path: '/subprocessors', status: 200 },
  '/subscribe': { kind: 'public', path: '/subscribe', status: 200 },
  '/.well-known/security.txt': { kind: 'public', path: '/.well-known/security.txt', status: 200 },
  '/.well-known/candor-evidence-key': { kind: 'public', path: '/.well-known/candor-evidence-key', status: 200 },

  // the confirmation page only shows a button: the token is judged when it is pressed
  '/subscribe/confirm/[token]': { kind: 'token', path: `/subscribe/confirm/${FORGED}`, status: 200 },
  '/subscribe/slack/callback': { kind: 'token', path: '/subscribe/slack/callback?code=x&state=forged.state', status: 400 },
  '/subscription/[token]': { kind: 'token', path: `/subscription/${FORGED}`, status: 404 },
  '/subscription/[token]/export.json': { kind: 'token', path: `/subscription/${FORGED}/export.json`, status: 404 },
  '/unsubscribe/[token]': { kind: 'token', path: `/unsubscribe/${FORGED}`, status: 404 },
  '/objections/[token]': { kind: 'token', path: `/objections/1.${FORGED}`, status: 404 },

  // customers' reading of gated documents: asking for a link is public; the link's page only shows a button
  '/documents/sign-in': { kind: 'public', path: '/documents/sign-in', status: 200 },
  '/documents/sign-in/[token]': { kind: 'token', path: `/documents/sign-in/${FORGED}`, status: 404 },
  // without a reader session: the sign-in page (a staff session is none)
  '/documents/nda': { kind: 'reader', path: '/documents/nda', status: 303 },
  '/documents/library': { kind: 'reader', path: '/documents/library', status: 303 },
  '/documents/read/[slug].pdf': { kind: 'reader', path: '/documents/read/soc-2-type-ii-report.pdf?download=1', status: 303 },

  '/webhooks/resend': { kind: 'webhook', path: '/webhooks/resend', status: 404 },
  '/webhooks/twilio/status': { kind: 'webhook', path: '/webhooks/twilio/status', status: 404 },
  '/webhooks/twilio/inbound': { kind: 'webhook', path: '/webhooks/twilio/inbound', status: 404 },

  // actions are POSTed (the matrix walks each one); a GET finds nothing
  '/_actions/[...path]': { kind: 'internal', path: '/_actions/signIn', status: 404 },
  // image transformation: Candor renders no image through it, so src/middleware.ts answers 404
  '/_image': { kind: 'internal', path: '/_image?href=%2Ffavicon.svg&w=16&f=png', status: 404 },
  // no server islands are used
  '/_server-islands/[name]': { kind: 'internal', path: '/_server-islands/x', status: 400 },
};

/** A concrete path for a console route pattern. */
export const consolePath = (pattern: string) => pattern.replace('[id]', '999999').replace('[token]', 'abc.def');
