import type { SubscriptionContext } from '../core/subscriptions/context.ts';

interface RequestLike {
  locals: App.Locals;
  clientAddress: string;
}

export function subscriptionContext(ctx: RequestLike): SubscriptionContext {
  const { candor } = ctx.locals;
  let ip: string | null = null;
  try {
    ip = ctx.clientAddress || null;
  } catch {
    ip = null;
  }
  return {
    db: candor.db,
    keys: candor.keys,
    now: candor.now(),
    publicUrl: candor.config.publicUrl,
    organisation: candor.content.site.organisation.name,
    componentIds: candor.content.components.map((c) => c.id),
    webhookPolicy: { allowHosts: candor.config.providers.webhookAllowHosts },
    ip,
  };
}
