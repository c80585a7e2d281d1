import { sql } from 'drizzle-orm';
import { index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { recipients } from './notify.ts';
import { timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/organisations.ts on PostgreSQL: customer organisations as staff keep them, their domains and members. */
export const customerOrganisations = pgTable(
  'customer_organisations',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    name: text('name').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    createdBy: integer('created_by'),
    updatedAt: timestamptz('updated_at').notNull(),
    updatedBy: integer('updated_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [uniqueIndex('customer_organisations_name').on(sql`lower(${t.name})`)],
);

export const organisationDomains = pgTable(
  'organisation_domains',
  {
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => customerOrganisations.id, { onDelete: 'cascade' }),
    /** lower-case, ASCII (punycode) */
    domain: text('domain').notNull(),
    domainHash: text('domain_hash').notNull(),
    addedAt: timestamptz('added_at').notNull(),
    addedBy: integer('added_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.organisationId, t.domain] }), uniqueIndex('organisation_domains_hash').on(t.domainHash)],
);

export const organisationMembers = pgTable(
  'organisation_members',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    organisationId: integer('organisation_id')
      .notNull()
      .references(() => customerOrganisations.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => recipients.id, { onDelete: 'cascade' }),
    basis: text('basis', { enum: ['assigned', 'claim'] }).notNull(),
    createdAt: timestamptz('created_at').notNull(),
    createdBy: integer('created_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [
    uniqueIndex('organisation_members_recipient').on(t.organisationId, t.recipientId),
    index('organisation_members_by_recipient').on(t.recipientId),
  ],
);
