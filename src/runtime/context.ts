/**
 * Everything a request or job needs, built once per process and handed to
 * Astro as `locals.candor`. Nothing else holds process-wide state.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkIntegrity, type Db, openDatabase } from '../../db/client.ts';
import { openPostgresDatabase, type PostgresEngine } from '../../db/engine/postgres.ts';
import { checkApplicationRole, connectPostgres, DATABASE_URL, pendingMigrations } from '../../db/engine/postgres-setup.ts';
import { databaseOf } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../core/audit/key.ts';
import { recordBaseline } from '../core/changes/snapshot.ts';
import { type Config, ConfigError } from '../core/config/env.ts';
import { resolveSecrets, type Secrets } from '../core/config/secrets.ts';
import { loadContent, type TrustContent } from '../core/content/load.ts';
import { recordListedComponents } from '../core/incidents/history.ts';
import { indexEmailDomains, type Keys } from '../core/notify/recipients.ts';
import { StatusSnapshots } from './status-snapshots.ts';

export interface AppContext {
  config: Config;
  secrets: Secrets;
  /** the keyring: seal with the first, open with any; plus the secret for blind indexes and tokens */
  keys: Keys;
  /**
   * The database, on either engine (db/engine/types.ts): SQLite in the data dir (`CANDOR_DATABASE_URL`
   * unset), or PostgreSQL as an application role that cannot get around row-level security.
   */
  database: Database;
  content: TrustContent;
  /** where `content` was read from: gated documents' PDFs are read from it at request time (src/core/access/downloads.ts) */
  contentDir: string;
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

/**
 * PostgreSQL as the application role: reachable (else one line naming CANDOR_DATABASE_URL), a role
 * that cannot get around row-level security (else one line naming what to change), and migrated by
 * `candor db migrate` (a node never migrates: it runs as a role that may not).
 */
async function openPostgres(url: string): Promise<PostgresEngine> {
  const probe = await connectPostgres(url, { max: 1 });
  try {
    await checkApplicationRole(probe);
    const pending = await pendingMigrations(probe);
    if (pending > 0)
      throw new ConfigError(
        DATABASE_URL,
        `names a database ${pending} migration(s) behind this version: run \`candor db migrate --owner <owner URL> --grant <role>\` once, then start the nodes`,
      );
  } finally {
    await probe.end();
  }
  return openPostgresDatabase({ url });
}

/** Throws ContentError, ConfigError or DatabaseError with a message an operator can act on. */
export async function createAppContext(config: Config, root: string): Promise<AppContext> {
  const contentDir = config.contentDir ?? join(root, 'content');
  const content = loadContent(contentDir);
  prepareDataDir(config.dataDir);
  const secrets = resolveSecrets(config);
  const database: Database =
    config.database.engine === 'postgres'
      ? await openPostgres(config.database.url)
      : databaseOf(openChecked(join(config.dataDir, 'candor.db')));
  try {
    // The audit chain is sealed with a key derived from the secret, never stored in the database.
    bindAuditKeys(database, auditKeyring(secrets.secret, config.previousSecrets));
    const now = () => new Date();
    await recordBaseline(database, content, now());
    await recordListedComponents(database, content.components, now());
    const keys: Keys = { keys: [secrets.encryptionKey, ...secrets.previousKeys], secret: secrets.secret };
    // Email addresses stored before domains were indexed (a SQL migration cannot open them): once, here.
    await indexEmailDomains(database, keys);
    return { config, secrets, keys, database, content, contentDir, now, snapshots: new StatusSnapshots(database, now) };
  } catch (err) {
    await database.close();
    throw err;
  }
}
