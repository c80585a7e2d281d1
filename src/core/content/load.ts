/**
 * Reads and validates everything under content/ in one pass: every file
 * against its schema, then what ties files together (unique ids, slugs that
 * must exist). Used by the content collections and by the server at start.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ContentError, describeIssues } from './errors.ts';
import {
  type Component,
  componentsSchema,
  type DocFrontmatter,
  docFrontmatterSchema,
  type Site,
  type Subprocessor,
  siteSchema,
  subprocessorsSchema,
} from './schema.ts';

export interface DocSource extends DocFrontmatter {
  slug: string;
  file: string;
  body: string;
}

export interface TrustContent {
  site: Site;
  subprocessors: Subprocessor[];
  components: Component[];
  docs: DocSource[];
}

const FRONTMATTER = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?([\s\S]*)$/;

export function loadContent(contentDir: string): TrustContent {
  const problems: string[] = [];
  const rel = (p: string) => relative(join(contentDir, '..'), p);

  function readYaml(path: string): unknown {
    try {
      return parseYaml(readFileSync(path, 'utf8'));
    } catch (err) {
      if (err instanceof YAMLParseError) problems.push(`${rel(path)}: not valid YAML: ${err.message.split('\n')[0]}`);
      else problems.push(`${rel(path)}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  }

  function validate<S extends z.ZodType>(schema: S, data: unknown, file: string): z.infer<S> | undefined {
    const result = schema.safeParse(data);
    if (result.success) return result.data;
    problems.push(...describeIssues(file, result.error));
    return undefined;
  }

  const sitePath = join(contentDir, 'site.yaml');
  const subprocessorsPath = join(contentDir, 'subprocessors.yaml');
  const componentsPath = join(contentDir, 'components.yaml');
  const site = validate(siteSchema, readYaml(sitePath), rel(sitePath));
  const subprocessors = validate(subprocessorsSchema, readYaml(subprocessorsPath), rel(subprocessorsPath));
  const components = validate(componentsSchema, readYaml(componentsPath), rel(componentsPath));
  const { docs, slugs } = loadDocs(join(contentDir, 'docs'), rel, problems);

  if (subprocessors) requireUnique(subprocessors, rel(subprocessorsPath), problems);
  if (components) requireUnique(components, rel(componentsPath), problems);

  const mustExist = (slug: string, where: string) => {
    if (!slugs.has(slug)) problems.push(`${where}: unknown doc "${slug}" (no content/docs/${slug}.md)`);
  };
  if (site) {
    const file = rel(sitePath);
    mustExist(site.securityTxt.policy, `${file}: securityTxt.policy`);
    for (const [i, c] of site.compliance.entries()) mustExist(c.doc, `${file}: compliance[${i}].doc`);
    for (const [i, s] of site.sections.entries()) {
      for (const [j, d] of s.docs.entries()) mustExist(d, `${file}: sections[${i}].docs[${j}]`);
    }
    requireUnique(site.compliance, `${file}: compliance`, problems);
    requireUnique(site.sections, `${file}: sections`, problems);
  }
  for (const doc of docs) {
    for (const [i, r] of doc.related.entries()) mustExist(r, `${doc.file}: related[${i}]`);
  }

  if (problems.length > 0 || !site || !subprocessors || !components) throw new ContentError(problems);
  return { site, subprocessors, components, docs };
}

/** Valid docs, and the slugs of every doc file (valid or not, so one bad file does not also break every link to it). */
function loadDocs(dir: string, rel: (p: string) => string, problems: string[]): { docs: DocSource[]; slugs: Set<string> } {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.md'))
      .sort();
  } catch {
    problems.push(`${rel(dir)}: missing folder of markdown docs`);
    return { docs: [], slugs: new Set() };
  }
  const slugs = new Set(names.map((n) => basename(n, '.md')));
  const docs: DocSource[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const file = rel(path);
    const slug = basename(name, '.md');
    if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(slug)) {
      problems.push(`${file}: file name must be lower-case words joined by hyphens (it is the page's address)`);
      continue;
    }
    const match = FRONTMATTER.exec(readFileSync(path, 'utf8'));
    if (!match) {
      problems.push(`${file}: must start with a frontmatter block between --- lines`);
      continue;
    }
    let data: unknown;
    try {
      data = parseYaml(match[1] ?? '');
    } catch (err) {
      problems.push(`${file}: frontmatter is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    const result = docFrontmatterSchema.safeParse(data);
    if (!result.success) {
      problems.push(...describeIssues(file, result.error));
      continue;
    }
    docs.push({ ...result.data, slug, file, body: match[2] ?? '' });
  }
  return { docs, slugs };
}

function requireUnique(items: readonly { id: string }[], file: string, problems: string[]): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.id);
    if (first === undefined) seen.set(item.id, i);
    else problems.push(`${file}: [${i}].id: duplicate id "${item.id}" (also at [${first}])`);
  });
}
