/**
 * Staff API tokens (issue 17): what a program acting for a staff member presents as
 * `Authorization: Bearer cnd_…`. Owners and admins make them in the console (Console → API tokens),
 * named, scoped to permissions of the console's own table (src/core/auth/permissions.ts) and
 * expiring; the secret is shown once and only its SHA-256 is kept. A token never does more than its
 * creator could: its scopes must be the creator's permissions when it is made, and each use grants
 * only the scopes the creator still holds, while the creator's account is active. Revoking is
 * immediate. Every use is audited (`api.token.used`, with method and path) and counts against the
 * token's rate limit, in one transaction.
 */
import { createHash } from 'node:crypto';
import type { Database } from '../../../db/engine/types.ts';
import {
  type ApiTokenRow,
  apiTokenByHash,
  apiTokenById,
  apiTokenRows,
  insertApiToken,
  markApiTokenUsed,
  revokeApiTokenRow,
} from '../../stores/api-tokens.ts';
import { staffById } from '../../stores/staff.ts';
import { writeAudit } from '../audit/log.ts';
import { type Permission, permissions, type Role, rolePermissions } from '../auth/permissions.ts';
import { hitLimit, type Limit } from '../auth/rate-limit.ts';
import { randomToken } from '../crypto/random.ts';

export const TOKEN_PREFIX = 'cnd_';
const PREFIX_SHOWN = TOKEN_PREFIX.length + 6;
export const DEFAULT_TOKEN_DAYS = 90;
export const MAX_TOKEN_DAYS = 365;
const DAY_MS = 86_400_000;

/**
 * What a token may not hold, whoever makes it: a token acts for a program, not a person, so it manages
 * no accounts (its own creator's included), no sign-in policy, and makes no further tokens (a leaked
 * token must not be able to outlive its revocation by minting another).
 */
const PERSONAL_ONLY: ReadonlySet<Permission> = new Set(['account.manage', 'staff.manage', 'sso.manage', 'api.tokens.manage']);

/** The permissions a token can be given, in the table's order. */
export const tokenScopes: readonly Permission[] = permissions.filter((p) => !PERSONAL_ONLY.has(p));

/** The scopes a member of `role` may give a token. */
export function grantableScopes(role: Role): Permission[] {
  return tokenScopes.filter((p) => rolePermissions[role].has(p));
}

/** Per token: 600 requests a minute, Statuspage's order of magnitude for its manage API's limit per key. */
export const apiTokenLimit: Limit = { bucket: 'api:token', max: 600, windowMs: 60_000 };

export const hashApiToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

export interface TokenCreator {
  id: number;
  email: string;
  role: Role;
}

export interface TokenClient {
  ip: string | null;
  userAgent: string | null;
}

export interface TokenInput {
  name: string;
  scopes: readonly string[];
  /** 1 to 365 */
  days: number;
}

export type TokenOutcome<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string };

/** A token as lists show it: never its hash. */
export interface ApiTokenView {
  id: number;
  name: string;
  prefix: string;
  scopes: string[];
  createdBy: number;
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  state: 'active' | 'expired' | 'revoked';
}

function view(row: ApiTokenRow, now: Date): ApiTokenView {
  const state = row.revokedAt ? 'revoked' : row.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
  const { tokenHash: _hash, trustCenterId: _tc, revokedBy: _by, ...rest } = row;
  return { ...rest, state };
}

const NAME_MAX = 80;

