/**
 * Headers every response carries. Script and style sources are locked down
 * per page by Astro's CSP (hashes in a <meta> tag); what a <meta> policy
 * cannot express (framing) or should hold for every response, including
 * static files and JSON, is sent here as a header policy.
 */
export interface SecurityHeaderOptions {
  https: boolean;
}

const HEADER_CSP = ["frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "form-action 'self'"].join('; ');

export function securityHeaders({ https }: SecurityHeaderOptions): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Security-Policy': HEADER_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'strict-origin-when-cross-origin',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy':
      'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()',
  };
  if (https) headers['Strict-Transport-Security'] = 'max-age=63072000; includeSubDomains';
  return headers;
}

/**
 * Astro sends its own CSP header (script and style hashes) on on-demand
 * pages, replacing ours; this adds back the directives it does not set.
 */
export function mergeCsp(astroPolicy: string, ourPolicy: string = HEADER_CSP): string {
  const name = (directive: string) => directive.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const present = new Set(astroPolicy.split(';').map(name).filter(Boolean));
  const missing = ourPolicy.split(';').filter((d) => !present.has(name(d)));
  const base = astroPolicy.trim().replace(/;\s*$/, '');
  return [base, ...missing.map((d) => d.trim())].filter(Boolean).join('; ');
}
