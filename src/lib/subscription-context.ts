import type { SubscriptionContext } from '../core/subscriptions/context.ts';
import { clientIp } from './client-ip.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
}

export function subscriptionContext(ctx: RequestLike): SubscriptionContext {
  const { candor } = ctx.locals;
  return {
    db: candor.db,
    keys: candor.keys,
    now: candor.now(),
    publicUrl: candor.config.publicUrl,
    organisation: candor.content.site.organisation.name,
    componentIds: candor.content.components.map((c) => c.id),
    webhookPolicy: { allowHosts: candor.config.providers.webhookAllowHosts },
    ip: clientIp(ctx),
    log: (line) => console.warn(`[candor] ${line}`),
  };
}