/** Checks the input against what the creator may give; the message names the first problem. */
export function checkTokenInput(
  creator: TokenCreator,
  input: TokenInput,
): TokenOutcome<{ name: string; scopes: Permission[]; days: number }> {
  const name = input.name.trim();
  if (name === '') return { ok: false, message: 'Give the token a name that says what uses it, e.g. "Alertmanager" or "deploy pipeline".' };
  if (name.length > NAME_MAX) return { ok: false, message: `The name is too long (${NAME_MAX} characters at most).` };
  if (/\p{Cc}/u.test(name)) return { ok: false, message: 'The name may not contain control characters.' };
  if (input.scopes.length === 0) return { ok: false, message: 'Choose at least one permission for the token.' };
  const grantable = new Set<string>(grantableScopes(creator.role));
  const scopes: Permission[] = [];
  for (const scope of input.scopes) {
    if (!(tokenScopes as readonly string[]).includes(scope)) {
      return { ok: false, message: `"${scope.slice(0, 60)}" is not a permission a token can hold.` };
    }
    if (!grantable.has(scope)) return { ok: false, message: `You cannot give "${scope}": your role (${creator.role}) does not have it.` };
    if (!scopes.includes(scope as Permission)) scopes.push(scope as Permission);
  }
  if (!Number.isInteger(input.days) || input.days < 1 || input.days > MAX_TOKEN_DAYS) {
    return { ok: false, message: `The token must expire in 1 to ${MAX_TOKEN_DAYS} days.` };
  }
  return { ok: true, name, scopes: tokenScopes.filter((p) => scopes.includes(p)), days: input.days };
}

/** Makes a token; the secret is in the outcome and nowhere else, ever. Audited `api.token.created`. */
export async function createApiToken(
  database: Database,
  creator: TokenCreator,
  client: TokenClient,
  input: TokenInput,
  now: Date,
): Promise<TokenOutcome<{ token: string; view: ApiTokenView }>> {
  const checked = checkTokenInput(creator, input);
  if (!checked.ok) return checked;
  // 240 bits: two of the session design's 120-bit tokens.
  const token = `${TOKEN_PREFIX}${randomToken()}${randomToken()}`;
  const row = await database.transaction(async (tx) => {
    const inserted = await insertApiToken(tx, {
      name: checked.name,
      tokenHash: hashApiToken(token),
      prefix: token.slice(0, PREFIX_SHOWN),
      scopes: checked.scopes,
      createdBy: creator.id,
      createdAt: now,
      expiresAt: new Date(now.getTime() + checked.days * DAY_MS),
    });
    await writeAudit(
      tx,
      {
        actor: { type: 'staff', id: creator.id, label: creator.email },
        ip: client.ip,
        userAgent: client.userAgent,
        action: 'api.token.created',
        target: `api_token:${inserted.id}`,
        summary: { name: inserted.name, prefix: inserted.prefix, scopes: checked.scopes, expiresAt: inserted.expiresAt.toISOString() },
      },
      now,
    );
    return inserted;
  });
  return { ok: true, token, view: view(row, now) };
}

/** Revokes a token at once; audited `api.token.revoked` (once, however many times it is asked). */
export async function revokeApiToken(
  database: Database,
  actor: TokenCreator,
  client: TokenClient,
  id: number,
  now: Date,
): Promise<TokenOutcome> {
  return database.transaction(async (tx) => {
    const row = await apiTokenById(tx, id);
    if (!row) return { ok: false, message: 'There is no such token.' };
    if (row.revokedAt) return { ok: true };
    await revokeApiTokenRow(tx, id, actor.id, now);
    await writeAudit(
      tx,
      {
        actor: { type: 'staff', id: actor.id, label: actor.email },
        ip: client.ip,
        userAgent: client.userAgent,
        action: 'api.token.revoked',
        target: `api_token:${id}`,
        summary: { name: row.name, prefix: row.prefix },
      },
      now,
    );
    return { ok: true };
  });
}

export async function listApiTokens(database: Database, now: Date): Promise<ApiTokenView[]> {
  return (await database.read((r) => apiTokenRows(r))).map((row) => view(row, now));
}

/** Who is calling, once a token checks out: the permissions it holds now, and the creator it acts for. */
export interface ApiPrincipal {
  tokenId: number;
  name: string;
  prefix: string;
  scopes: ReadonlySet<Permission>;
  /** the staff member it acts for: audit entries of what it does name them, and the token */
  actor: { id: number; label: string };
}

