/**
 * Runs for every on-demand page and endpoint. `npm start` hands each request
 * its context from src/server.ts; under `astro dev` the context is built here
 * once, the same way.
 */
import { defineMiddleware } from 'astro:middleware';
import { readConfig } from './core/config/env.ts';
import { mergeCsp, securityHeaders } from './core/http/security-headers.ts';
import { type AppContext, createAppContext } from './runtime/context.ts';

let devContext: AppContext | undefined;

export const onRequest = defineMiddleware(async (context, next) => {
  if (!context.isPrerendered && !context.locals.candor) {
    devContext ??= createAppContext(readConfig(process.env, process.cwd()), process.cwd());
    context.locals.candor = devContext;
  }
  const response = await next();
  if (!context.isPrerendered) {
    const https = context.locals.candor.config.publicUrl.protocol === 'https:';
    for (const [name, value] of Object.entries(securityHeaders({ https }))) {
      const astroValue = response.headers.get(name);
      if (astroValue === null) response.headers.set(name, value);
      else if (name === 'Content-Security-Policy') response.headers.set(name, mergeCsp(astroValue, value));
    }
  }
  return response;
});
