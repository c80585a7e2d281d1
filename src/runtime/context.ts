/**
 * Everything a request or job needs, built once per process and handed to
 * Astro as `locals.candor`. Nothing else holds process-wide state.
 */
import { join } from 'node:path';
import { checkIntegrity, type Db, openDatabase } from '../../db/client.ts';
import { recordBaseline } from '../core/changes/snapshot.ts';
import type { Config } from '../core/config/env.ts';
import { resolveSecrets, type Secrets } from '../core/config/secrets.ts';
import { loadContent, type TrustContent } from '../core/content/load.ts';

export interface AppContext {
  config: Config;
  secrets: Secrets;
  db: Db;
  content: TrustContent;
  now: () => Date;
}

export function createAppContext(config: Config, root: string): AppContext {
  const content = loadContent(join(root, 'content'));
  const secrets = resolveSecrets(config);
  const db = openDatabase(join(config.dataDir, 'candor.db'));
  checkIntegrity(db);
  const now = () => new Date();
  recordBaseline(db, content, now());
  return { config, secrets, db, content, now };
}
