/** RFC 9116 security.txt, from content/site.yaml. */
import type { Site } from '../content/schema.ts';

export function buildSecurityTxt(site: Site, publicUrl: URL): string {
  const base = publicUrl.href.endsWith('/') ? publicUrl.href : `${publicUrl.href}/`;
  const lines = [
    `Contact: mailto:${site.contacts.security.email}`,
    `Expires: ${site.securityTxt.expires.toISOString().replace(/\.\d{3}Z$/, 'Z')}`,
  ];
  if (site.contacts.security.pgpKeyUrl) lines.push(`Encryption: ${site.contacts.security.pgpKeyUrl}`);
  if (site.securityTxt.acknowledgmentsUrl) lines.push(`Acknowledgments: ${site.securityTxt.acknowledgmentsUrl}`);
  lines.push(`Preferred-Languages: ${site.securityTxt.preferredLanguages.join(', ')}`);
  lines.push(`Canonical: ${new URL('.well-known/security.txt', base).href}`);
  lines.push(`Policy: ${new URL(`docs/${site.securityTxt.policy}`, base).href}`);
  if (site.securityTxt.hiringUrl) lines.push(`Hiring: ${site.securityTxt.hiringUrl}`);
  return `${lines.join('\n')}\n`;
}
