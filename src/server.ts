/**
 * The process entry of `npm start`: checks configuration, builds when the
 * sources changed, opens the database, then serves the prerendered files
 * from memory and everything else through Astro's handler. SIGTERM and
 * SIGINT stop accepting connections and let in-flight requests finish.
 */
import { readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sealChainNow } from './core/audit/log.ts';
import { closeRepeatWindows } from './core/audit/repeats.ts';
import { sweepLeftovers } from './core/backup/leftovers.ts';
import { ConfigError, readConfig } from './core/config/env.ts';
import { ContentError } from './core/content/errors.ts';
import { securityHeaders } from './core/http/security-headers.ts';
import { runHousekeeping } from './core/maintenance/housekeeping.ts';
import { enqueuedSoFar } from './core/notify/outbox.ts';
import { ensureBuild, isBuildFresh } from './runtime/build.ts';
import { detectContentChanges } from './runtime/changes.ts';
import { type AppContext, createAppContext, DatabaseError } from './runtime/context.ts';
import { createDispatcher } from './runtime/dispatcher.ts';
import { startJobRunner } from './runtime/jobs.ts';
import { StaticFiles } from './runtime/static-files.ts';

const root = join(import.meta.dirname, '..');
const log = (line: string) => console.log(`[candor] ${line}`);
const fail = (line: string): never => {
  console.error(`[candor] ${line}`);
  process.exit(1);
};

const HOUSEKEEPING_INTERVAL_MS = 6 * 3_600_000;
// Counts of repeated refusals go into the audit chain within a minute of their window closing.
const REPEATS_INTERVAL_MS = 60_000;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

type AstroHandler = (req: IncomingMessage, res: ServerResponse, next: undefined, locals: App.Locals) => Promise<void>;

async function startupContext(): Promise<AppContext> {
  try {
    return await createAppContext(readConfig(process.env, process.cwd()), root);
  } catch (err) {
    if (err instanceof ContentError) return fail(err.message);
    if (err instanceof ConfigError) return fail(`configuration error: ${err.message}`);
    if (err instanceof DatabaseError) return fail(`database error: ${err.message}`);
    throw err;
  }
}

/**
 * Astro loads a route's code on its first request. Loading it all now
 * means a later rebuild of dist/ (a second checkout command, a test run)
 * cannot pull files from under this running server.
 */
async function preloadServerChunks(dir: string): Promise<void> {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.mjs')) await import(pathToFileURL(join(entry.parentPath, entry.name)).href);
  }
}

