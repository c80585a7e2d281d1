/**
 * What differs between two states of the subprocessor list or the docs:
 * one entry per subprocessor or doc added, removed or changed, with the
 * fields (or, for docs, the sections) that changed. Pure functions over
 * JSON-shaped data, so a state read back from the database compares equal
 * to the same state read from content/. Subprocessors stored before
 * structured locations carry a free-text `location`; they are read in the
 * structured form (upgradeStoredSubprocessor), so moving content/ to the
 * new fields drafts no notice where the places are the same.
 */
import { createHash } from 'node:crypto';
import type { DocSource } from '../content/load.ts';
import { type Locations, parseLegacyLocation, sameLocations } from '../content/locations.ts';
import type { Subprocessor } from '../content/schema.ts';

/** A subprocessor as stored: dates as ISO strings. */
export type StoredSubprocessor = Omit<Subprocessor, 'since' | 'location'> & { since: string };
/** As snapshots and notices recorded it before countries and regions: a free-text location. */
export type LegacyStoredSubprocessor = Omit<StoredSubprocessor, 'countries' | 'regions'> & { location: string };
/** A doc as stored. */
export interface StoredDoc {
  slug: string;
  title: string;
  summary: string;
  updated: string;
  body: string;
}

export type ChangeKind = 'added' | 'removed' | 'changed';

export interface SubprocessorDiff {
  subject: 'subprocessor';
  change: ChangeKind;
  id: string;
  name: string;
  before: StoredSubprocessor | null;
  after: StoredSubprocessor | null;
  /** the fields whose value differs, in schema order */
  fields: string[];
}

export interface DocDiff {
  subject: 'doc';
  change: ChangeKind;
  id: string;
  name: string;
  before: StoredDoc | null;
  after: StoredDoc | null;
  /** headings of sections added, removed or reworded: "Key management (new)" */
  sections: string[];
}

export type ContentDiff = SubprocessorDiff | DocDiff;

/** Either shape as stored, in the current one: the free-text location read as countries and regions. */
export function upgradeStoredSubprocessor(item: StoredSubprocessor | LegacyStoredSubprocessor): StoredSubprocessor {
  if (!('location' in item)) return item;
  const { location, ...rest } = item;
  if ('countries' in rest || 'regions' in rest) return rest as unknown as StoredSubprocessor;
  const places = parseLegacyLocation(location);
  return { ...rest, countries: [...places.countries], regions: [...places.regions] };
}

/** A diff as stored (drafted or published before structured locations, perhaps) in the current shape. */
export function upgradeDiff<D extends ContentDiff>(diff: D): D {
  if (diff.subject !== 'subprocessor') return diff;
  const up = (s: StoredSubprocessor | null) => (s ? upgradeStoredSubprocessor(s) : null);
  return { ...diff, before: up(diff.before), after: up(diff.after) };
}

/** The fields a data-protection agreement cares about; a change in any of them is material. */
export const materialFields = ['entity', 'purpose', 'dataCategories', 'location', 'transferMechanism'] as const;

export const fieldLabels: Record<string, string> = {
  name: 'Name',
  entity: 'Legal entity',
  category: 'Category',
  purpose: 'Purpose',
  dataCategories: 'Data categories',
  location: 'Location',
  transferMechanism: 'Transfer mechanism',
  dpaUrl: 'DPA',
  website: 'Website',
  contact: 'Contact',
  since: 'Since',
};

const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function storedSubprocessors(items: readonly Subprocessor[]): StoredSubprocessor[] {
  return json(items) as unknown as StoredSubprocessor[];
}

export function storedDocs(docs: readonly DocSource[]): StoredDoc[] {
  return json(docs.map(({ slug, title, summary, updated, body }) => ({ slug, title, summary, updated, body }))) as unknown as StoredDoc[];
}

function byId<T>(items: readonly T[], id: (item: T) => string): Map<string, T> {
  return new Map(items.map((item) => [id(item), item]));
}

