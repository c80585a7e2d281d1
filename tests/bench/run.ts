/**
 * `npm run bench [-- <name>…] [--engine=sqlite|postgres|both]`: builds when the
 * sources changed, starts the real server as `npm start` does, runs the chosen
 * benchmarks (all when none is named) and prints their figures with the
 * machine they ran on. With CANDOR_TEST_POSTGRES_URL set (a server and a
 * superuser, as for the tests) it also starts a server on a PostgreSQL
 * database of its own, and the benchmarks measure both engines side by side in
 * the same run (tests/bench/engines.ts). Figures are reported, never asserted:
 * they depend on the machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { ensureBuild } from '../../src/runtime/build.ts';
import type { Benchmark } from '../helpers/bench.ts';
import { ROOT } from '../helpers/server.ts';
import { chooseEngines, type PostgresNode, startPostgresNode, startSqliteServer } from './engines.ts';
import { fanout } from './fanout.ts';
import { http } from './http.ts';
import { importBench } from './import.ts';
import { surge } from './surge.ts';

const BENCHMARKS: readonly Benchmark[] = [http, fanout, surge, importBench];
const OUTPUT = join(ROOT, 'test-output/bench');

const log = (line: string) => console.log(`[bench] ${line}`);

function machine() {
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

function choose(names: readonly string[]): Benchmark[] {
  if (names.length === 0) return [...BENCHMARKS];
  const known = new Map(BENCHMARKS.map((b) => [b.name, b]));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    const list = BENCHMARKS.map((b) => `  ${b.name}: ${b.description}`).join('\n');
    console.error(`unknown benchmark ${unknown.join(', ')}; available:\n${list}`);
    process.exit(2);
  }
  return names.flatMap((n) => known.get(n) ?? []);
}

async function main(): Promise<void> {
  const { engines, rest, error } = chooseEngines(process.argv.slice(2));
  if (error) {
    console.error(error);
    process.exit(2);
  }
  const chosen = choose(rest);
  if (!ensureBuild(ROOT, log)) {
    console.error('the build failed; see the messages above');
    process.exit(1);
  }
  const about = machine();
  console.log(`${about.date}  Node ${about.node}  ${about.platform}  ${about.cores} cores (${about.cpu})  ${about.memoryGiB} GiB`);
  // The load generator shares the machine with the server; on few cores it takes a share of them.
  console.log('load generator and server run on the same machine');
  console.log(
    `engines: ${[...engines].join(' and ')}${engines.has('postgres') ? '' : ' (set CANDOR_TEST_POSTGRES_URL to measure PostgreSQL too)'}\n`,
  );
  const server = await startSqliteServer();
  let postgres: PostgresNode | null = null;
  try {
    if (engines.has('postgres') && chosen.some((b) => b.usesPostgresServer)) {
      log('starting a server on a PostgreSQL database of its own…');
      postgres = await startPostgresNode();
    }
    mkdirSync(OUTPUT, { recursive: true });
    for (const benchmark of chosen) {
      const outcome = await benchmark.run({
        engines,
        url: server.url,
        dataDir: server.dataDir,
        serverPid: server.process.pid,
        postgres: postgres && { url: postgres.server.url, serverPid: postgres.server.process.pid, pg: postgres.pg },
        log,
      });
      console.log(`\n${benchmark.name}: ${benchmark.description}\n${outcome.report}\n`);
      const file = join(OUTPUT, `${benchmark.name}.json`);
      const summary = { benchmark: benchmark.name, machine: about, engines: [...engines], ...outcome.summary };
      writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
      log(`wrote ${file}`);
    }
  } catch (err) {
    // The server's log usually says why a page failed under load.
    console.error(`\nserver output (last 40 lines):\n${server.output().split('\n').slice(-40).join('\n')}`);
    if (postgres) {
      console.error(`\nPostgreSQL server output (last 40 lines):\n${postgres.server.output().split('\n').slice(-40).join('\n')}`);
    }
    throw err;
  } finally {
    await server.stop();
    await postgres?.stop();
  }
}

await main();
