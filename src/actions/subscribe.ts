/** Public sign-up and self-service; the signed token in a form is the subscriber's only credential. */
import { ActionError, defineAction } from 'astro:actions';
import { z } from 'astro/zod';
import type { Choices } from '../core/subscriptions/context.ts';
import { erase, openSubscriptionLink } from '../core/subscriptions/manage.ts';
import { startSlackOAuth } from '../core/subscriptions/slack-oauth.ts';
import {
  confirmEmail,
  confirmSms,
  subscribeChatWebhook,
  subscribeEmail,
  subscribeSms,
  subscribeWebhook,
} from '../core/subscriptions/subscribe.ts';
import { setTopics } from '../core/subscriptions/subscribers.ts';
import { topics } from '../core/subscriptions/topics.ts';
import { subscriptionContext } from '../lib/subscription-context.ts';
import { refuse, requireAccess } from './guard.ts';

// Astro reads a z.array field with FormData.getAll (repeated checkboxes); a missing text field arrives as null.
const choicesInput = {
  topics: z.array(z.enum(topics)).max(10),
  components: z.array(z.string().max(60)).max(50),
  organisation: z.string().trim().max(200, 'The company name is too long (200 characters at most).').nullish(),
};
const toChoices = (input: {
  topics: (typeof topics)[number][];
  components: string[];
  organisation?: string | null | undefined;
}): Choices => ({
  topics: [...new Set(input.topics)],
  components: [...new Set(input.components)],
  organisation: input.organisation ? input.organisation : null,
});

export const subscribeActions = {
  subscribe: defineAction({
    accept: 'form',
    input: z.object({
      channel: z.enum(['email', 'sms', 'slack-app', 'slack-webhook', 'teams', 'discord', 'webhook'], {
        error: 'Choose how you want to be told.',
      }),
      address: z.string().max(2048, 'That address is too long (2048 characters at most).').nullish(),
      ...choicesInput,
    }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'subscribe');
      const sub = subscriptionContext(ctx);
      const choices = toChoices(input);
      const address = input.address ?? '';
      switch (input.channel) {
        case 'email': {
          const r = await subscribeEmail(sub, address, choices);
          if (!r.ok) refuse(r.message);
          return { kind: 'email' as const, message: r.message };
        }
        case 'sms': {
          const r = await subscribeSms(sub, address, choices);
          if (!r.ok) refuse(r.message);
          return { kind: 'sms' as const, challengeId: r.challengeId, number: r.number };
        }
        case 'webhook': {
          const r = await subscribeWebhook(sub, address, choices);
          if (!r.ok) refuse(r.message);
          return { kind: 'webhook' as const, message: r.message };
        }
        case 'slack-webhook':
        case 'teams':
        case 'discord': {
          const channel: 'slack' | 'teams' | 'discord' = input.channel === 'slack-webhook' ? 'slack' : input.channel;
          const r = await subscribeChatWebhook(sub, channel, address, choices);
          if (!r.ok) refuse(r.message);
          return { kind: 'chat-webhook' as const, channel, manageUrl: r.manageUrl };
        }
        case 'slack-app': {
          const slack = ctx.locals.candor.config.providers.slack;
          if (!slack?.clientId || !slack.clientSecret)
            refuse('Adding the Slack app is not available here. Use an incoming-webhook URL instead.');
          if (choices.topics.length === 0) refuse('Choose at least one thing to follow.');
          return {
            kind: 'slack-app' as const,
            redirect: await startSlackOAuth(sub, choices, {
              clientId: slack.clientId,
              clientSecret: slack.clientSecret,
              apiUrl: slack.apiUrl,
            }),
          };
        }
      }
    },
  }),

  confirmSmsCode: defineAction({
    accept: 'form',
    input: z.object({ challengeId: z.string().max(40), code: z.string().max(20) }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'confirmSmsCode');
      const r = await confirmSms(subscriptionContext(ctx), input.challengeId, input.code);
      if (!r.ok) throw new ActionError({ code: 'BAD_REQUEST', message: r.message });
      return { manageUrl: r.manageUrl };
    },
  }),

  confirmEmail: defineAction({
    accept: 'form',
    input: z.object({ token: z.string().max(100) }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'confirmEmail');
      const r = await confirmEmail(subscriptionContext(ctx), input.token);
      if (!r.ok) refuse(r.message);
      return { manageUrl: r.manageUrl };
    },
  }),

  updateTopics: defineAction({
    accept: 'form',
    input: z.object({ token: z.string().max(100), ...choicesInput }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'updateTopics');
      const sub = subscriptionContext(ctx);
      const link = await openSubscriptionLink(sub, 'manage', input.token);
      if (!link.ok) refuse(link.message ?? 'This link is not valid any more.', link.status === 429 ? 'TOO_MANY_REQUESTS' : 'BAD_REQUEST');
      const view = link.view;
      const choices = toChoices(input);
      if (choices.topics.length === 0) refuse('Choose at least one thing to follow, or unsubscribe instead.');
      const unknown = choices.components.find((c) => !sub.componentIds.includes(c));
      if (unknown) refuse(`There is no service called "${unknown.slice(0, 60)}".`);
      await setTopics(sub.database, view.subscriberId, choices);
      return { saved: true };
    },
  }),

  eraseSubscription: defineAction({
    accept: 'form',
    input: z.object({
      token: z.string().max(100),
      confirm: z.literal('yes', { error: 'Tick the box to confirm that everything should be deleted.' }),
    }),
    handler: async (input, ctx) => {
      requireAccess(ctx, 'eraseSubscription');
      const sub = subscriptionContext(ctx);
      const link = await openSubscriptionLink(sub, 'manage', input.token);
      if (!link.ok) refuse(link.message ?? 'This link is not valid any more.', link.status === 429 ? 'TOO_MANY_REQUESTS' : 'BAD_REQUEST');
      await erase(sub, link.view);
      return { erased: true };
    },
  }),
};
