/**
 * The public pages that show incidents, kept in memory once rendered for a
 * status version (src/core/incidents/status-version.ts), and those that show
 * the published subprocessor history (/subprocessors, /changes, trust.json),
 * kept for a changes version (src/core/changes/public.ts: a notice published,
 * the UTC day turned), with /documents, whose expiry marks turn with the UTC
 * day too (src/core/documents/expiry.ts): the body, its brotli and gzip forms, and the final
 * headers of each. Only the path without a query string: the filters and
 * `?as_of=` stay rendered per request. src/middleware.ts
 * renders and stores them through Astro; src/server.ts answers from here
 * before Astro is consulted. During a surge nearly every request is for one
 * of these pages, and Astro's work per request (a web Request, routing, the
 * middleware chain, a web Response) costs several times the answer itself.
 *
 * Renders are shared: when the version changes under load, the first
 * request renders and every request for the same page and version arriving
 * meanwhile waits for that render instead of starting its own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { brotliCompressSync, gzipSync, constants as zlib } from 'node:zlib';
import type { Database, Listener, PostgresDatabase, Reader } from '../../db/engine/types.ts';
import { type ChangesFacts, changesFacts, changesVersionOf } from '../core/changes/public.ts';
import { securityHeaders } from '../core/http/security-headers.ts';
import { statusFacts, type VersionParts, versionOf } from '../core/incidents/status-version.ts';
import { statuspageDocumentNames } from '../core/incidents/statuspage.ts';

/** Public pages that show incidents; the /api/v2 documents by their names (src/core/incidents/statuspage.ts). */
export const STATUS_PAGES = new RegExp(
  `^/(status|incidents/\\d+|api/v1/status\\.json|feeds/incidents\\.(xml|atom|json)|api/v2/(${statuspageDocumentNames
    .map((name) => name.replace(/\.json$/, '').replaceAll('.', '\\.'))
    .join('|')})\\.json)$`,
);
/**
 * Public pages that show the published subprocessor list or change log, and nothing that changes otherwise;
 * and /documents, which changes only with the content (read at start) and the UTC day (a document's expiry).
 */
export const CHANGE_PAGES = /^\/(subprocessors|changes|documents|api\/v1\/trust\.json)$/;

/** Whether a pathname (without a query) is answered from a snapshot. */
export function snapshotted(pathname: string): boolean {
  return STATUS_PAGES.test(pathname) || CHANGE_PAGES.test(pathname);
}

type Encoding = 'br' | 'gzip' | 'identity';

interface Variant {
  body: Buffer;
  /** name, value, name, value…: what `writeHead` takes without building a header map */
  rawHeaders: string[];
}

export interface Snapshot {
  version: string;
  status: number;
  variants: Record<Encoding, Variant>;
}

/** What a render produced: its status, its final headers (security headers applied) and its body. */
export interface Rendered {
  status: number;
  headers: Iterable<[string, string]>;
  body: Buffer;
}

interface Flight {
  version: string;
  done: Promise<Snapshot | null>;
}

/** Bounded: one entry per page path, and incident ids are the only open-ended part. */
const MAX_ENTRIES = 500;

/**
 * src/server.ts sets the security headers before Astro writes the rest, so
 * they lead an Astro-served answer; answers from memory keep that order.
 */
const LEADING = Object.keys(securityHeaders({ https: true })).map((name) => name.toLowerCase());

export function negotiate(acceptEncoding: string): Encoding {
  return /\bbr\b/.test(acceptEncoding) ? 'br' : /\bgzip\b/.test(acceptEncoding) ? 'gzip' : 'identity';
}

function variant(headers: readonly [string, string][], encoding: Encoding, body: Buffer): Variant {
  const all = new Map(headers.map(([name, value]) => [name.toLowerCase(), value]));
  all.delete('content-length');
  all.set('vary', 'Accept-Encoding');
  if (encoding === 'identity') all.delete('content-encoding');
  else all.set('content-encoding', encoding);
  all.set('content-length', String(body.length));
  const rest = [...all.keys()].filter((name) => !LEADING.includes(name)).sort();
  const order = [...LEADING.filter((name) => all.has(name)), ...rest];
  return { body, rawHeaders: order.flatMap((name) => [name, all.get(name) ?? '']) };
}

