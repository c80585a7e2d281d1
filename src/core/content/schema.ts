/**
 * The shape of everything under content/. Shared by Astro's content
 * collections (build time) and the server process (start time), so a
 * malformed file is refused by both with the same message.
 */
import { z } from 'zod';
import { groupIdOf } from './groups.ts';
import { countryFor, isCountryCode, regionIds } from './locations.ts';

const slug = z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lower-case words joined by hyphens');
const email = z.email('must be an email address');
const httpsUrl = z.url({ protocol: /^https$/, error: 'must be an https:// URL' });
const isoDate = z.coerce.date({ error: 'must be a date (YYYY-MM-DD)' });
const nonEmpty = z.string().trim().min(1, 'must not be empty');
const countryCode = z.string().superRefine((value, ctx) => {
  if (isCountryCode(value)) return;
  const meant = countryFor(value);
  ctx.addIssue({
    code: 'custom',
    message: meant
      ? `"${value}" is not an ISO 3166-1 alpha-2 country code: write ${meant}`
      : `"${value}" is not an ISO 3166-1 alpha-2 country code (such as DE, IE, US)`,
  });
});

export const severities = ['minor', 'major', 'critical'] as const;

export const siteSchema = z.strictObject({
  organisation: z.strictObject({
    name: nonEmpty,
    legalName: nonEmpty,
    url: httpsUrl,
    tagline: nonEmpty,
    description: nonEmpty,
    address: nonEmpty,
  }),
  contacts: z.strictObject({
    security: z.strictObject({ email, pgpKeyUrl: httpsUrl.optional() }),
    privacy: z.strictObject({ name: nonEmpty, role: nonEmpty, email }),
    support: z.strictObject({ email }),
  }),
  securityTxt: z.strictObject({
    expires: isoDate,
    /** slug of the doc that holds the disclosure policy */
    policy: slug,
    preferredLanguages: z.array(z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]+)*$/, 'must be a language tag such as en')).min(1),
    acknowledgmentsUrl: httpsUrl.optional(),
    hiringUrl: httpsUrl.optional(),
  }),
  compliance: z
    .array(
      z.strictObject({
        id: slug,
        name: nonEmpty,
        status: z.enum(['certified', 'compliant', 'in-progress', 'aligned']),
        summary: nonEmpty,
        /** slug of the doc that explains it */
        doc: slug,
        since: isoDate.optional(),
      }),
    )
    .min(1),
  sections: z
    .array(
      z.strictObject({
        id: slug,
        title: nonEmpty,
        summary: nonEmpty,
        docs: z.array(slug).min(1),
      }),
    )
    .min(1),
  policies: z.strictObject({
    subprocessorNoticeDays: z.number().int().min(0).max(365),
    /** minutes between public updates of an open incident */
    updateCadenceMinutes: z.strictObject({
      minor: z.number().int().positive(),
      major: z.number().int().positive(),
      critical: z.number().int().positive(),
      breach: z.number().int().positive(),
    }),
    breachClocks: z.strictObject({
      detectHours: z.number().positive(),
      assessHours: z.number().positive(),
      notifyHours: z.number().positive(),
    }),
    staffSessions: z
      .strictObject({
        idleMinutes: z.number().int().positive().default(60),
        absoluteHours: z.number().int().positive().default(12),
      })
      .default({ idleMinutes: 60, absoluteHours: 12 }),
    auditRetentionDays: z.number().int().positive().default(365),
    /** how long the records of sending are kept; housekeeping purges older ones every 6 hours */
    retention: z
      .strictObject({
        /** each try of each delivery: time, outcome, provider answer (the delivery itself stays, as a count) */
        deliveryAttemptsDays: z.number().int().positive().default(90),
        /** what the log transport recorded instead of sending, for channels without provider keys */
        loggedMessagesDays: z.number().int().positive().default(30),
      })
      .default({ deliveryAttemptsDays: 90, loggedMessagesDays: 30 }),
    /** the daily encrypted backup and its restore check (src/core/backup/schedule.ts) */
    backups: z
      .strictObject({
        enabled: z.boolean({ error: 'must be true or false' }).default(true),
        /** UTC, 24-hour */
        time: z
          .string({ error: 'must be a UTC time as HH:MM, such as "02:30" (quoted)' })
          .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a UTC time as HH:MM (00:00 to 23:59), such as "02:30"')
          .default('02:30'),
        keep: z
          .number({ error: 'must be a whole number of backups, at least 1' })
          .int('must be a whole number of backups, at least 1')
          .min(1, 'must keep at least 1 backup')
          .max(3650, 'must be at most 3650')
          .default(14),
        /** where the files go; relative to CANDOR_DATA_DIR; default `backups` in it */
        directory: z.string().trim().min(1, "must not be empty (leave it out for the data dir's backups folder)").default('backups'),
      })
      .default({ enabled: true, time: '02:30', keep: 14, directory: 'backups' }),
    /** days before a document's expiry that staff are warned (dashboard and staff channel), src/core/documents/expiry.ts */
    documentExpiryWarningDays: z
      .number({ error: 'must be a whole number of days' })
      .int('must be a whole number of days')
      .min(1, 'must be at least 1 day')
      .max(365, 'must be at most 365 days')
      .default(30),
  }),
});

