/**
 * `npm start` must serve what is in the working tree. The build is stamped
 * with a hash of its inputs (`npm run build` ends by writing the stamp,
 * scripts/stamp-build.ts); on SQLite a missing or different stamp rebuilds
 * at start. On PostgreSQL, where many nodes serve one deployment, nodes
 * never build: the site is built once where the code is deployed, and a
 * node whose build does not match its sources refuses to start (server.ts).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const INPUTS = ['src', 'content', 'public', 'db', 'astro.config.mjs', 'package-lock.json', 'tsconfig.json'];
const STAMP = 'dist/.candor-build';

export function buildInputsHash(root: string): string {
  const hash = createHash('sha256');
  const visit = (path: string) => {
    if (!existsSync(path)) return;
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort()) visit(join(path, name));
      return;
    }
    hash.update(relative(root, path)).update('\0').update(readFileSync(path)).update('\0');
  };
  for (const input of INPUTS) visit(join(root, input));
  return hash.digest('hex');
}

export function isBuildFresh(root: string): boolean {
  const stamp = join(root, STAMP);
  return (
    existsSync(join(root, 'dist/server/entry.mjs')) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === buildInputsHash(root)
  );
}

/** Builds when needed; returns false (having printed why) when the build fails. */
export function ensureBuild(root: string, log: (line: string) => void): boolean {
  if (isBuildFresh(root)) return true;
  log('building the site (sources changed since the last build)…');
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  return result.status === 0;
}

/** Marks dist/ as built from the sources as they are now. */
export function writeBuildStamp(root: string): void {
  writeFileSync(join(root, STAMP), `${buildInputsHash(root)}\n`);
}