/** Facts a version is computed from, as read (or being read) and until when they may stand. */
interface Kept<F> {
  facts: Promise<F>;
  /** performance.now() after which a follower reads again even if no change was announced */
  until: number;
}

/**
 * While following changes (PostgreSQL), how long facts stand without an announcement: the fallback for
 * a notification lost while the listening connection was down and not yet found dropped.
 */
export const FOLLOW_MAX_AGE_MS = 1000;

/** The channel PostgreSQL announces changes to public pages on (db/migrations-pg/0003_public_pages_notify.sql). */
export const PUBLIC_CHANGES_CHANNEL = 'candor_public';

export class StatusSnapshots {
  private readonly entries = new Map<string, Snapshot>();
  private readonly flights = new Map<string, Flight>();
  private readonly database: Database;
  private readonly now: () => Date;
  private status: Kept<VersionParts> | null = null;
  private changes: Kept<ChangesFacts> | null = null;
  private listener: Listener | null = null;
  private turnEnding = false;
  private readonly endTurn = () => {
    this.turnEnding = false;
    if (this.listener) return;
    this.status = null;
    this.changes = null;
  };

  private readonly followMaxAgeMs: number;

  constructor(database: Database, now: () => Date, options: { followMaxAgeMs?: number } = {}) {
    this.database = database;
    this.now = now;
    this.followMaxAgeMs = options.followMaxAgeMs ?? FOLLOW_MAX_AGE_MS;
  }

  /**
   * The version a page is kept for (status or changes, by its path).
   *
   * By default its facts are read once per turn of the event loop: every request of one turn shares
   * the read started in it, later turns read afresh even while that read is still under way. The
   * requests one turn handles had arrived when it began, so they are concurrent with any write
   * committed during it and either version answers them correctly; a reader who learned of a write
   * (its 303, a notification) asks in a later turn, which reads afresh. The status facts are one
   * statement in one read snapshot (src/stores/component-states.ts `versionParts`).
   *
   * Following changes (`follow`, PostgreSQL with several nodes), the facts read stand until a change
   * is announced (by any node's commit, through LISTEN), this node answers a request that may have
   * written (`changed`), or FOLLOW_MAX_AGE_MS passes; the time-dependent part (the day, the
   * five-minute turn of an incident under way) is computed for each request.
   */
  version(path: string): Promise<string> {
    const now = this.now();
    if (CHANGE_PAGES.test(path)) {
      this.changes = this.kept(this.changes, changesFacts);
      return this.changes.facts.then((facts) => changesVersionOf(facts, now));
    }
    this.status = this.kept(this.status, statusFacts);
    return this.status.facts.then((facts) => versionOf(facts, now));
  }

  /** `current` while it may stand, else a new read (not kept when it fails: the next request reads again). */
  private kept<F>(current: Kept<F> | null, read: (r: Reader) => Promise<F>): Kept<F> {
    if (current && (!this.listener || performance.now() < current.until)) return current;
    const kept: Kept<F> = { facts: this.database.read(read), until: performance.now() + this.followMaxAgeMs };
    kept.facts.catch(() => {
      if (this.status === kept) this.status = null;
      if (this.changes === kept) this.changes = null;
    });
    this.scheduleEndTurn();
    return kept;
  }

  private scheduleEndTurn(): void {
    if (this.turnEnding) return;
    this.turnEnding = true;
    setImmediate(this.endTurn);
  }

  /** Something public may have changed: the next request reads the versions afresh. */
  changed(): void {
    this.status = null;
    this.changes = null;
  }

