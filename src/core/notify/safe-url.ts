/**
 * Outgoing requests to addresses customers give us (webhooks) must not
 * reach inside our network: https only, and every address the name
 * resolves to must be public. The check runs in the socket's own DNS
 * lookup, so a name that resolves differently a moment later (DNS
 * rebinding) is checked again where it counts.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  // IPv4-compatible addresses (deprecated, ::a.b.c.d): ::127.0.0.1 is no public address, whatever a stack makes of it
  ['::', 96],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  // 6to4 embeds an IPv4 address (2002:7f00:1:: is 127.0.0.1's); no webhook receiver needs it
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  // site-local (deprecated), still routed inside some networks
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6) {
    // an IPv4 address written as IPv6 is judged as the IPv4 address it is
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return !blocked.check(mapped[1], 'ipv4');
    return !blocked.check(address, 'ipv6');
  }
  return !blocked.check(address, 'ipv4');
}

export interface UrlPolicy {
  /** hosts (host or host:port) exempt from the rules, for tests and private deployments */
  allowHosts: readonly string[];
}

export type UrlVerdict = { ok: true; url: URL } | { ok: false; reason: string };

/** The rules that need no DNS: scheme, credentials, literal addresses. */
export function checkUrlShape(raw: string, policy: UrlPolicy): UrlVerdict {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (policy.allowHosts.includes(url.host) || policy.allowHosts.includes(url.hostname)) {
    return url.protocol === 'https:' || url.protocol === 'http:' ? { ok: true, url } : { ok: false, reason: 'must be http(s)' };
  }
  if (url.protocol !== 'https:') return { ok: false, reason: 'must use https://' };
  if (url.username || url.password) return { ok: false, reason: 'must not contain credentials' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !isPublicAddress(host)) return { ok: false, reason: 'points to a private, loopback or link-local address' };
  if (/^(localhost|.*\.localhost|.*\.local|.*\.internal)$/i.test(host)) return { ok: false, reason: 'points to a local name' };
  return { ok: true, url };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for http.request that refuses private answers (unless the host is allowed). */
export function guardedLookup(policy: UrlPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      const allowed = policy.allowHosts.includes(hostname);
      const bad = list.find((a) => !isPublicAddress(a.address));
      if (!allowed && bad) {
        const refusal: NodeJS.ErrnoException = new Error(`${hostname} resolves to a private address`);
        refusal.code = 'ECANDORPRIVATE';
        return callback(refusal, []);
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
