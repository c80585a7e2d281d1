import type { AuthContext } from '../core/auth/console-auth.ts';
import type { AppContext } from '../runtime/context.ts';

/** The operator at the terminal: no address, recorded as `system` in the audit log. */
export function cliAuthContext(context: AppContext): AuthContext {
  return {
    database: context.database,
    now: context.now(),
    keys: context.keys.keys,
    policy: context.content.site.policies.staffSessions,
    client: { ip: null, userAgent: 'candor cli' },
    issuer: context.content.site.organisation.name,
    secret: context.secrets.secret,
  };
}
