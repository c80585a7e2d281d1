/**
 * Content collections over content/. Every collection is fed by the one
 * validating reader in src/core/content, so a bad file fails the build with
 * the same message, naming file and field, that `npm start` prints.
 */

import { defineCollection } from 'astro:content';
import { fileURLToPath } from 'node:url';
import type { Loader, LoaderContext } from 'astro/loaders';
import { z } from 'zod';
import { loadContent, type TrustContent } from './core/content/load.ts';
import {
  componentSchema,
  docFrontmatterSchema,
  documentFrontmatterSchema,
  ndaFrontmatterSchema,
  siteSchema,
  subprocessorSchema,
} from './core/content/schema.ts';
import { wrapTables } from './markdown/scrollable-tables.ts';

async function renderWithScrollableTables(render: LoaderContext['renderMarkdown'], body: string) {
  const rendered = await render(body);
  return { ...rendered, html: wrapTables(rendered.html) };
}

const contentDir = fileURLToPath(new URL('../content/', import.meta.url));

function trustContentLoader(name: string, fill: (content: TrustContent, ctx: LoaderContext) => Promise<void>): Loader {
  return {
    name: `candor-${name}`,
    async load(ctx) {
      const content = loadContent(contentDir);
      ctx.store.clear();
      await fill(content, ctx);
      ctx.watcher?.add(contentDir);
    },
  };
}

const site = defineCollection({
  loader: trustContentLoader('site', async ({ site }, { store, parseData }) => {
    store.set({ id: 'site', data: await parseData({ id: 'site', data: site }) });
  }),
  schema: siteSchema,
});

const subprocessors = defineCollection({
  loader: trustContentLoader('subprocessors', async (content, { store, parseData }) => {
    for (const item of content.subprocessors) store.set({ id: item.id, data: await parseData({ id: item.id, data: item }) });
  }),
  schema: subprocessorSchema,
});

const components = defineCollection({
  loader: trustContentLoader('components', async (content, { store, parseData }) => {
    for (const item of content.components) store.set({ id: item.id, data: await parseData({ id: item.id, data: item }) });
  }),
  schema: componentSchema,
});

const docs = defineCollection({
  loader: trustContentLoader('docs', async (content, { store, parseData, renderMarkdown }) => {
    for (const { slug, file, body, ...frontmatter } of content.docs) {
      store.set({
        id: slug,
        data: await parseData({ id: slug, data: frontmatter, filePath: file }),
        body,
        filePath: file,
        rendered: await renderWithScrollableTables(renderMarkdown, body),
      });
    }
  }),
  schema: docFrontmatterSchema,
});

// The PDF's path (relative to the project root) rides along for the download route; the file itself is read there, never stored here.
const documents = defineCollection({
  loader: trustContentLoader('documents', async (content, { store, parseData }) => {
    for (const { slug, source, pdf, bytes: _bytes, ...frontmatter } of content.documents) {
      store.set({ id: slug, data: await parseData({ id: slug, data: { ...frontmatter, pdf }, filePath: source }), filePath: source });
    }
  }),
  schema: documentFrontmatterSchema.extend({ pdf: z.string() }),
});

// Non-disclosure agreements: validated at build like the rest; the text is read from the loaded content at request time.
const ndas = defineCollection({
  loader: trustContentLoader('ndas', async (content, { store, parseData }) => {
    for (const { name, file, body, ...frontmatter } of content.ndas) {
      store.set({ id: name, data: await parseData({ id: name, data: frontmatter, filePath: file }), body, filePath: file });
    }
  }),
  schema: ndaFrontmatterSchema,
});

export const collections = { site, subprocessors, components, docs, documents, ndas };
