/**
 * Subscriber import at scale (issue 17): a 100,000-row Statuspage CSV written to a temporary file and
 * imported through the function the console and the CLI use (src/core/subscriptions/import.ts
 * `importSubscribers`, the file streamed from disk, 500 rows per transaction), consent carried over.
 * Reported: rows per second; the bench process's peak RSS (process.resourceUsage().maxRSS) and the
 * RSS sampled every 50 ms during each import: the peak during the 100,000-row import over the peak
 * during a 10,000-row import in the same run (near 1: memory stays flat as the file grows), and each
 * import's growth over the RSS just before it (which moves with when V8 last returned memory, so it
 * is shown, not compared); then the same 100,000-row file imported again, which must
 * find every address unchanged and add nothing. On SQLite (a fresh file), and on PostgreSQL too when
 * it is chosen (a database of its own, as the application role). Figures are reported, never asserted.
 */

import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { type ImportCounts, importSubscribers } from '../../src/core/subscriptions/import.ts';
import type { BenchContext, Benchmark } from '../helpers/bench.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { createTestPostgres, tempSqliteEngine } from '../helpers/postgres.ts';
import { columns } from './common.ts';

const LARGE = 100_000;
const SMALL = 10_000;
const COMPONENTS = [
  { id: 'web-app', name: 'Web application' },
  { id: 'public-api', name: 'Public API' },
  { id: 'search', name: 'Search' },
];
const MB = 2 ** 20;

/** A Statuspage export of `rows` subscribers (`prefix` keeps two files' addresses apart); 1 in 100 an SMS number. */
async function writeStatuspageCsv(path: string, rows: number, prefix: string): Promise<number> {
  const out = createWriteStream(path);
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, 'drain');
  };
  await write('Subscriber Type,Email,Phone Number,Phone Country,Created At,Components\r\n');
  for (let i = 0; i < rows; i++) {
    const created = new Date(Date.UTC(2023, 0, 1) + i * 60_000).toISOString();
    if (i % 100 === 0 && prefix === 'l') await write(`sms,,79111${String(i / 100).padStart(5, '0')},GB,${created},Web application\r\n`);
    else
      await write(`email,${prefix}${i}@customer${i % 97}.example,,,${created},${i % 3 === 0 ? '"Web application; Public API"' : ''}\r\n`);
  }
  out.end();
  await once(out, 'close');
  return rows;
}

interface Measured {
  seconds: number;
  rowsPerSecond: number;
  counts: ImportCounts;
  rssBeforeMb: number;
  peakRssMb: number;
  growthMb: number;
}

async function measuredImport(database: Database, file: string): Promise<Measured> {
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const started = performance.now();
  try {
    const result = await importSubscribers(
      {
        database,
        keys: TEST_KEYS,
        now: () => new Date(),
        publicUrl: new URL('https://trust.example.com/'),
        organisation: 'Bench Corp',
        components: COMPONENTS,
        audit: { actor: { type: 'system' }, userAgent: 'bench' },
        staffId: null,
      },
      createReadStream(file),
      { format: 'statuspage', consent: 'carry_over', dryRun: false, fileName: 'bench.csv' },
    );
    if (!result.ok) throw new Error(result.message);
    const seconds = (performance.now() - started) / 1000;
    peak = Math.max(peak, process.memoryUsage().rss);
    return {
      seconds,
      rowsPerSecond: Math.round(result.counts.rows / seconds),
      counts: result.counts,
      rssBeforeMb: rssBefore / MB,
      peakRssMb: peak / MB,
      growthMb: (peak - rssBefore) / MB,
    };
  } finally {
    clearInterval(sampler);
  }
}

async function onEngine(name: 'sqlite' | 'postgres', database: Database, dir: string, log: (line: string) => void) {
  bindAuditKeys(database, auditKeyring(TEST_KEYS.secret));
  const small = join(dir, 'small.csv');
  const large = join(dir, 'large.csv');
  await writeStatuspageCsv(small, SMALL, 's');
  await writeStatuspageCsv(large, LARGE, 'l');
  log(`${name}: importing ${SMALL.toLocaleString('en')} rows…`);
  const first = await measuredImport(database, small);
  log(`${name}: importing ${LARGE.toLocaleString('en')} rows…`);
  const second = await measuredImport(database, large);
  log(`${name}: importing the ${LARGE.toLocaleString('en')} rows again…`);
  const again = await measuredImport(database, large);
  // "changes nothing" is a promise, not a figure: the run stops if the re-import added or refused anything new
  if (again.counts.imported !== 0 || again.counts.unchanged !== second.counts.imported + second.counts.unchanged) {
    throw new Error(
      `${name}: re-importing the same file was not idempotent: ${again.counts.imported} imported, ${again.counts.unchanged} unchanged (expected 0 and ${second.counts.imported + second.counts.unchanged})`,
    );
  }
  return { engine: name, small: first, large: second, reimport: again, peakRatio: second.peakRssMb / first.peakRssMb };
}

export const importBench: Benchmark = {
  name: 'import',
  description: `subscriber import: a ${LARGE.toLocaleString('en')}-row Statuspage CSV streamed in, memory against a ${SMALL.toLocaleString('en')}-row one, and re-imported unchanged`,
  async run(context: BenchContext) {
    const dir = mkdtempSync(join(tmpdir(), 'candor-bench-import-'));
    const results: Awaited<ReturnType<typeof onEngine>>[] = [];
    try {
      if (context.engines.has('sqlite')) {
        const sqlite = tempSqliteEngine();
        try {
          results.push(await onEngine('sqlite', sqlite, dir, context.log));
        } finally {
          await sqlite.close();
        }
      }
      if (context.engines.has('postgres')) {
        const pg = await createTestPostgres();
        const postgres = openPostgresDatabase({ url: pg.appUrl });
        try {
          results.push(await onEngine('postgres', postgres, dir, context.log));
        } finally {
          await postgres.close();
          await pg.drop();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const mb = (v: number) => v.toFixed(0);
    const lines = results.flatMap((r) =>
      (['small', 'large', 'reimport'] as const).map((k) => {
        const m = r[k];
        return [
          r.engine,
          k === 'small' ? `${SMALL.toLocaleString('en')} rows` : k === 'large' ? `${LARGE.toLocaleString('en')} rows` : 're-import',
          m.seconds.toFixed(1),
          m.rowsPerSecond.toLocaleString('en'),
          `${m.counts.imported}/${m.counts.unchanged}/${m.counts.refused}`,
          mb(m.peakRssMb),
          mb(m.growthMb),
        ];
      }),
    );
    const report = [
      columns(['engine', 'file', 's', 'rows/s', 'imported/unchanged/refused', 'peak RSS MB', 'RSS growth MB'], lines),
      ...results.map(
        (r) =>
          `${r.engine}: peak RSS during the ${LARGE.toLocaleString('en')}-row import over that of the ${SMALL.toLocaleString('en')}-row one: ×${r.peakRatio.toFixed(2)} (flat memory: near 1); re-import: ${r.reimport.counts.unchanged.toLocaleString('en')} unchanged, ${r.reimport.counts.imported} imported`,
      ),
      `process peak RSS (maxRSS): ${mb(process.resourceUsage().maxRSS / 1024)} MB`,
    ].join('\n');
    return { report, summary: { results, maxRssMb: process.resourceUsage().maxRSS / 1024 } };
  },
};