export const subprocessorCategories = [
  'infrastructure',
  'database',
  'cdn',
  'search',
  'payments',
  'ai',
  'email',
  'sms',
  'chat',
  'analytics',
  'support',
] as const;

export const subprocessorSchema = z
  .strictObject({
    id: slug,
    name: nonEmpty,
    entity: nonEmpty,
    category: z.enum(subprocessorCategories),
    purpose: nonEmpty,
    dataCategories: z.array(nonEmpty).min(1),
    /** where it processes data: ISO 3166-1 alpha-2 codes (DE, IE, US) */
    countries: z.array(countryCode).default([]),
    /** where no single country says it: eea (somewhere in the EU/EEA) or worldwide */
    regions: z.array(z.enum(regionIds, { error: `must be one of ${regionIds.join(', ')}` })).default([]),
    /** the free text of earlier versions: named, so an old file says what replaced it */
    location: z
      .never({ error: 'is replaced by countries (ISO 3166-1 alpha-2 codes such as DE, US) and regions (eea, worldwide)' })
      .optional(),
    transferMechanism: nonEmpty,
    dpaUrl: httpsUrl,
    website: httpsUrl,
    contact: email.optional(),
    since: isoDate,
  })
  .superRefine((s, ctx) => {
    if (s.countries.length === 0 && s.regions.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['countries'],
        message: 'name where it processes data: countries (ISO 3166-1 alpha-2 codes such as DE, US) or regions (eea, worldwide)',
      });
    const once = (field: string, values: readonly string[]) =>
      values.forEach((value, i) => {
        if (values.indexOf(value) !== i) ctx.addIssue({ code: 'custom', path: [field, i], message: `lists ${value} twice` });
      });
    once('countries', s.countries);
    once('regions', s.regions);
  });
export const subprocessorsSchema = z.array(subprocessorSchema).min(1);

/**
 * How alerts from monitoring reach a service (src/core/alerts): an alert whose labels include every
 * pair of `match` (or whose `component` / `candor_component` label is the service's id) sets the
 * service to `status` while it fires, and its draft incident publishes by itself when `autoPublish`.
 */
export const componentAlertsSchema = z.strictObject({
  match: z.record(z.string().min(1), z.string()).optional(),
  status: z.enum(['degraded', 'partial_outage', 'major_outage']).optional(),
  severity: z.enum(['minor', 'major', 'critical']).optional(),
  autoPublish: z.boolean().default(false),
});

export const componentSchema = z.strictObject({
  id: slug,
  name: nonEmpty,
  description: nonEmpty,
  // its id is the name as a slug (src/core/content/groups.ts), so the name needs a letter or digit
  group: nonEmpty.refine((name) => groupIdOf(name) !== '', 'must contain a letter or digit (the group id is made from it)').optional(),
  alerts: componentAlertsSchema.optional(),
});
export const componentsSchema = z
  .array(componentSchema)
  .min(1)
  .superRefine((components, ctx) => {
    // A group's id must name one group: two spellings of one name would be two groups with one id.
    const namesById = new Map<string, string>();
    components.forEach((component, i) => {
      if (!component.group) return;
      const id = groupIdOf(component.group);
      const named = namesById.get(id);
      if (named !== undefined && named !== component.group)
        ctx.addIssue({
          code: 'custom',
          path: [i, 'group'],
          message: `"${component.group}" and "${named}" would both have the group id "${id}": spell the group the same way each time`,
        });
      namesById.set(id, named ?? component.group);
    });
  });

export const docFrontmatterSchema = z.strictObject({
  title: nonEmpty,
  summary: nonEmpty,
  updated: isoDate,
  related: z.array(slug).default([]),
});

/**
 * A document in content/documents/<slug>.md: front matter only, naming the
 * PDF beside it. `public` ones are downloadable; `nda` ones are listed but
 * their file is never published (src/pages/documents/).
 */
export const documentFrameworks = [
  'soc-2',
  'soc-3',
  'iso-27001',
  'iso-27017',
  'iso-27018',
  'iso-27701',
  'pen-test',
  'dpa',
  'hipaa',
  'pci-dss',
  'csa-star',
  'gdpr',
  'other',
] as const;
export const documentCategories = ['audit-report', 'certificate', 'assessment', 'agreement', 'policy', 'questionnaire', 'other'] as const;
export const documentAccessLevels = ['public', 'nda'] as const;
const oneOf = (values: readonly string[]) => ({ error: `must be one of ${values.join(', ')}` });