async function main(): Promise<void> {
  process.env.ASTRO_NODE_AUTOSTART = 'disabled';
  const context = await startupContext();
  // Plaintext copies a crashed backup, restore or restore check left in the data dir (leftovers.ts).
  sweepLeftovers(context.config.dataDir, log);
  // After an upgrade, or a change of CANDOR_SECRET, the chain is sealed under the current key at once.
  const sealed = await sealChainNow(context.database, context.now());
  if (sealed)
    log(
      `audit log: ${sealed.action === 'audit.chain_keyed' ? 'older plain entries sealed under CANDOR_SECRET' : 'CANDOR_SECRET changed; recorded'} as entry #${sealed.id}`,
    );
  if (context.config.database.engine === 'postgres') {
    // Many nodes, one deployment: none of them builds (README "Many nodes on PostgreSQL").
    if (!isBuildFresh(root))
      fail(
        'the site in dist/ was not built from these sources: run `npm run build` once where the code is deployed, then start the nodes (on PostgreSQL a node never builds at start)',
      );
  } else if (!ensureBuild(root, log)) fail('the build failed; see the messages above');
  if (context.database.engine === 'postgres') {
    // Other nodes write too: the pages in memory follow what they commit (LISTEN), read once per change.
    await context.snapshots
      .follow(context.database)
      .catch((err: unknown) =>
        log(
          `public pages: not following other nodes' changes (${err instanceof Error ? err.message : String(err)}); reading the versions on every turn`,
        ),
      );
  }
  const changes = await detectContentChanges(context);
  for (const line of changes.drafted) log(`change detected, drafted for Announcements: ${line}`);
  const entry = pathToFileURL(join(root, 'dist/server/entry.mjs')).href;
  const { handler } = (await import(entry)) as { handler: AstroHandler };
  await preloadServerChunks(join(root, 'dist/server'));
  const statics = new StaticFiles(join(root, 'dist/client'));
  const headers = Object.entries(securityHeaders({ https: context.config.publicUrl.protocol === 'https:' }));

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    // Astro cannot build a request for TRACE, CONNECT and the like: it answered them with a 500 and a stack trace.
    if (!METHODS.has(req.method ?? '')) {
      res.writeHead(405, { Allow: [...METHODS].join(', '), 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed\n');
      return;
    }
    // The adapter matches routes on the path as sent, Astro renders the path with repeated slashes collapsed:
    // `/console//staff` was rendered without this request's locals (a second app context, a 500). One path for both.
    const [path = '/', ...query] = (req.url ?? '/').split('?');
    if (path.startsWith('/') && path.includes('//')) req.url = [path.replace(/\/{2,}/g, '/'), ...query].join('?');
    if (statics.serve(req, res)) return;
    // Fresh locals per request: the console guard writes the signed-in session into them.
    handler(req, res, undefined, { candor: context, auth: null }).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Internal server error');
    });
  };
  const server = createServer((req, res) => {
    // A request that may have written: whoever sent it reads afresh next (their 303 may come before the
    // announcement), and what it enqueued goes out now rather than at the dispatcher's next poll.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const enqueuedBefore = enqueuedSoFar();
      res.once('finish', () => {
        context.snapshots.changed();
        if (enqueuedSoFar() !== enqueuedBefore) worker?.dispatcher.wake();
      });
    }
    // First: a status page in memory carries its own final headers, and nothing in dist/client has its path.
    if (!context.snapshots.serve(req, res, () => serve(req, res))) serve(req, res);
  });
  // Longer than the idle timeout of proxies and HTTP clients (60 s for nginx upstreams and cloud load
  // balancers; fetch reuses a connection for the hinted timeout less 1 s): the client closes an idle
  // connection first, so a request never lands on one this server is closing ("other side closed").
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') fail(`configuration error: PORT ${context.config.port} is already in use on ${context.config.host}`);
    if (err.code === 'EACCES') fail(`configuration error: PORT ${context.config.port} needs privileges this process lacks`);
    fail(`server error: ${err.message}`);
  });
  // The dispatcher runs in this process unless a separate `candor worker` is preferred (CANDOR_WORKER=external).
  const worker = process.env.CANDOR_WORKER === 'external' ? null : await createDispatcher(context, log);
  let jobs: ReturnType<typeof startJobRunner> | null = null;
  server.listen(context.config.port, context.config.host, () => {
    log(`channels: ${worker?.description ?? 'sent by a separate `npm run candor -- worker`'}`);
    worker?.dispatcher.start();
    jobs = worker ? startJobRunner(context, log) : null;
    log(
      `serving ${context.config.publicUrl.href} (listening on ${context.config.host}:${context.config.port}, data in ${context.config.dataDir})`,
    );
  });

  const housekeeping = async () => {
    const removed = await runHousekeeping(context.database, context.content.site.policies, context.now());
    if (Object.values(removed).some((n) => n > 0)) log(`housekeeping: ${JSON.stringify(removed)}`);
  };
  let housekeepingTimer: NodeJS.Timeout | undefined;
  let repeatsTimer: NodeJS.Timeout | undefined;

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    clearInterval(housekeepingTimer);
    clearInterval(repeatsTimer);
    log(`${signal} received, finishing in-flight requests`);
    const jobsStopped = jobs?.stop() ?? Promise.resolve();
    const workerStopped = worker?.dispatcher.stop() ?? Promise.resolve();
    server.close(() => {
      void Promise.all([workerStopped, jobsStopped]).then(async () => {
        // Open windows are counted in the database anyway; closing them now puts their counts under the chain.
        await closeRepeatWindows(context.database, context.now(), { all: true });
        await context.snapshots.close();
        // Waits for the handle's transactions, then closes both of its connections (the write one is context.db's).
        await context.database.close();
        log('stopped');
        process.exit(0);
      });
    });
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
    }, 10_000).unref();
  };
  // Before the first housekeeping: the server may already say it is serving (on PostgreSQL housekeeping
  // takes a few round trips), and a SIGTERM then must stop it cleanly, not kill it mid-transaction.
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await housekeeping();
  if (stopping) return;
  // A failure is not caught, as before: an unhandled rejection ends the process like the exception did.
  housekeepingTimer = setInterval(() => void housekeeping(), HOUSEKEEPING_INTERVAL_MS);
  housekeepingTimer.unref();
  repeatsTimer = setInterval(
    () =>
      void closeRepeatWindows(context.database, context.now()).catch((err: unknown) =>
        log(`closing repeat windows: ${err instanceof Error ? err.message : String(err)}`),
      ),
    REPEATS_INTERVAL_MS,
  );
  repeatsTimer.unref();
}

await main();
