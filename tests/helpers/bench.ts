/** What a benchmark module under tests/bench (http, later fanout, surge) offers to tests/bench/run.ts. */
export interface BenchContext {
  /** Base URL of a running server built from the working tree. */
  url: string;
  /** The server's data dir, for benchmarks that set up data the way the tests do (tests/helpers/staff.ts). */
  dataDir: string;
  /** The server's process id, for benchmarks that report the CPU time it used. */
  serverPid: number | undefined;
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
  run: (context: BenchContext) => Promise<BenchOutcome>;
}
