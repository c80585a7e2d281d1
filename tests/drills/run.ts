/**
 * `npm run drills [-- crash|outage] [--engine sqlite|postgres] [--seed N]`: the full drills, longer
 * than `npm test` can afford (a few minutes per engine). Runs them on SQLite, and on PostgreSQL too
 * when CANDOR_TEST_POSTGRES_URL names a server (two servers or dispatchers on one database there);
 * `--engine` picks one. Prints each report, writes test-output/drills/<name>-<engine>.json and exits
 * 1 when a promise was broken. The crash drill's kill moments come from the seed it prints, so a
 * run that found something can be repeated.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureBuild } from '../../src/runtime/build.ts';
import { ROOT } from '../helpers/server.ts';
import { runCrashDrill } from './crash.drill.ts';
import { runOutageDrill } from './outage.drill.ts';
import { fullCrash, fullOutage } from './presets.ts';
import { crashReport, outageReport } from './report.ts';
import { type DrillEngine, drillEngines } from './world.ts';

const OUTPUT = join(ROOT, 'test-output/drills');
const DRILLS = ['crash', 'outage'] as const;
type DrillName = (typeof DRILLS)[number];

const log = (line: string) => console.log(`[drills] ${line}`);

const { values, positionals } = parseArgs({
  options: { seed: { type: 'string' }, engine: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const unknown = positionals.filter((p) => !DRILLS.includes(p as DrillName));
if (unknown.length > 0) {
  console.error(`unknown drill ${unknown.join(', ')}; available: ${DRILLS.join(', ')}`);
  process.exit(2);
}
const chosen = positionals.length ? (positionals as DrillName[]) : [...DRILLS];
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed)) {
  console.error(`--seed must be a whole number, got ${values.seed}`);
  process.exit(2);
}

const available = drillEngines();
if (values.engine !== undefined && !available.includes(values.engine as DrillEngine)) {
  console.error(
    values.engine === 'postgres'
      ? '--engine postgres needs CANDOR_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)'
      : `unknown engine ${values.engine}; available: ${available.join(', ')}`,
  );
  process.exit(2);
}
const engines = values.engine === undefined ? available : [values.engine as DrillEngine];

const machine = {
  date: new Date().toISOString(),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cores: availableParallelism(),
  cpu: cpus()[0]?.model.trim() ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  loadAverage: Number((loadavg()[0] ?? 0).toFixed(2)),
};
console.log(
  `${machine.date}  Node ${machine.node}  ${machine.platform}  ${machine.cores} cores (${machine.cpu})  ${machine.memoryGiB} GiB  load ${machine.loadAverage}`,
);
console.log(
  `engines: ${engines.join(', ')}${values.engine === undefined && !engines.includes('postgres') ? ' (set CANDOR_TEST_POSTGRES_URL for PostgreSQL too)' : ''}\n`,
);
if (chosen.includes('crash') && !ensureBuild(ROOT, log)) {
  console.error('the build failed; see the messages above');
  process.exit(1);
}
mkdirSync(OUTPUT, { recursive: true });

let broken = 0;
for (const engine of engines) {
  for (const name of chosen) {
    const { report, result } =
      name === 'crash'
        ? await runCrashDrill(fullCrash(engine, seed, log)).then((r) => ({ report: crashReport(r), result: r }))
        : await runOutageDrill(fullOutage(engine, log)).then((r) => ({ report: outageReport(r), result: r }));
    console.log(`\n${name} drill on ${engine}\n${report}\n`);
    const file = join(OUTPUT, `${name}-${engine}.json`);
    writeFileSync(file, `${JSON.stringify({ drill: name, machine, ...result }, null, 2)}\n`);
    log(`wrote ${file}`);
    broken += result.violations.length;
  }
}
process.exit(broken > 0 ? 1 : 0);
