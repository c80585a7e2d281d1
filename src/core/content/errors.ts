import type { z } from 'zod';

/** A content problem, always naming the file and the field. */
export class ContentError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid content:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ContentError';
    this.problems = problems;
  }
}

export function describeIssues(file: string, error: z.ZodError, prefix: PropertyKey[] = []): string[] {
  return error.issues.map((issue) => `${file}: ${formatPath([...prefix, ...issue.path])}: ${issue.message}`);
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`)).join('');
}
