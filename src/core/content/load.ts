/**
 * Reads and validates everything under content/ in one pass: every file
 * against its schema, then what ties files together (unique ids, slugs that
 * must exist). Used by the content collections and by the server at start.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ContentError, describeIssues } from './errors.ts';
import {
  type Component,
  componentsSchema,
  type DocFrontmatter,
  type DocumentFrontmatter,
  docFrontmatterSchema,
  documentFrontmatterSchema,
  type NdaFrontmatter,
  ndaFrontmatterSchema,
  requiredTemplates,
  type Site,
  type Subprocessor,
  siteSchema,
  subprocessorsSchema,
  type TemplateFrontmatter,
  templateFrontmatterSchema,
  templatePlaceholders,
} from './schema.ts';

export interface DocSource extends DocFrontmatter {
  slug: string;
  file: string;
  body: string;
}

export interface TemplateSource extends TemplateFrontmatter {
  id: string;
  body: string;
}

/** A document of content/documents: its metadata, and where its PDF is. */
export interface DocumentSource extends DocumentFrontmatter {
  slug: string;
  /** the metadata file, relative to content/'s parent (content/documents/<slug>.md) */
  source: string;
  /** the PDF, relative to content/'s parent; checked to exist and to be a PDF */
  pdf: string;
  /** the PDF's size */
  bytes: number;
}

/** A non-disclosure agreement of content/ndas: its text exactly as in the file, after the front matter. */
export interface NdaSource extends NdaFrontmatter {
  /** the file's name without .md */
  name: string;
  /** the file, relative to content/'s parent */
  file: string;
  body: string;
}

export interface TrustContent {
  site: Site;
  subprocessors: Subprocessor[];
  components: Component[];
  docs: DocSource[];
  templates: TemplateSource[];
  /** sorted by title */
  documents: DocumentSource[];
  /** sorted by effective day, then name */
  ndas: NdaSource[];
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
  const templates = loadTemplates(join(contentDir, 'templates'), rel, problems);
  const documents = loadDocuments(join(contentDir, 'documents'), rel, problems);
  const ndas = loadNdas(join(contentDir, 'ndas'), rel, problems);

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
  return { site, subprocessors, components, docs, templates, documents, ndas };
}

type Rel = (p: string) => string;
interface MarkdownFile {
  name: string;
  file: string;
  data: unknown;
  body: string;
}

