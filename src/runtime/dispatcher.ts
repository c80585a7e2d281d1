/**
 * The server's (or `candor worker`'s) dispatcher, built from the configuration. Its leases name the
 * host and process that hold them (`lease_owner`), so an operator, or the crash drill, can tell whose
 * claims are in flight on a database several nodes share.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { buildChannels, describeChannels } from '../core/notify/channels/registry.ts';
import { Dispatcher } from '../core/notify/dispatcher.ts';
import type { AppContext } from './context.ts';

/** The process's dispatcher over the configured channels, and a line saying which are live. */
export async function createDispatcher(
  context: AppContext,
  log: (line: string) => void,
): Promise<{ dispatcher: Dispatcher; description: string }> {
  const channels = await buildChannels(context.config.providers, context.database, context.config.publicUrl);
  const dispatcher = new Dispatcher({
    database: context.database,
    channels,
    keys: context.keys,
    owner: dispatcherOwner(),
    publicUrl: context.config.publicUrl,
    leaseMs: context.config.providers.leaseMs,
    log,
  });
  return { dispatcher, description: describeChannels(channels) };
}

/** `<host>/pid <pid>/<uuid>`: unique per dispatcher, and says which node and process holds a lease. */
export function dispatcherOwner(): string {
  return `${hostname()}/pid ${process.pid}/${randomUUID()}`;
}