export function diffSubprocessors(
  before: readonly (StoredSubprocessor | LegacyStoredSubprocessor)[],
  after: readonly (StoredSubprocessor | LegacyStoredSubprocessor)[],
): SubprocessorDiff[] {
  const old = byId(before.map(upgradeStoredSubprocessor), (s) => s.id);
  const now = byId(after.map(upgradeStoredSubprocessor), (s) => s.id);
  const diffs: SubprocessorDiff[] = [];
  for (const [id, item] of now) {
    const previous = old.get(id);
    if (!previous) {
      diffs.push({ subject: 'subprocessor', change: 'added', id, name: item.name, before: null, after: item, fields: [] });
      continue;
    }
    // "location" stands for the places (countries and regions), whatever their order
    const keys = Object.keys(fieldLabels).filter((k) =>
      k === 'location'
        ? !sameLocations(previous as Locations, item as Locations)
        : !same(previous[k as keyof StoredSubprocessor], item[k as keyof StoredSubprocessor]),
    );
    if (keys.length)
      diffs.push({ subject: 'subprocessor', change: 'changed', id, name: item.name, before: previous, after: item, fields: keys });
  }
  for (const [id, item] of old) {
    if (!now.has(id))
      diffs.push({ subject: 'subprocessor', change: 'removed', id, name: item.name, before: item, after: null, fields: [] });
  }
  return diffs;
}

/** Sections of a markdown body by their `##` heading; text before the first heading is the introduction. */
export function sections(body: string): Map<string, string> {
  const result = new Map<string, string>();
  let heading = 'Introduction';
  let lines: string[] = [];
  const flush = () => {
    const text = lines.join('\n').trim();
    if (text || heading !== 'Introduction') result.set(heading, text);
  };
  for (const line of body.split('\n')) {
    const match = /^##\s+(.+?)\s*#*\s*$/.exec(line);
    if (match?.[1] && !line.startsWith('###')) {
      flush();
      heading = match[1];
      lines = [];
    } else lines.push(line);
  }
  flush();
  return result;
}

export function changedSections(before: string, after: string): string[] {
  const old = sections(before);
  const now = sections(after);
  const changed: string[] = [];
  for (const [heading, text] of now) {
    const previous = old.get(heading);
    if (previous === undefined) changed.push(`${heading} (new)`);
    else if (previous.replace(/\s+/g, ' ') !== text.replace(/\s+/g, ' ')) changed.push(heading);
  }
  for (const heading of old.keys()) if (!now.has(heading)) changed.push(`${heading} (removed)`);
  return changed;
}

export function diffDocs(before: readonly StoredDoc[], after: readonly StoredDoc[]): DocDiff[] {
  const old = byId(before, (d) => d.slug);
  const now = byId(after, (d) => d.slug);
  const diffs: DocDiff[] = [];
  for (const [slug, doc] of now) {
    const previous = old.get(slug);
    if (!previous) {
      diffs.push({ subject: 'doc', change: 'added', id: slug, name: doc.title, before: null, after: doc, sections: [] });
      continue;
    }
    // A new "updated" date alone is not a change anyone needs to be told about.
    const body = changedSections(previous.body, doc.body);
    const heading = [...(previous.title !== doc.title ? ['Title'] : []), ...(previous.summary !== doc.summary ? ['Summary'] : [])];
    if (body.length || heading.length)
      diffs.push({
        subject: 'doc',
        change: 'changed',
        id: slug,
        name: doc.title,
        before: previous,
        after: doc,
        sections: [...heading, ...body],
      });
  }
  for (const [slug, doc] of old) {
    if (!now.has(slug))
      diffs.push({ subject: 'doc', change: 'removed', id: slug, name: doc.title, before: doc, after: null, sections: [] });
  }
  return diffs;
}

/** JSON with the keys of every object sorted: the same data, however it was built, gives the same text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * Identifies a difference: the same change found twice has the same fingerprint, also when one of
 * them was stored before structured locations (it is compared in the current shape).
 */
export function fingerprint(diff: ContentDiff): string {
  const current = upgradeDiff(diff);
  return createHash('sha256')
    .update(canonicalJson([current.subject, current.change, current.id, current.before, current.after]))
    .digest('hex');
}
