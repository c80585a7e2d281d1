/**
 * Everything a request or job needs, built once per process and handed to
 * Astro as `locals.candor`. Nothing else holds process-wide state.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkIntegrity, type Db, openDatabase } from '../../db/client.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { describeDatabaseUrl } from '../../db/engine/url.ts';
import { auditKeyring, bindAuditKeys } from '../core/audit/key.ts';
import { recordBaselineLegacy } from '../core/changes/snapshot.ts';
import { type Config, ConfigError } from '../core/config/env.ts';
import { resolveSecrets, type Secrets } from '../core/config/secrets.ts';
import { loadContent, type TrustContent } from '../core/content/load.ts';
import { recordListedComponentsLegacy } from '../core/incidents/history.ts';
import { indexEmailDomains } from '../core/notify/legacy.ts';
import type { Keys } from '../core/notify/recipients.ts';
import { StatusSnapshots } from './status-snapshots.ts';

export interface AppContext {
  config: Config;
  secrets: Secrets;
  /** the keyring: seal with the first, open with any; plus the secret for blind indexes and tokens */
  keys: Keys;
  db: Db;
  /**
   * The same database through the engine API (db/engine/types.ts), for what has moved to the stores;
   * today `databaseOf(db)`, the async handle of that connection (db/engine/sqlite.ts: the transition rule).
   */
  database: Database;
  content: TrustContent;
  now: () => Date;
  /** the status pages rendered for the current status version, shared by src/server.ts and src/middleware.ts */
  snapshots: StatusSnapshots;
}

/** The database file is there but is not a healthy SQLite database. */
export class DatabaseError extends Error {
  constructor(file: string, cause: unknown) {
    super(`${file} is damaged (${cause instanceof Error ? cause.message : String(cause)}); restore it from a backup`);
    this.name = 'DatabaseError';
  }
}

function prepareDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.W_OK);
  } catch (err) {
    throw new ConfigError('CANDOR_DATA_DIR', `is not a writable folder: ${dataDir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function openChecked(file: string): Db {
  let db: Db | undefined;
  try {
    db = openDatabase(file);
    checkIntegrity(db);
    return db;
  } catch (err) {
    db?.$client.close();
    if (err instanceof Error && /not a database|malformed|integrity|corrupt/i.test(err.message)) throw new DatabaseError(file, err);
    throw err;
  }
}

/** Throws ContentError, ConfigError or DatabaseError with a message an operator can act on. */
export function createAppContext(config: Config, root: string): AppContext {
  if (config.database.engine === 'postgres') {
    // The schema, its migrations and row-level security are in place (db/schema-pg, db/engine); the domain's stores are not yet.
    throw new ConfigError(
      'CANDOR_DATABASE_URL',
      `names a PostgreSQL server (${describeDatabaseUrl(config.database.url)}), but this version serves from SQLite only: unset it to use SQLite in the data dir`,
    );
  }
  const content = loadContent(config.contentDir ?? join(root, 'content'));
  prepareDataDir(config.dataDir);
  const secrets = resolveSecrets(config);
  // The audit chain is sealed with a key derived from the secret, never stored in the database.
  const db = bindAuditKeys(openChecked(join(config.dataDir, 'candor.db')), auditKeyring(secrets.secret, config.previousSecrets));
  const now = () => new Date();
  recordBaselineLegacy(db, content, now());
  recordListedComponentsLegacy(db, content.components, now());
  const keys: Keys = { keys: [secrets.encryptionKey, ...secrets.previousKeys], secret: secrets.secret };
  // Email addresses stored before domains were indexed (a SQL migration cannot open them): once, here.
  indexEmailDomains(db, keys);
  const database = databaseOf(db);
  return {
    config,
    secrets,
    keys,
    db,
    database,
    content,
    now,
    snapshots: new StatusSnapshots(database, now),
  };
}
