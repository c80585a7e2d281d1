/**
 * The reader's filter on /subprocessors: by category of purpose and by
 * processing location. A location is a country (code or English name:
 * "DE", "Germany") or a region ("EU/EEA", "worldwide"), and an entry
 * matches when the places it processes data in overlap it (see
 * core/content/locations.ts): "Germany" finds the entries in Germany, in
 * the EU/EEA without a named country, and those working worldwide.
 * Unknown values are reported, never thrown.
 */
import {
  countryName,
  covers,
  eeaCountries,
  type Place,
  placeLabel,
  placeValue,
  regionIds,
  regionLabels,
  resolvePlace,
} from '../content/locations.ts';
import { type Subprocessor, subprocessorCategories, subprocessorCategoryLabels } from '../content/schema.ts';

export interface SubprocessorFilter {
  category: string | null;
  /** the place's value: a country code ("DE") or a region ("eea") */
  location: string | null;
}

export interface Option {
  value: string;
  label: string;
}

export interface FilterResult {
  items: Subprocessor[];
  applied: SubprocessorFilter;
  /** the applied location, for people ("Germany"), or null */
  locationLabel: string | null;
  problems: string[];
  categories: Option[];
  /** what the location menu offers: regions, then every country an entry names (and the applied one) */
  locations: { regions: Option[]; countries: Option[] };
  /** of the items shown for a location, those there only because they work worldwide */
  worldwide: Subprocessor[];
}

const MAX_PARAM = 100;

export function filterSubprocessors(all: readonly Subprocessor[], params: URLSearchParams): FilterResult {
  const problems: string[] = [];
  const categories = subprocessorCategories
    .filter((c) => all.some((s) => s.category === c))
    .map((value) => ({ value, label: subprocessorCategoryLabels[value] }));

  const rawCategory = params.get('category')?.trim() ?? '';
  let category: string | null = null;
  if (rawCategory !== '') {
    if (rawCategory.length <= MAX_PARAM && categories.some((c) => c.value === rawCategory)) category = rawCategory;
    else problems.push(`There is no purpose called "${rawCategory.slice(0, MAX_PARAM)}"; showing every purpose.`);
  }

  const rawLocation = params.get('location')?.trim() ?? '';
  let place: Place | null = null;
  if (rawLocation !== '') {
    place = rawLocation.length <= MAX_PARAM ? resolvePlace(rawLocation) : null;
    if (!place)
      problems.push(
        `There is no location called "${rawLocation.slice(0, MAX_PARAM)}"; showing every location. Pick a country or region from the list, or write a country's name or ISO code (such as DE).`,
      );
  }

  const named = new Set(all.flatMap((s) => s.countries));
  if (place?.kind === 'country') named.add(place.code);
  const countries = [...named].map((code) => ({ value: code, label: countryName(code) })).sort((a, b) => a.label.localeCompare(b.label));
  const regions = regionIds
    .filter((id) =>
      id === 'eea'
        ? all.some((s) => s.regions.includes('eea') || s.countries.some((c) => eeaCountries.has(c)))
        : all.some((s) => s.regions.includes(id)),
    )
    .map((id) => ({ value: id, label: regionLabels[id] }));
  if (place?.kind === 'region' && !regions.some((r) => r.value === place.id))
    regions.push({ value: place.id, label: regionLabels[place.id] });

  const items = all.filter((s) => (category === null || s.category === category) && (place === null || covers(s, place)));
  const worldwide =
    place === null || (place.kind === 'region' && place.id === 'worldwide')
      ? []
      : items.filter(
          (s) =>
            s.regions.includes('worldwide') &&
            !covers({ countries: s.countries, regions: s.regions.filter((r) => r !== 'worldwide') }, place),
        );
  return {
    items,
    applied: { category, location: place ? placeValue(place) : null },
    locationLabel: place ? placeLabel(place) : null,
    problems,
    categories,
    locations: { regions, countries },
    worldwide,
  };
}
