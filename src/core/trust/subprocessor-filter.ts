/**
 * The reader's filter on /subprocessors: by category of purpose and by
 * processing location. Unknown values are reported, never thrown.
 */
import { type Subprocessor, subprocessorCategories, subprocessorCategoryLabels } from '../content/schema.ts';

export interface SubprocessorFilter {
  category: string | null;
  location: string | null;
}

export interface FilterResult {
  items: Subprocessor[];
  applied: SubprocessorFilter;
  problems: string[];
  categories: { value: string; label: string }[];
  locations: string[];
}

const MAX_PARAM = 100;

export function filterSubprocessors(all: readonly Subprocessor[], params: URLSearchParams): FilterResult {
  const problems: string[] = [];
  const categories = subprocessorCategories
    .filter((c) => all.some((s) => s.category === c))
    .map((value) => ({ value, label: subprocessorCategoryLabels[value] }));
  const locations = [...new Set(all.map((s) => s.location))].sort((a, b) => a.localeCompare(b));

  const pick = (name: 'category' | 'location', allowed: readonly string[], noun: string): string | null => {
    const raw = params.get(name)?.trim() ?? '';
    if (raw === '') return null;
    if (raw.length <= MAX_PARAM && allowed.includes(raw)) return raw;
    problems.push(`There is no ${noun} called "${raw.slice(0, MAX_PARAM)}"; showing every ${noun}.`);
    return null;
  };
  const applied = {
    category: pick(
      'category',
      categories.map((c) => c.value),
      'purpose',
    ),
    location: pick('location', locations, 'location'),
  };
  const items = all.filter(
    (s) => (applied.category === null || s.category === applied.category) && (applied.location === null || s.location === applied.location),
  );
  return { items, applied, problems, categories, locations };
}
