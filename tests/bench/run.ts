/**
 * `npm run bench [-- <name>…]`: builds when the sources changed, starts the
 * real server as `npm start` does, runs the chosen benchmarks (all when none
 * is named) and prints their figures with the machine they ran on. Figures
 * are reported, never asserted: they depend on the machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { ensureBuild } from '../../src/runtime/build.ts';
import type { Benchmark } from '../helpers/bench.ts';
import { ROOT, startServer } from '../helpers/server.ts';
import { fanout } from './fanout.ts';
import { http } from './http.ts';
import { surge } from './surge.ts';

const BENCHMARKS: readonly Benchmark[] = [http, fanout, surge];
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
  const chosen = choose(process.argv.slice(2));
  if (!ensureBuild(ROOT, log)) {
    console.error('the build failed; see the messages above');
    process.exit(1);
  }
  const about = machine();
  console.log(`${about.date}  Node ${about.node}  ${about.platform}  ${about.cores} cores (${about.cpu})  ${about.memoryGiB} GiB`);
  // The load generator shares the machine with the server; on few cores it takes a share of them.
  console.log('load generator and server run on the same machine\n');
  const server = await startServer();
  try {
    mkdirSync(OUTPUT, { recursive: true });
    for (const benchmark of chosen) {
      const outcome = await benchmark.run({ url: server.url, dataDir: server.dataDir, serverPid: server.process.pid, log });
      console.log(`\n${benchmark.name}: ${benchmark.description}\n${outcome.report}\n`);
      const file = join(OUTPUT, `${benchmark.name}.json`);
      writeFileSync(file, `${JSON.stringify({ benchmark: benchmark.name, machine: about, ...outcome.summary }, null, 2)}\n`);
      log(`wrote ${file}`);
    }
  } catch (err) {
    // The server's log usually says why a page failed under load.
    console.error(`\nserver output (last 40 lines):\n${server.output().split('\n').slice(-40).join('\n')}`);
    throw err;
  } finally {
    await server.stop();
  }
}

await main();
