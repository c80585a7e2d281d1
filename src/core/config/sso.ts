/**
 * Staff single sign-on settings (OpenID Connect), read from the environment with the rest of the
 * configuration (env.ts): unset CANDOR_SSO_ISSUER, no SSO. Every problem names its variable on one
 * line. The redirect URI is not a setting: it is CANDOR_PUBLIC_URL + console/sso/callback, which
 * the operator registers at the provider. The flow itself is src/core/auth/sso.ts's.
 */
import { staffRoles } from '../../../db/schema/staff.ts';
import { ConfigError } from './errors.ts';

type Role = (typeof staffRoles)[number];
type Env = Readonly<Record<string, string | undefined>>;

export interface SsoConfig {
  /** the provider's issuer URL, as its discovery document names it */
  issuer: URL;
  clientId: string;
  clientSecret: string;
  /** CANDOR_PUBLIC_URL + console/sso/callback */
  redirectUri: URL;
  /** shown on the button: "Sign in with <providerName>" */
  providerName: string;
  /** the ID token claim holding the member's groups (default `groups`) */
  groupsClaim: string;
  /** provider group → Candor role */
  roleByGroup: ReadonlyMap<string, Role>;
  /** email domain (lower-case) → Candor role */
  roleByDomain: ReadonlyMap<string, Role>;
  /** email domains (lower-case) whose members get an account at their first SSO sign-in */
  autoCreateDomains: ReadonlySet<string>;
  /** a plain-http issuer on a loopback address (local tests); anything else must be https */
  insecureLoopback: boolean;
}

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const set = (env: Env, name: string): string | undefined => {
  const value = env[name]?.trim();
  return value ? value : undefined;
};

const isRole = (value: string): value is Role => (staffRoles as readonly string[]).includes(value);

/** `key=role,key=role`: keys checked by `validKey`, roles from permissions.ts's list. */
function parseRoleMap(
  env: Env,
  name: string,
  validKey: (key: string) => boolean,
  what: string,
  normalise: (key: string) => string = (key) => key,
): Map<string, Role> {
  const map = new Map<string, Role>();
  const raw = set(env, name);
  if (!raw) return map;
  for (const pair of raw.split(',')) {
    const text = pair.trim();
    if (!text) continue;
    const eq = text.lastIndexOf('=');
    const key = eq > 0 ? normalise(text.slice(0, eq).trim()) : '';
    const role = eq > 0 ? text.slice(eq + 1).trim() : '';
    if (!key || !role) throw new ConfigError(name, `must be a comma-separated list of ${what}=role, got "${text}"`);
    if (!isRole(role)) throw new ConfigError(name, `names an unknown role "${role}" (one of ${staffRoles.join(', ')})`);
    if (!validKey(key)) throw new ConfigError(name, `has an invalid ${what} "${key}"`);
    if (map.has(key)) throw new ConfigError(name, `names the ${what} "${key}" twice`);
    map.set(key, role);
  }
  return map;
}

export function readSsoConfig(env: Env, publicUrl: URL): SsoConfig | null {
  const issuerRaw = set(env, 'CANDOR_SSO_ISSUER');
  const others = ['CANDOR_SSO_CLIENT_ID', 'CANDOR_SSO_CLIENT_SECRET', 'CANDOR_SSO_ROLE_GROUPS', 'CANDOR_SSO_ROLE_DOMAINS'];
  if (!issuerRaw) {
    const stray = others.find((name) => set(env, name));
    if (stray) throw new ConfigError('CANDOR_SSO_ISSUER', `is required when ${stray} is set`);
    return null;
  }
  let issuer: URL;
  try {
    issuer = new URL(issuerRaw);
  } catch {
    throw new ConfigError('CANDOR_SSO_ISSUER', `is not a URL: "${issuerRaw}"`);
  }
  const insecureLoopback = issuer.protocol === 'http:' && LOOPBACK.has(issuer.hostname);
  if (issuer.protocol !== 'https:' && !insecureLoopback)
    throw new ConfigError('CANDOR_SSO_ISSUER', 'must be an https:// URL (plain http only on a loopback address)');
  if (issuer.search || issuer.hash || issuer.username || issuer.password)
    throw new ConfigError('CANDOR_SSO_ISSUER', 'must be the issuer URL alone, without query, fragment or credentials');
  const clientId = set(env, 'CANDOR_SSO_CLIENT_ID');
  if (!clientId) throw new ConfigError('CANDOR_SSO_CLIENT_ID', 'is required when CANDOR_SSO_ISSUER is set');
  const clientSecret = set(env, 'CANDOR_SSO_CLIENT_SECRET');
  if (!clientSecret) throw new ConfigError('CANDOR_SSO_CLIENT_SECRET', 'is required when CANDOR_SSO_ISSUER is set');
  const groupsClaim = set(env, 'CANDOR_SSO_GROUPS_CLAIM') ?? 'groups';
  if (!/^[A-Za-z0-9_:./-]{1,200}$/.test(groupsClaim))
    throw new ConfigError('CANDOR_SSO_GROUPS_CLAIM', `must be a claim name such as "groups", got "${groupsClaim}"`);
  const roleByGroup = parseRoleMap(env, 'CANDOR_SSO_ROLE_GROUPS', (g) => g.length <= 256 && !/[\r\n]/.test(g), 'group');
  const roleByDomain = parseRoleMap(
    env,
    'CANDOR_SSO_ROLE_DOMAINS',
    (d) => DOMAIN.test(d),
    'domain',
    (d) => d.toLowerCase(),
  );
  if (roleByGroup.size === 0 && roleByDomain.size === 0)
    throw new ConfigError('CANDOR_SSO_ROLE_GROUPS', 'or CANDOR_SSO_ROLE_DOMAINS is required when CANDOR_SSO_ISSUER is set');
  const autoCreateDomains = new Set<string>();
  for (const domain of (set(env, 'CANDOR_SSO_AUTO_CREATE_DOMAINS') ?? '').split(',')) {
    const text = domain.trim().toLowerCase();
    if (!text) continue;
    if (!DOMAIN.test(text)) throw new ConfigError('CANDOR_SSO_AUTO_CREATE_DOMAINS', `has an invalid domain "${text}"`);
    autoCreateDomains.add(text);
  }
  const providerName = set(env, 'CANDOR_SSO_NAME') ?? issuer.hostname;
  if (providerName.length > 60 || /[\r\n]/.test(providerName))
    throw new ConfigError('CANDOR_SSO_NAME', 'must be a short name on one line (at most 60 characters)');
  return {
    issuer,
    clientId,
    clientSecret,
    redirectUri: new URL('console/sso/callback', publicUrl),
    providerName,
    groupsClaim,
    roleByGroup,
    roleByDomain,
    autoCreateDomains,
    insecureLoopback,
  };
}
