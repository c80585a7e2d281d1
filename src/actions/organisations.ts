/**
 * Customer organisations, kept by staff: who receives a targeted breach
 * notice. Each action checks the permission table and calls one core flow,
 * which records the audit entry with the change.
 */
import { defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import { rowId } from '../core/http/row-id.ts';
import {
  addDomain,
  assignMembers,
  createOrganisation,
  deleteOrganisation,
  removeDomain,
  removeMember,
  renameOrganisation,
} from '../core/organisations/organisations.ts';
import { organisationContext } from '../lib/organisation-context.ts';
import { refuse, requireStaff, rowIdField } from './guard.ts';

const id = rowIdField('Choose an organisation.');
const subscriberId = rowIdField();

/** "all" of the subscriber's addresses, or one of them by id. */
function recipientChoice(value: string): number | 'all' {
  if (value === 'all') return 'all';
  return rowId(value) ?? refuse('Choose which of their addresses.');
}

export const organisationActions = {
  createOrganisation: defineAction({
    accept: 'form',
    input: z.object({ name: z.string().max(1000), domains: z.string().max(20_000).nullish() }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'createOrganisation');
      const result = await createOrganisation(organisationContext(ctx), input.name, input.domains ?? '');
      if (!result.ok) refuse(result.message);
      return { id: result.id };
    },
  }),

  renameOrganisation: defineAction({
    accept: 'form',
    input: z.object({ organisationId: id, name: z.string().max(1000) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'renameOrganisation');
      const result = await renameOrganisation(organisationContext(ctx), input.organisationId, input.name);
      if (!result.ok) refuse(result.message);
      return { renamed: input.organisationId };
    },
  }),

  addOrganisationDomain: defineAction({
    accept: 'form',
    input: z.object({ organisationId: id, domain: z.string().max(1000) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'addOrganisationDomain');
      const result = await addDomain(organisationContext(ctx), input.organisationId, input.domain);
      if (!result.ok) refuse(result.message);
      return { domain: result.domain };
    },
  }),

  removeOrganisationDomain: defineAction({
    accept: 'form',
    input: z.object({ organisationId: id, domain: z.string().max(1000) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'removeOrganisationDomain');
      const result = await removeDomain(organisationContext(ctx), input.organisationId, input.domain);
      if (!result.ok) refuse(result.message);
      return { removed: input.domain.trim().toLowerCase() };
    },
  }),

  deleteOrganisation: defineAction({
    accept: 'form',
    input: z.object({ organisationId: id }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'deleteOrganisation');
      const result = await deleteOrganisation(organisationContext(ctx), input.organisationId);
      if (!result.ok) refuse(result.message);
      return { deleted: result.name };
    },
  }),

  assignOrganisationMember: defineAction({
    accept: 'form',
    input: z.object({ subscriberId, organisationId: id, recipientId: z.string().max(20) }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'assignOrganisationMember');
      const result = await assignMembers(organisationContext(ctx), {
        subscriberId: input.subscriberId,
        organisationId: input.organisationId,
        recipientId: recipientChoice(input.recipientId),
        basis: 'assigned',
      });
      if (!result.ok) refuse(result.message);
      return { added: result.added, organisation: result.organisation };
    },
  }),

  approveOrganisationClaim: defineAction({
    accept: 'form',
    input: z.object({ subscriberId, organisationId: id }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'approveOrganisationClaim');
      const result = await assignMembers(organisationContext(ctx), { ...input, recipientId: 'all', basis: 'claim' });
      if (!result.ok) refuse(result.message);
      return { added: result.added, organisation: result.organisation };
    },
  }),

  removeOrganisationMember: defineAction({
    accept: 'form',
    input: z.object({ membershipId: rowIdField() }),
    handler: async (input, ctx) => {
      requireStaff(ctx, 'removeOrganisationMember');
      const result = await removeMember(organisationContext(ctx), input.membershipId);
      if (!result.ok) refuse(result.message);
      return { organisation: result.organisation };
    },
  }),
};
