/**
 * A loopback fake of an OpenID Connect provider, for the real `openid-client` that Candor's staff
 * single sign-on uses (src/core/auth/sso.ts):
 *
 * - `GET /.well-known/openid-configuration`: the discovery document (issuer = this fake's origin);
 * - `GET /jwks`: the public half of the RS256 key the ID tokens are signed with;
 * - `GET /authorize`: the "signed-in user" is whoever the test set with `signIn()`; checks the client
 *   id, the registered redirect URI, `response_type=code` and an S256 PKCE challenge, then redirects
 *   back with a one-time code and the state it was given;
 * - `POST /token`: client_secret_basic or client_secret_post; the code (once), the redirect URI and the
 *   PKCE verifier must match; answers an access token and an ID token signed with `jose`, carrying
 *   iss, aud, sub, email, email_verified, groups, nonce, iat and exp.
 *
 * `tamperNextIdToken()` bends the next ID token the way a broken or hostile provider would: another
 * audience, an expiry in the past, another nonce, a signature by a key not in the JWKS. Every ID
 * token issued is kept (`issuedIdTokens`) so a test can check none of them was stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface FakeUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  groups?: string[];
}

export interface IdTokenTampering {
  audience?: string;
  /** seconds from now; negative = already expired */
  expiresIn?: number;
  nonce?: string;
  /** signed by a key the JWKS does not publish */
  foreignKey?: boolean;
}

interface PendingCode {
  user: FakeUser;
  nonce: string | undefined;
  challenge: string;
  redirectUri: string;
  clientId: string;
}

export interface FakeOidcProvider {
  /** the issuer URL (this fake's origin, no trailing slash) */
  issuer: string;
  /** who the provider says is signed in at the next /authorize */
  signIn(user: FakeUser): void;
  tamperNextIdToken(tampering: IdTokenTampering): void;
  issuedIdTokens: string[];
  /** requests seen, as "METHOD /path" */
  requests: string[];
  stop(): Promise<void>;
}

const KID = 'fake-oidc-key-1';

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

export async function startFakeOidc(options: { clientId: string; clientSecret: string; redirectUri: string }): Promise<FakeOidcProvider> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const foreign = await generateKeyPair('RS256');
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  const codes = new Map<string, PendingCode>();
  let user: FakeUser | null = null;
  let tampering: IdTokenTampering | null = null;
  const issuedIdTokens: string[] = [];
  const requests: string[] = [];
  let issuer = '';

  async function idTokenFor(pending: PendingCode): Promise<string> {
    const bend = tampering ?? {};
    tampering = null;
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { ...pending.user };
    delete claims.sub;
    const nonce = bend.nonce ?? pending.nonce;
    if (nonce !== undefined) claims.nonce = nonce;
    const key: CryptoKey = bend.foreignKey ? foreign.privateKey : privateKey;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(bend.audience ?? pending.clientId)
      .setSubject(pending.user.sub)
      .setIssuedAt(now - 5)
      .setExpirationTime(now + (bend.expiresIn ?? 300))
      .sign(key);
    issuedIdTokens.push(token);
    return token;
  }

  function clientOf(req: IncomingMessage, form: URLSearchParams): { id: string; secret: string } | null {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic?.[1]) {
      const [id, secret] = Buffer.from(basic[1], 'base64').toString('utf8').split(':').map(decodeURIComponent);
      return id !== undefined && secret !== undefined ? { id, secret } : null;
    }
    const id = form.get('client_id');
    const secret = form.get('client_secret');
    return id && secret ? { id, secret } : null;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', issuer);
    requests.push(`${req.method} ${url.pathname}`);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        scopes_supported: ['openid', 'email', 'profile'],
        claims_supported: ['sub', 'email', 'email_verified', 'groups'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') return json(res, 200, { keys: [publicJwk] });
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const p = url.searchParams;
      if (p.get('client_id') !== options.clientId) return json(res, 400, { error: 'unauthorized_client' });
      if (p.get('redirect_uri') !== options.redirectUri)
        return json(res, 400, { error: 'invalid_request', error_description: 'redirect_uri' });
      if (p.get('response_type') !== 'code' || p.get('code_challenge_method') !== 'S256' || !p.get('code_challenge'))
        return json(res, 400, { error: 'invalid_request' });
      if (!p.get('scope')?.split(' ').includes('openid')) return json(res, 400, { error: 'invalid_scope' });
      const back = new URL(options.redirectUri);
      const state = p.get('state');
      if (state !== null) back.searchParams.set('state', state);
      if (!user) back.searchParams.set('error', 'login_required');
      else {
        const code = randomBytes(16).toString('base64url');
        codes.set(code, {
          user,
          nonce: p.get('nonce') ?? undefined,
          challenge: p.get('code_challenge') ?? '',
          redirectUri: p.get('redirect_uri') ?? '',
          clientId: options.clientId,
        });
        back.searchParams.set('code', code);
      }
      res.writeHead(302, { Location: back.href });
      res.end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const form = new URLSearchParams(await readBody(req));
      const client = clientOf(req, form);
      if (!client || client.id !== options.clientId || client.secret !== options.clientSecret)
        return json(res, 401, { error: 'invalid_client' });
      const code = form.get('code') ?? '';
      const pending = codes.get(code);
      codes.delete(code);
      if (form.get('grant_type') !== 'authorization_code' || !pending) return json(res, 400, { error: 'invalid_grant' });
      if (form.get('redirect_uri') !== pending.redirectUri)
        return json(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri' });
      const verifier = form.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== pending.challenge)
        return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
      return json(res, 200, {
        access_token: randomBytes(24).toString('base64url'),
        token_type: 'Bearer',
        expires_in: 300,
        scope: 'openid email profile',
        id_token: await idTokenFor(pending),
      });
    }
    json(res, 404, { error: 'not_found' });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => json(res, 500, { error: 'server_error', error_description: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    signIn(next) {
      user = next;
    },
    tamperNextIdToken(next) {
      tampering = next;
    },
    issuedIdTokens,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
