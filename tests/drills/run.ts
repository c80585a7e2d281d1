/**
 * `npm run drills [-- crash|outage] [--seed N]`: the full drills, longer than `npm test` can
 * afford (a few minutes). Prints each report, writes test-output/drills/<name>.json and exits
 * 1 when a promise was broken. The crash drill's kill moments come from the seed it prints, so
 * a run that found something can be repeated.
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

const OUTPUT = join(ROOT, 'test-output/drills');
const DRILLS = ['crash', 'outage'] as const;
type DrillName = (typeof DRILLS)[number];

const log = (line: string) => console.log(`[drills] ${line}`);

const { values, positionals } = parseArgs({ options: { seed: { type: 'string' } }, allowPositionals: true, strict: true });
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
  `${machine.date}  Node ${machine.node}  ${machine.platform}  ${machine.cores} cores (${machine.cpu})  ${machine.memoryGiB} GiB  load ${machine.loadAverage}\n`,
);
if (chosen.includes('crash') && !ensureBuild(ROOT, log)) {
  console.error('the build failed; see the messages above');
  process.exit(1);
}
mkdirSync(OUTPUT, { recursive: true });

let broken = 0;
for (const name of chosen) {
  const { report, result } =
    name === 'crash'
      ? await runCrashDrill(fullCrash(seed, log)).then((r) => ({ report: crashReport(r), result: r }))
      : await runOutageDrill(fullOutage(log)).then((r) => ({ report: outageReport(r), result: r }));
  console.log(`\n${name} drill\n${report}\n`);
  const file = join(OUTPUT, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ drill: name, machine, ...result }, null, 2)}\n`);
  log(`wrote ${file}`);
  broken += result.violations.length;
}
process.exit(broken > 0 ? 1 : 0);
