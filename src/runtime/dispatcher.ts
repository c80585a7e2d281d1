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
    publicUrl: context.config.publicUrl,
    leaseMs: context.config.providers.leaseMs,
    log,
  });
  return { dispatcher, description: describeChannels(channels) };
}
