/** What a benchmark module under tests/bench (http, fanout, surge) offers to tests/bench/run.ts. */
import type { TestPostgres } from './postgres.ts';

export interface BenchContext {
  /** the engines chosen for this run (`--engine`, tests/bench/engines.ts): SQLite, PostgreSQL or both */
  engines: ReadonlySet<'sqlite' | 'postgres'>;
  /** Base URL of a running server on SQLite built from the working tree. */
  url: string;
  /** The server's data dir, for benchmarks that set up data the way the tests do (tests/helpers/staff.ts). */
  dataDir: string;
  /** The server's process id, for benchmarks that report the CPU time it used. */
  serverPid: number | undefined;
  /** a server on PostgreSQL from the same build, when PostgreSQL is chosen and a chosen benchmark `usesPostgresServer`; null otherwise */
  postgres: { url: string; serverPid: number | undefined; pg: TestPostgres } | null;
  log: (line: string) => void;
}

export interface BenchOutcome {
  /** Human-readable figures, printed as they are. */
  report: string;
  /** Written to test-output/bench/<name>.json next to the machine description. */
  summary: Record<string, unknown>;
}

export interface Benchmark {
  name: string;
  description: string;
  /** whether it measures a server on PostgreSQL (`postgres` in its context); benchmarks that make their own databases do not */
  usesPostgresServer?: boolean;
  run: (context: BenchContext) => Promise<BenchOutcome>;
}
