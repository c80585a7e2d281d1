/**
 * The machine-readable trust center (/api/v1/trust.json). Buyers' security
 * review tools read it; its shape is versioned: fields may be added within
 * v1, never removed or changed in meaning.
 */
import { z } from 'zod';
import { locationLabel, regionIds } from '../content/locations.ts';
import type { Site, Subprocessor } from '../content/schema.ts';

export const TRUST_DOCUMENT_VERSION = '1.0';

export const trustDocumentSchema = z.object({
  version: z.literal(TRUST_DOCUMENT_VERSION).describe('Schema version of this document'),
  generatedFrom: z.url().describe('Canonical address of this document'),
  organisation: z.object({
    name: z.string(),
    legalName: z.string(),
    url: z.url(),
    description: z.string(),
    address: z.string(),
  }),
  contacts: z.object({
    security: z.email(),
    privacy: z.object({ name: z.string(), role: z.string(), email: z.email() }),
    support: z.email(),
    securityTxt: z.url(),
  }),
  lastUpdated: z.iso.date(),
  certifications: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      status: z.enum(['certified', 'compliant', 'in-progress', 'aligned']),
      summary: z.string(),
      since: z.iso.date().nullable(),
      url: z.url(),
    }),
  ),
  policies: z.object({
    subprocessorNoticeDays: z.number().int(),
    breachNotification: z.object({ detectHours: z.number(), assessHours: z.number(), notifyHours: z.number() }),
    incidentUpdateCadenceMinutes: z.object({ minor: z.number(), major: z.number(), critical: z.number(), breach: z.number() }),
  }),
  documents: z.array(
    z.object({
      slug: z.string(),
      title: z.string(),
      summary: z.string(),
      url: z.url(),
      updated: z.iso.date(),
      section: z.string().nullable(),
    }),
  ),
  subprocessors: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      entity: z.string(),
      category: z.string(),
      purpose: z.string(),
      dataCategories: z.array(z.string()),
      location: z.string().describe('Where it processes data, in words: country and region names'),
      countries: z.array(z.string().regex(/^[A-Z]{2}$/)).describe('Where it processes data: ISO 3166-1 alpha-2 country codes'),
      regions: z.array(z.enum(regionIds)).describe('Where no country says it: eea (in the EU/EEA, no country named) or worldwide'),
      transferMechanism: z.string(),
      dpaUrl: z.url(),
      website: z.url(),
      since: z.iso.date(),
    }),
  ),
});

export type TrustDocument = z.infer<typeof trustDocumentSchema>;

export interface TrustDocumentInput {
  site: Site;
  docs: readonly { slug: string; title: string; summary: string; updated: Date }[];
  subprocessors: readonly Subprocessor[];
  publicUrl: URL;
}

const day = (d: Date) => d.toISOString().slice(0, 10);

export function buildTrustDocument({ site, docs, subprocessors, publicUrl }: TrustDocumentInput): TrustDocument {
  const at = (path: string) => new URL(path.replace(/^\//, ''), publicUrl.href.endsWith('/') ? publicUrl : `${publicUrl.href}/`).href;
  const sectionOf = new Map<string, string>();
  for (const section of site.sections) for (const slug of section.docs) if (!sectionOf.has(slug)) sectionOf.set(slug, section.title);
  const sortedDocs = [...docs].sort((a, b) => a.slug.localeCompare(b.slug));
  return {
    version: TRUST_DOCUMENT_VERSION,
    generatedFrom: at('/api/v1/trust.json'),
    organisation: {
      name: site.organisation.name,
      legalName: site.organisation.legalName,
      url: site.organisation.url,
      description: site.organisation.description,
      address: site.organisation.address,
    },
    contacts: {
      security: site.contacts.security.email,
      privacy: site.contacts.privacy,
      support: site.contacts.support.email,
      securityTxt: at('/.well-known/security.txt'),
    },
    lastUpdated: day(new Date(Math.max(...docs.map((d) => d.updated.getTime())))),
    certifications: site.compliance.map((c) => ({
      id: c.id,
      name: c.name,
      status: c.status,
      summary: c.summary,
      since: c.since ? day(c.since) : null,
      url: at(`/docs/${c.doc}`),
    })),
    policies: {
      subprocessorNoticeDays: site.policies.subprocessorNoticeDays,
      breachNotification: site.policies.breachClocks,
      incidentUpdateCadenceMinutes: site.policies.updateCadenceMinutes,
    },
    documents: sortedDocs.map((d) => ({
      slug: d.slug,
      title: d.title,
      summary: d.summary,
      url: at(`/docs/${d.slug}`),
      updated: day(d.updated),
      section: sectionOf.get(d.slug) ?? null,
    })),
    subprocessors: [...subprocessors]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(({ contact: _contact, location: _legacy, since, ...rest }) => ({ ...rest, location: locationLabel(rest), since: day(since) })),
  };
}