  /**
   * Follows changes announced on PostgreSQL (src/server.ts, with more than one node in mind): from here
   * on versions are read once per change rather than once per turn. Any announcement forgets what was
   * read, and so does a gap in listening (the connection dropped and was made again).
   */
  async follow(database: PostgresDatabase): Promise<void> {
    const forget = () => this.changed();
    this.listener = await database.listen(PUBLIC_CHANGES_CHANNEL, forget, forget);
    // what was read before listening began may predate a change nobody will announce again
    this.changed();
  }

  /** Stops following (shutdown). */
  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    this.changed();
    await listener?.close();
  }

  /** The snapshot of a page for this version, if it is in memory. */
  current(path: string, version: string): Snapshot | undefined {
    const entry = this.entries.get(path);
    return entry?.version === version ? entry : undefined;
  }

  /** The snapshot a render in flight will produce for this version; null when none is in flight or it was not kept. */
  async rendering(path: string, version: string): Promise<Snapshot | null> {
    const flight = this.flights.get(path);
    return flight?.version === version ? flight.done : null;
  }

  /**
   * Announces a render of a page for a version. `keep` stores what it
   * produced (compressed once here) and hands it to the requests that
   * waited; `abandon` lets them render for themselves.
   */
  begin(path: string, version: string): { keep: (rendered: Rendered) => Snapshot; abandon: () => void } {
    let settle: (snapshot: Snapshot | null) => void = () => {};
    const flight: Flight = { version, done: new Promise((resolve) => (settle = resolve)) };
    this.flights.set(path, flight);
    const finish = (snapshot: Snapshot | null) => {
      if (this.flights.get(path) === flight) this.flights.delete(path);
      settle(snapshot);
    };
    return {
      keep: ({ status, headers, body }) => {
        const list = [...headers];
        const snapshot: Snapshot = {
          version,
          status,
          variants: {
            identity: variant(list, 'identity', body),
            // Compressed once per render: a status page with its 90-day bars is large, and a surge reads it many times.
            br: variant(list, 'br', brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 5 } })),
            gzip: variant(list, 'gzip', gzipSync(body, { level: 6 })),
          },
        };
        if (this.entries.size > MAX_ENTRIES) this.entries.clear();
        this.entries.set(path, snapshot);
        finish(snapshot);
        return snapshot;
      },
      abandon: () => finish(null),
    };
  }

  /**
   * Answers a GET for a page in memory at the current version, or one being
   * rendered for it, without Astro; `fallback` takes the request when the
   * version moved on, that render is not kept or the version cannot be read.
   * Returns false (synchronously) when no page of that path is in memory or
   * being rendered.
   */
  serve(req: IncomingMessage, res: ServerResponse, fallback: () => void): boolean {
    if (req.method !== 'GET') return false;
    // Keys are pathnames as Astro parsed them, without a query: a URL with one, or spelled otherwise, finds none.
    const path = req.url ?? '';
    if (!this.entries.has(path) && !this.flights.has(path)) return false;
    const encoding = negotiate(req.headers['accept-encoding'] ?? '');
    // Taken: answered from memory when the version read shows it current, else (or when the read fails) by `fallback`.
    this.version(path).then(
      (version) => {
        const entry = this.entries.get(path);
        if (entry?.version === version) return write(res, entry, encoding);
        const flight = this.flights.get(path);
        if (flight?.version !== version) return fallback();
        void flight.done.then((snapshot) => (snapshot ? write(res, snapshot, encoding) : fallback()));
      },
      () => fallback(),
    );
    return true;
  }
}

function write(res: ServerResponse, snapshot: Snapshot, encoding: Encoding): void {
  const { rawHeaders, body } = snapshot.variants[encoding];
  res.writeHead(snapshot.status, rawHeaders);
  res.end(body);
}

/** A snapshot as the web Response Astro's middleware returns. */
export function snapshotResponse(snapshot: Snapshot, acceptEncoding: string): Response {
  const { rawHeaders, body } = snapshot.variants[negotiate(acceptEncoding)];
  const headers = new Headers();
  for (let i = 0; i < rawHeaders.length; i += 2) headers.append(rawHeaders[i] ?? '', rawHeaders[i + 1] ?? '');
  return new Response(new Uint8Array(body), { status: snapshot.status, headers });
}