export type ApiAuthRefusal =
  /** no usable credentials: 401 */
  | { ok: false; status: 401; reason: 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked' | 'creator-inactive'; message: string }
  /** a valid token without the permission: 403 */
  | { ok: false; status: 403; reason: 'scope'; message: string }
  /** over its rate limit: 429 */
  | { ok: false; status: 429; reason: 'rate-limited'; message: string; retryAfterSeconds: number };

export type ApiAuthResult = { ok: true; principal: ApiPrincipal; remaining: number; resetSeconds: number } | ApiAuthRefusal;

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const TOKEN_SHAPE = /^cnd_[a-z2-7]{48}$/;

export interface ApiUse {
  method: string;
  /** the path only: a query string may carry personal data */
  path: string;
  client: TokenClient;
}

const unauthorised = (reason: Extract<ApiAuthRefusal, { status: 401 }>['reason'], message: string): ApiAuthRefusal => ({
  ok: false,
  status: 401,
  reason,
  message,
});

/**
 * Checks the Authorization header's token for `permission`, and on success counts and audits the use
 * (one transaction: the rate limit, lastUsedAt, and an `api.token.used` entry). A refused token is not
 * audited per request (an unknown token names no one; the sign-in style limits of the caller's source
 * are the endpoint's business), but one without the scope is, as `api.token.refused`.
 */
export async function authenticateApiToken(
  database: Database,
  authorization: string | null,
  permission: Permission,
  use: ApiUse,
  now: Date,
): Promise<ApiAuthResult> {
  if (!authorization) return unauthorised('missing', 'Send the API token as "Authorization: Bearer cnd_…".');
  const match = BEARER.exec(authorization);
  const token = match?.[1];
  if (!token || !TOKEN_SHAPE.test(token)) {
    return unauthorised('malformed', 'The Authorization header must be "Bearer " followed by a Candor API token (cnd_…).');
  }
  return database.transaction(async (tx): Promise<ApiAuthResult> => {
    const row = await apiTokenByHash(tx, hashApiToken(token));
    if (!row) return unauthorised('unknown', 'This API token is not known here.');
    if (row.revokedAt) return unauthorised('revoked', `The API token ${row.prefix}… was revoked.`);
    if (row.expiresAt.getTime() <= now.getTime())
      return unauthorised('expired', `The API token ${row.prefix}… expired on ${row.expiresAt.toISOString()}.`);
    const creator = await staffById(tx, row.createdBy);
    if (creator?.status !== 'active') {
      return unauthorised('creator-inactive', `The API token ${row.prefix}… acts for an account that is no longer active.`);
    }
    const held = new Set(row.scopes.filter((s): s is Permission => rolePermissions[creator.role].has(s as Permission)));
    const actor = { id: creator.id, label: `${creator.email} via API token "${row.name}" (${row.prefix}…)` };
    const limit = await hitLimit(tx, apiTokenLimit, String(row.id), now);
    if (limit.limited) {
      return {
        ok: false,
        status: 429,
        reason: 'rate-limited',
        message: 'Too many requests with this token.',
        retryAfterSeconds: Math.ceil(limit.retryAfterMs / 1000),
      };
    }
    await markApiTokenUsed(tx, row.id, now);
    const allowed = held.has(permission);
    await writeAudit(
      tx,
      {
        actor: { type: 'staff', id: actor.id, label: actor.label },
        ip: use.client.ip,
        userAgent: use.client.userAgent,
        action: allowed ? 'api.token.used' : 'api.token.refused',
        target: `api_token:${row.id}`,
        summary: { method: use.method, path: use.path.slice(0, 200), permission },
      },
      now,
    );
    if (!allowed) {
      return {
        ok: false,
        status: 403,
        reason: 'scope',
        message: `The API token ${row.prefix}… does not hold the permission "${permission}".`,
      };
    }
    return {
      ok: true,
      principal: { tokenId: row.id, name: row.name, prefix: row.prefix, scopes: held, actor },
      remaining: Math.max(0, apiTokenLimit.max - limit.count),
      resetSeconds: Math.ceil(limit.retryAfterMs / 1000),
    };
  });
}
