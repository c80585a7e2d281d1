/**
 * Staff single sign-on settings (src/core/config/sso.ts): read from the environment with the rest
 * of the configuration, each problem named by its variable on one line, and the role mapping
 * (src/core/auth/sso.ts mappedRole) the highest role any group or the email domain gives.
 */
import { describe, expect, it } from 'vitest';
import { domainVouchedFor, mappedRole } from '../../src/core/auth/sso.ts';
import { readConfig } from '../../src/core/config/env.ts';
import { configErrorOf } from '../helpers/config.ts';

const BASE = {
  CANDOR_PUBLIC_URL: 'https://trust.lumenwork.example',
  CANDOR_SSO_ISSUER: 'https://login.lumenwork.example',
  CANDOR_SSO_CLIENT_ID: 'candor',
  CANDOR_SSO_CLIENT_SECRET: 'secret-value',
  CANDOR_SSO_ROLE_GROUPS: 'sec-team=owner, it=admin,oncall=responder',
};

describe('single sign-on configuration', () => {
  it('is off without an issuer', () => {
    expect(readConfig({}, '/srv/candor').sso).toBeNull();
  });

  it('reads the provider, derives the redirect URI from CANDOR_PUBLIC_URL and parses the mapping', () => {
    const sso = readConfig(
      { ...BASE, CANDOR_SSO_ROLE_DOMAINS: 'Lumenwork.example=viewer', CANDOR_SSO_AUTO_CREATE_DOMAINS: 'lumenwork.example' },
      '/srv/candor',
    ).sso;
    expect(sso?.redirectUri.href).toBe('https://trust.lumenwork.example/console/sso/callback');
    expect(sso?.providerName).toBe('login.lumenwork.example');
    expect(sso?.groupsClaim).toBe('groups');
    expect([...(sso?.roleByGroup ?? [])]).toEqual([
      ['sec-team', 'owner'],
      ['it', 'admin'],
      ['oncall', 'responder'],
    ]);
    expect(sso?.roleByDomain.get('lumenwork.example')).toBe('viewer');
    expect(sso?.autoCreateDomains.has('lumenwork.example')).toBe(true);
    expect(sso?.insecureLoopback).toBe(false);
  });

  it.each([
    [{ CANDOR_SSO_CLIENT_ID: 'x' }, 'CANDOR_SSO_ISSUER', /required when CANDOR_SSO_CLIENT_ID/],
    [{ ...BASE, CANDOR_SSO_ISSUER: 'not a url' }, 'CANDOR_SSO_ISSUER', /not a URL/],
    [{ ...BASE, CANDOR_SSO_ISSUER: 'http://login.lumenwork.example' }, 'CANDOR_SSO_ISSUER', /https/],
    [{ ...BASE, CANDOR_SSO_CLIENT_ID: '' }, 'CANDOR_SSO_CLIENT_ID', /required/],
    [{ ...BASE, CANDOR_SSO_CLIENT_SECRET: ' ' }, 'CANDOR_SSO_CLIENT_SECRET', /required/],
    [{ ...BASE, CANDOR_SSO_ROLE_GROUPS: '' }, 'CANDOR_SSO_ROLE_GROUPS', /or CANDOR_SSO_ROLE_DOMAINS is required/],
    [{ ...BASE, CANDOR_SSO_ROLE_GROUPS: 'it=superuser' }, 'CANDOR_SSO_ROLE_GROUPS', /unknown role "superuser"/],
    [{ ...BASE, CANDOR_SSO_ROLE_GROUPS: 'it' }, 'CANDOR_SSO_ROLE_GROUPS', /group=role/],
    [{ ...BASE, CANDOR_SSO_ROLE_DOMAINS: 'not a domain=viewer' }, 'CANDOR_SSO_ROLE_DOMAINS', /invalid domain/],
    [{ ...BASE, CANDOR_SSO_AUTO_CREATE_DOMAINS: 'lumenwork' }, 'CANDOR_SSO_AUTO_CREATE_DOMAINS', /invalid domain/],
    [{ ...BASE, CANDOR_SSO_GROUPS_CLAIM: 'a b' }, 'CANDOR_SSO_GROUPS_CLAIM', /claim name/],
  ])('refuses %j naming %s', (env, variable, message) => {
    const err = configErrorOf(env);
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  it('allows plain http only for an issuer on loopback (local tests)', () => {
    expect(readConfig({ ...BASE, CANDOR_SSO_ISSUER: 'http://127.0.0.1:9999' }, '/srv/candor').sso?.insecureLoopback).toBe(true);
  });

  it('maps to the highest role any group or the domain gives, or to nothing', () => {
    const sso = readConfig({ ...BASE, CANDOR_SSO_ROLE_DOMAINS: 'lumenwork.example=viewer' }, '/srv/candor').sso;
    if (!sso) throw new Error('no SSO configuration');
    expect(mappedRole(sso, 'a@lumenwork.example', ['oncall', 'it'])).toEqual({ role: 'admin', by: 'group' });
    expect(mappedRole(sso, 'a@lumenwork.example', ['unknown'])).toEqual({ role: 'viewer', by: 'domain' });
    expect(mappedRole(sso, 'a@elsewhere.example', ['oncall'])).toEqual({ role: 'responder', by: 'group' });
    expect(mappedRole(sso, 'a@elsewhere.example', [])).toBeNull();
    // group names are matched exactly
    expect(mappedRole(sso, 'a@elsewhere.example', ['IT'])).toBeNull();
  });
});

describe('whether the provider vouches for the email domain', () => {
  it('trusts the domain of a directory provider, but of Google only with a matching hosted-domain claim', () => {
    expect(domainVouchedFor('https://login.microsoftonline.com/tenant/v2.0', 'a@lumenwork.example', null)).toBe(true);
    expect(domainVouchedFor('https://lumenwork.okta.com', 'a@lumenwork.example', null)).toBe(true);
    // a personal Google account made with a work address: verified, but not the organisation's
    expect(domainVouchedFor('https://accounts.google.com', 'a@lumenwork.example', null)).toBe(false);
    expect(domainVouchedFor('https://accounts.google.com', 'a@lumenwork.example', 'other.example')).toBe(false);
    expect(domainVouchedFor('https://accounts.google.com', 'a@lumenwork.example', 'LumenWork.example')).toBe(true);
    expect(domainVouchedFor('https://accounts.google.com/', 'a@lumenwork.example', null)).toBe(false);
  });

  it('gives no domain role when the domain is not vouched for, but still the groups', () => {
    const sso = readConfig(
      { ...BASE, CANDOR_SSO_ISSUER: 'https://accounts.google.com', CANDOR_SSO_ROLE_DOMAINS: 'lumenwork.example=viewer' },
      '/srv/candor',
    ).sso;
    if (!sso) throw new Error('no SSO configuration');
    expect(mappedRole(sso, 'a@lumenwork.example', [], false)).toBeNull();
    expect(mappedRole(sso, 'a@lumenwork.example', ['oncall'], false)).toEqual({ role: 'responder', by: 'group' });
    expect(mappedRole(sso, 'a@lumenwork.example', [], true)).toEqual({ role: 'viewer', by: 'domain' });
  });
});
