/** Builds the site once for every test file that starts a server. */
import { join } from 'node:path';
import { ensureBuild } from '../../src/runtime/build.ts';

export default function setup(): void {
  const root = join(import.meta.dirname, '../..');
  if (!ensureBuild(root, (line) => console.log(`[test setup] ${line}`))) throw new Error('npm run build failed');
}