export const documentFrontmatterSchema = z.strictObject({
  title: nonEmpty,
  description: nonEmpty,
  category: z.enum(documentCategories, oneOf(documentCategories)),
  framework: z.enum(documentFrameworks, oneOf(documentFrameworks)),
  /** the PDF's file name in content/documents */
  file: z
    .string({ error: 'must name the PDF beside this file, such as soc-2-type-ii.pdf' })
    .regex(/^[a-z0-9]+(?:[-.][a-z0-9]+)*\.pdf$/, 'must be the file name of a PDF beside this file: lower-case, ending .pdf'),
  /** the period the document covers (an audit's period, a certificate's validity, an agreement's version in force) */
  period: z
    .strictObject({ from: isoDate, to: isoDate }, { error: 'must give from and to dates (YYYY-MM-DD)' })
    .refine((p) => p.to.getTime() >= p.from.getTime(), { path: ['to'], message: 'must not be before from' }),
  /** from this day (UTC) on the trust center marks it expired */
  expires: isoDate.optional(),
  access: z.enum(documentAccessLevels, oneOf(documentAccessLevels)),
});

/**
 * A non-disclosure agreement in content/ndas/<name>.md: its text is the body (markdown); the one in force
 * is the latest whose `effective` day (UTC) is on or before today (src/core/access/nda.ts).
 */
export const ndaFrontmatterSchema = z.strictObject({
  title: nonEmpty,
  /** from this day (UTC) on it is the agreement customers accept, until a later one takes effect */
  effective: isoDate,
});

/**
 * An update template in content/templates/<id>.md: markdown with
 * placeholders the composer and the scheduler fill in.
 */
export const templatePlaceholders = ['organisation', 'title', 'services', 'window', 'starts', 'ends', 'privacyContact'] as const;
export const templateKinds = ['outage', 'security', 'breach', 'maintenance'] as const;
export const templateFrontmatterSchema = z.strictObject({
  title: nonEmpty,
  /** the incident kinds the composer offers it for; all when absent */
  kinds: z.array(z.enum(templateKinds)).min(1).optional(),
  /** the status the composer preselects with it */
  status: z.enum(['investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress']).optional(),
});
/** Templates the scheduler sends on its own, so they must exist. */
export const requiredTemplates = ['maintenance-reminder', 'maintenance-started', 'maintenance-completed'] as const;

export type Site = z.infer<typeof siteSchema>;
export type TemplateFrontmatter = z.infer<typeof templateFrontmatterSchema>;
export type Subprocessor = z.infer<typeof subprocessorSchema>;
export type Component = z.infer<typeof componentSchema>;
export type DocFrontmatter = z.infer<typeof docFrontmatterSchema>;
export type DocumentFrontmatter = z.infer<typeof documentFrontmatterSchema>;
export type NdaFrontmatter = z.infer<typeof ndaFrontmatterSchema>;
export type DocumentFramework = (typeof documentFrameworks)[number];
export type DocumentCategory = (typeof documentCategories)[number];
export type Severity = (typeof severities)[number];

export const subprocessorCategoryLabels: Record<(typeof subprocessorCategories)[number], string> = {
  infrastructure: 'Cloud infrastructure',
  database: 'Database hosting',
  cdn: 'CDN and TLS',
  search: 'Search',
  payments: 'Payments',
  ai: 'AI models',
  email: 'Email delivery',
  sms: 'SMS delivery',
  chat: 'Chat and support',
  analytics: 'Analytics',
  support: 'Customer support',
};

export const documentFrameworkLabels: Record<DocumentFramework, string> = {
  'soc-2': 'SOC 2',
  'soc-3': 'SOC 3',
  'iso-27001': 'ISO/IEC 27001',
  'iso-27017': 'ISO/IEC 27017',
  'iso-27018': 'ISO/IEC 27018',
  'iso-27701': 'ISO/IEC 27701',
  'pen-test': 'Penetration test',
  dpa: 'Data Processing Agreement',
  hipaa: 'HIPAA',
  'pci-dss': 'PCI DSS',
  'csa-star': 'CSA STAR',
  gdpr: 'GDPR',
  other: 'Other',
};

export const documentCategoryLabels: Record<DocumentCategory, string> = {
  'audit-report': 'Audit report',
  certificate: 'Certificate',
  assessment: 'Assessment',
  agreement: 'Agreement',
  policy: 'Policy',
  questionnaire: 'Questionnaire',
  other: 'Other',
};
