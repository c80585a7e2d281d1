/**
 * The engines `npm run bench` measures, side by side in one run: SQLite always (unless
 * `--engine=postgres`), PostgreSQL when CANDOR_TEST_POSTGRES_URL names a server and a superuser to
 * reach it as (unless `--engine=sqlite`). A PostgreSQL node is made as a deployment runs one: its own
 * database, owner and application role (tests/helpers/postgres.ts), migrated, and the real server
 * started on it as the application role with the secrets from the environment. Also a signed-in
 * staff member made through the stores on either engine, for benchmarks that act in the console.
 */
import { createHash } from 'node:crypto';
import type { Database } from '../../db/engine/types.ts';
import type { Role } from '../../src/core/auth/permissions.ts';
import { randomToken } from '../../src/core/crypto/random.ts';
import { insertSession } from '../../src/stores/sessions.ts';
import { insertStaffIfAbsent, updateStaffRow } from '../../src/stores/staff.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';
import { type RunningServer, startServer } from '../helpers/server.ts';

export type EngineName = 'sqlite' | 'postgres';

/** `--engine=sqlite|postgres|both`; without it, both when CANDOR_TEST_POSTGRES_URL is set, else SQLite. */
export function chooseEngines(args: readonly string[]): { engines: Set<EngineName>; rest: string[]; error?: string } {
  const rest = args.filter((a) => !a.startsWith('--engine'));
  const flag = args.find((a) => a.startsWith('--engine'));
  const value = flag?.includes('=') ? flag.slice(flag.indexOf('=') + 1) : flag ? args[args.indexOf(flag) + 1] : undefined;
  if (flag && !flag.includes('=') && value) rest.splice(rest.indexOf(value), 1);
  const wanted = value ?? (TEST_POSTGRES_URL ? 'both' : 'sqlite');
  const engines = new Set<EngineName>(
    wanted === 'both' ? ['sqlite', 'postgres'] : wanted === 'sqlite' || wanted === 'postgres' ? [wanted] : [],
  );
  if (engines.size === 0) return { engines, rest, error: `--engine must be sqlite, postgres or both, got "${value}"` };
  if (engines.has('postgres') && !TEST_POSTGRES_URL) {
    return {
      engines,
      rest,
      error: 'PostgreSQL needs CANDOR_TEST_POSTGRES_URL naming a server and a superuser, e.g. postgres://postgres@127.0.0.1:5432/postgres',
    };
  }
  return { engines, rest };
}

/**
 * The secrets every node and worker on a benchmark's PostgreSQL database shares (on PostgreSQL they
 * come from the environment): the test keys, so recipients sealed by tests/helpers/notify.ts open.
 */
export function postgresSecrets(): { CANDOR_SECRET: string; CANDOR_ENCRYPTION_KEY: string } {
  const [key] = TEST_KEYS.keys;
  if (!key) throw new Error('no test key');
  return { CANDOR_SECRET: TEST_KEYS.secret, CANDOR_ENCRYPTION_KEY: key.toString('hex') };
}

export interface PostgresNode {
  server: RunningServer;
  pg: TestPostgres;
  stop(): Promise<void>;
}

/** A fresh database with its roles, migrated, and the server started on it as the application role. */
export async function startPostgresNode(): Promise<PostgresNode> {
  const pg = await createTestPostgres();
  try {
    const server = await startServer({ env: { ...postgresSecrets(), CANDOR_DATABASE_URL: pg.appUrl } });
    return {
      server,
      pg,
      async stop() {
        await server.stop();
        await pg.drop();
      },
    };
  } catch (err) {
    await pg.drop();
    throw err;
  }
}

/** The SQLite server as `npm start` runs it, whatever CANDOR_DATABASE_URL the developer's shell holds. */
export function startSqliteServer(): Promise<RunningServer> {
  return startServer({ env: { CANDOR_DATABASE_URL: '' } });
}

let counter = 0;

/**
 * An active staff member of the role with a session past its second factor, written through the
 * stores on either engine (as tests/helpers/staff.ts does on SQLite's file); the session cookie value.
 */
export async function signedInStaffOn(database: Database, role: Role): Promise<string> {
  const now = new Date();
  const id = randomToken();
  const secret = randomToken();
  await database.transaction(async (tx) => {
    const member = await insertStaffIfAbsent(tx, `bench-${role}-${++counter}-${process.pid}@lumenwork.example`, role, now);
    if (!member) throw new Error('the staff member exists already');
    await updateStaffRow(tx, member.id, { status: 'active', passwordHash: 'x', totpEnrolledAt: now }, now);
    await insertSession(tx, {
      id,
      staffId: member.id,
      secretHash: createHash('sha256').update(secret).digest(),
      createdAt: now,
      lastActiveAt: now,
      expiresAt: new Date(now.getTime() + 12 * 3_600_000),
      mfaVerifiedAt: now,
      ip: '127.0.0.1',
      userAgent: 'bench',
    });
  });
  return `${id}.${secret}`;
}
