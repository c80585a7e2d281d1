/** Customer organisations made straight in a test server's database, for tests about what targets them rather than about keeping them. */
import type { Db } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { assignMembers, createOrganisation } from '../../src/core/organisations/organisations.ts';
import { recipientById } from '../../src/stores/subscribers.ts';
import { TEST_KEYS } from './notify.ts';

const actor = { id: 0, label: 'tests' };

/** An organisation with these domains and these recipients assigned by staff (their subscribers' ids are looked up); returns its id. */
export async function keepOrganisation(db: Db, name: string, options: { domains?: string[]; recipients?: number[] } = {}): Promise<number> {
  const ctx = { database: databaseOf(db), keys: TEST_KEYS, now: new Date(), actor, ip: null, userAgent: 'tests' };
  const made = await createOrganisation(ctx, name, (options.domains ?? []).join('\n'));
  if (!made.ok) throw new Error(made.message);
  for (const recipientId of options.recipients ?? []) {
    const { subscriber_id: subscriberId } = db.$client.prepare('SELECT subscriber_id FROM recipients WHERE id = ?').get(recipientId) as {
      subscriber_id: number;
    };
    const assigned = await assignMembers(ctx, { subscriberId, organisationId: made.id, recipientId, basis: 'assigned' });
    if (!assigned.ok) throw new Error(assigned.message);
  }
  return made.id;
}

/** As `keepOrganisation`, on either engine's `Database` (its audit keys bound: the entries are sealed). */
export async function keepOrganisationOn(
  database: Database,
  name: string,
  options: { domains?: string[]; recipients?: number[] } = {},
): Promise<number> {
  const ctx = { database, keys: TEST_KEYS, now: new Date(), actor, ip: null, userAgent: 'tests' };
  const made = await createOrganisation(ctx, name, (options.domains ?? []).join('\n'));
  if (!made.ok) throw new Error(made.message);
  for (const recipientId of options.recipients ?? []) {
    const recipient = await database.read((r) => recipientById(r, recipientId));
    if (!recipient?.subscriberId) throw new Error(`no recipient ${recipientId} of a subscriber`);
    const assigned = await assignMembers(ctx, {
      subscriberId: recipient.subscriberId,
      organisationId: made.id,
      recipientId,
      basis: 'assigned',
    });
    if (!assigned.ok) throw new Error(assigned.message);
  }
  return made.id;
}
