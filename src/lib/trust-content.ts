/**
 * The published content, read from Astro's content collections (validated
 * at build time) in the plain shapes src/core works with.
 */
import { getCollection, getEntry } from 'astro:content';
import type { Component, DocFrontmatter, DocumentFrontmatter, Site } from '../core/content/schema.ts';

export interface PublishedDoc extends DocFrontmatter {
  slug: string;
}

export async function getSite(): Promise<Site> {
  const entry = await getEntry('site', 'site');
  if (!entry) throw new Error('content/site.yaml was not loaded');
  return entry.data;
}

export async function getDocs(): Promise<PublishedDoc[]> {
  const docs = await getCollection('docs');
  return docs.map((d) => ({ ...d.data, slug: d.id })).sort((a, b) => a.title.localeCompare(b.title));
}

export interface PublishedDocument extends DocumentFrontmatter {
  slug: string;
}

/** The documents of content/documents as built, by title (the PDF's path left out). */
export async function getDocuments(): Promise<PublishedDocument[]> {
  const documents = await getCollection('documents');
  return documents.map(({ id, data: { pdf: _pdf, ...data } }) => ({ ...data, slug: id })).sort((a, b) => a.title.localeCompare(b.title));
}

export async function getComponents(): Promise<Component[]> {
  return (await getCollection('components')).map((c) => c.data);
}

export function lastUpdated(docs: readonly PublishedDoc[]): Date {
  return new Date(Math.max(...docs.map((d) => d.updated.getTime())));
}
