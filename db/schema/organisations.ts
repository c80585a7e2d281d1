import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { recipients } from './notify.ts';
import { trustCenterId } from './trust-centers.ts';

/**
 * A customer organisation as staff keep it: the only thing a targeted
 * notice can name. Who belongs is what Candor verified (its email domains,
 * staff assignments), never what a subscriber typed as their company.
 */
export const customerOrganisations = sqliteTable(
  'customer_organisations',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    name: text('name').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    createdBy: integer('created_by'),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    updatedBy: integer('updated_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('customer_organisations_name').on(sql`lower(${t.name})`)],
);

/**
 * An email domain of the organisation: a confirmed address in exactly this
 * domain (not a subdomain) belongs to it. `domainHash` is the same blind
 * index as `recipients.domain_hash`, so SQL can match without opening an
 * address. One domain belongs to one organisation.
 */
export const organisationDomains = sqliteTable(
  'organisation_domains',
  {
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => customerOrganisations.id, { onDelete: 'cascade' }),
    /** lower-case, ASCII (punycode) */
    domain: text('domain').notNull(),
    domainHash: text('domain_hash').notNull(),
    addedAt: integer('added_at', { mode: 'timestamp_ms' }).notNull(),
    addedBy: integer('added_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.organisationId, t.domain] }), uniqueIndex('organisation_domains_hash').on(t.domainHash)],
);

/**
 * A recipient staff placed in an organisation: assigned, or a subscriber's
 * claim that staff approved. Per address, so an address added later is
 * never a member by inheritance; goes with the address.
 */
export const organisationMembers = sqliteTable(
  'organisation_members',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => customerOrganisations.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    basis: text('basis', { enum: ['assigned', 'claim'] }).notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    createdBy: integer('created_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    uniqueIndex('organisation_members_recipient').on(t.organisationId, t.recipientId),
    index('organisation_members_by_recipient').on(t.recipientId),
  ],
);