/** The markdown files of a folder, each split into frontmatter data and body; problems named by file. */
function readMarkdownFiles(dir: string, rel: Rel, problems: string[], what: string): MarkdownFile[] | null {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.md'))
      .sort();
  } catch {
    problems.push(`${rel(dir)}: missing folder of ${what}`);
    return null;
  }
  const files: MarkdownFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const file = rel(path);
    if (!/^[a-z0-9]+(?:-[a-z0-9]+)*\.md$/.test(name)) {
      problems.push(`${file}: file name must be lower-case words joined by hyphens (it is the page's address)`);
      continue;
    }
    const match = FRONTMATTER.exec(readFileSync(path, 'utf8'));
    if (!match) {
      problems.push(`${file}: must start with a frontmatter block between --- lines`);
      continue;
    }
    try {
      files.push({ name: basename(name, '.md'), file, data: parseYaml(match[1] ?? ''), body: match[2] ?? '' });
    } catch (err) {
      problems.push(`${file}: frontmatter is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return files;
}

const PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;

/** Update templates; a placeholder the code cannot fill is a mistake worth failing the build for. */
function loadTemplates(dir: string, rel: Rel, problems: string[]): TemplateSource[] {
  const files = readMarkdownFiles(dir, rel, problems, 'update templates');
  if (!files) return [];
  const templates: TemplateSource[] = [];
  for (const { name, file, data, body } of files) {
    const result = templateFrontmatterSchema.safeParse(data);
    if (!result.success) {
      problems.push(...describeIssues(file, result.error));
      continue;
    }
    const unknown = [...body.matchAll(PLACEHOLDER)]
      .map((m) => m[1] ?? '')
      .filter((p) => !(templatePlaceholders as readonly string[]).includes(p));
    if (unknown.length > 0) {
      problems.push(`${file}: unknown placeholder {{${unknown[0]}}} (known: ${templatePlaceholders.map((p) => `{{${p}}}`).join(', ')})`);
      continue;
    }
    if (body.trim() === '') {
      problems.push(`${file}: the template has no text`);
      continue;
    }
    templates.push({ ...result.data, id: name, body: body.trim() });
  }
  for (const id of requiredTemplates) {
    const file = rel(join(dir, `${id}.md`));
    if (!templates.some((t) => t.id === id) && !problems.some((p) => p.startsWith(`${file}:`)))
      problems.push(`${file}: missing (scheduled maintenance sends it automatically)`);
  }
  return templates;
}

/** Valid docs, and the slugs of every doc file (valid or not, so one bad file does not also break every link to it). */
function loadDocs(dir: string, rel: Rel, problems: string[]): { docs: DocSource[]; slugs: Set<string> } {
  let slugs = new Set<string>();
  try {
    slugs = new Set(
      readdirSync(dir)
        .filter((n) => n.endsWith('.md'))
        .map((n) => basename(n, '.md')),
    );
  } catch {
    // readMarkdownFiles names the missing folder
  }
  const docs: DocSource[] = [];
  for (const { name, file, data, body } of readMarkdownFiles(dir, rel, problems, 'markdown docs') ?? []) {
    const result = docFrontmatterSchema.safeParse(data);
    if (!result.success) {
      problems.push(...describeIssues(file, result.error));
      continue;
    }
    docs.push({ ...result.data, slug: name, file, body });
  }
  return { docs, slugs };
}

/**
 * Documents: front matter only, each naming a PDF beside it that must be there and be a PDF. A trust
 * center without a documents folder has no documents.
 */
function loadDocuments(dir: string, rel: Rel, problems: string[]): DocumentSource[] {
  if (!existsSync(dir)) return [];
  const documents: DocumentSource[] = [];
  for (const { name, file, data, body } of readMarkdownFiles(dir, rel, problems, 'documents') ?? []) {
    const result = documentFrontmatterSchema.safeParse(data);
    if (!result.success) {
      problems.push(...describeIssues(file, result.error));
      continue;
    }
    if (body.trim() !== '') {
      problems.push(`${file}: a document holds front matter only (put its text in description)`);
      continue;
    }
    const pdfPath = join(dir, result.data.file);
    const pdfProblem = notAPdf(pdfPath);
    if (pdfProblem) {
      problems.push(`${file}: file: ${rel(pdfPath)} ${pdfProblem}`);
      continue;
    }
    documents.push({ ...result.data, slug: name, source: file, pdf: rel(pdfPath), bytes: statSync(pdfPath).size });
  }
  return documents.sort((a, b) => a.title.localeCompare(b.title));
}

/**
 * Non-disclosure agreements: front matter (title, effective day) and the text. A trust center without an
 * ndas folder has none (and then no gated document can be read). The body is kept exactly as written: its
 * SHA-256 is the version customers accept.
 */
function loadNdas(dir: string, rel: Rel, problems: string[]): NdaSource[] {
  if (!existsSync(dir)) return [];
  const ndas: NdaSource[] = [];
  for (const { name, file, data, body } of readMarkdownFiles(dir, rel, problems, 'NDAs') ?? []) {
    const result = ndaFrontmatterSchema.safeParse(data);
    if (!result.success) {
      problems.push(...describeIssues(file, result.error));
      continue;
    }
    if (body.trim() === '') {
      problems.push(`${file}: the agreement has no text`);
      continue;
    }
    ndas.push({ ...result.data, name, file, body });
  }
  const seen = new Map<number, string>();
  for (const nda of ndas) {
    const other = seen.get(nda.effective.getTime());
    if (other) problems.push(`${nda.file}: effective: the same day as ${other} (which one is in force would be a guess)`);
    seen.set(nda.effective.getTime(), nda.file);
  }
  return ndas.sort((a, b) => a.effective.getTime() - b.effective.getTime() || a.name.localeCompare(b.name));
}

/** Why the file at `path` is not a PDF (missing, not a file, no PDF header), or null when it is one. */
function notAPdf(path: string): string | null {
  if (!existsSync(path)) return 'does not exist';
  if (!statSync(path).isFile()) return 'is not a file';
  const head = Buffer.alloc(5);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 5, 0);
  } finally {
    closeSync(fd);
  }
  return head.toString('latin1') === '%PDF-' ? null : 'is not a PDF (it does not start with %PDF-)';
}

function requireUnique(items: readonly { id: string }[], file: string, problems: string[]): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.id);
    if (first === undefined) seen.set(item.id, i);
    else problems.push(`${file}: [${i}].id: duplicate id "${item.id}" (also at [${first}])`);
  });
}
