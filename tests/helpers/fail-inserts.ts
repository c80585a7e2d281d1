/**
 * A fault planted behind a running server's back, on either engine: every INSERT into one table fails
 * with the given message, as a full disk or a broken database would make a write fail, for tests of
 * what the server shows and logs when the database refuses. A trigger of the engine's own kind
 * (SQLite `RAISE(ABORT, …)`; PostgreSQL a PL/pgSQL `RAISE EXCEPTION`, made as the superuser on the
 * test's database), so this is the one place such a test writes SQL of one engine. Returns the undo.
 */
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase } from '../../db/client.ts';
import type { ServerOnEngine } from './engine-server.ts';
import { TEST_POSTGRES_URL } from './postgres.ts';

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

export async function failInserts(running: ServerOnEngine, table: string, message: string): Promise<() => Promise<void>> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`not a table name: ${table}`);
  const name = `test_fail_inserts_${table}`;
  if (running.engine === 'sqlite') {
    const db = openDatabase(join(running.server.dataDir, 'candor.db'));
    try {
      db.$client.exec(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} BEGIN SELECT RAISE(ABORT, ${literal(message)}); END;`);
    } finally {
      db.$client.close();
    }
    return async () => {
      const undo = openDatabase(join(running.server.dataDir, 'candor.db'));
      try {
        undo.$client.exec(`DROP TRIGGER ${name}`);
      } finally {
        undo.$client.close();
      }
    };
  }
  if (!TEST_POSTGRES_URL || !running.env.CANDOR_DATABASE_URL) throw new Error('no PostgreSQL database to plant the fault in');
  // the superuser (who may create triggers) on the server's own database
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = new URL(running.env.CANDOR_DATABASE_URL).pathname;
  const superuser = async (sql: string) => {
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await superuser(
    `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $fail$ BEGIN RAISE EXCEPTION ${literal(message.replace(/%/g, '%%'))}; END $fail$;
     CREATE TRIGGER ${name} BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${name}();`,
  );
  return () => superuser(`DROP TRIGGER ${name} ON ${table}; DROP FUNCTION ${name}();`);
}
