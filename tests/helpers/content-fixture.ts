/** A scratch copy of content/ that a test may break in one place. */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT, tempDir } from './server.ts';

export function copyContent(): string {
  const dir = join(tempDir('candor-content-'), 'content');
  cpSync(join(ROOT, 'content'), dir, { recursive: true });
  return dir;
}

/** Parses a YAML file of the copy, lets the test change it, writes it back. */
export function editYaml<T>(contentDir: string, file: string, edit: (data: T) => unknown): void {
  const path = join(contentDir, file);
  const data = parse(readFileSync(path, 'utf8')) as T;
  const result = edit(data);
  writeFileSync(path, stringify(result === undefined ? data : result));
}

export function editText(contentDir: string, file: string, edit: (text: string) => string): void {
  const path = join(contentDir, file);
  writeFileSync(path, edit(readFileSync(path, 'utf8')));
}
