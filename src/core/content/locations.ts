/**
 * Where a subprocessor processes data, as structured values: ISO 3166-1
 * alpha-2 country codes and two regions (the EU/EEA, when no country is
 * named, and worldwide). Names come from Intl.DisplayNames, so the page,
 * trust.json and the notices say "Germany" from the code DE. A reader's
 * filter value ("DE", "Germany", "EU/EEA") resolves to a place, and an
 * entry matches a place its locations overlap: Germany finds entries in
 * Germany, in the EU/EEA without a named country, and worldwide.
 * Also reads the free-text `location` of subprocessors recorded before
 * these fields existed (published snapshots and notices keep that shape).
 */

/** ISO 3166-1 alpha-2, officially assigned codes. */
const ISO_3166_1_ALPHA_2 =
  'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW';
export const countryCodes: ReadonlySet<string> = new Set(ISO_3166_1_ALPHA_2.split(' '));

/** The 27 EU member states and Iceland, Liechtenstein and Norway: where the GDPR applies without a transfer. */
export const eeaCountries: ReadonlySet<string> = new Set(
  'AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO'.split(' '),
);

export const regionIds = ['eea', 'worldwide'] as const;
export type RegionId = (typeof regionIds)[number];
export const regionLabels: Record<RegionId, string> = { eea: 'EU/EEA', worldwide: 'Worldwide' };

export interface Locations {
  /** ISO 3166-1 alpha-2 codes, in the order the content gives them */
  countries: readonly string[];
  regions: readonly RegionId[];
}

export type Place = { kind: 'country'; code: string } | { kind: 'region'; id: RegionId };

const displayNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });

export const isCountryCode = (value: string): boolean => countryCodes.has(value);

/** "Germany" for DE; the code itself for anything Intl does not name. */
export function countryName(code: string): string {
  return displayNames.of(code) ?? code;
}

/** For people: "United States, Germany, Ireland", "Worldwide", "EU/EEA". */
export function locationLabel(locations: Locations): string {
  return [...locations.countries.map(countryName), ...locations.regions.map((r) => regionLabels[r])].join(', ');
}

/** The value a filter link carries: "DE", "eea". */
export const placeValue = (place: Place): string => (place.kind === 'country' ? place.code : place.id);
export const placeLabel = (place: Place): string => (place.kind === 'country' ? countryName(place.code) : regionLabels[place.id]);

const REGION_WORDS: Record<string, RegionId> = {
  eea: 'eea',
  eu: 'eea',
  'eu/eea': 'eea',
  'eu-eea': 'eea',
  europe: 'eea',
  'european union': 'eea',
  'european economic area': 'eea',
  worldwide: 'worldwide',
  global: 'worldwide',
  world: 'worldwide',
};

/** English names and common short forms, lower-cased, to codes; built on first use. */
let namesToCodes: Map<string, string> | undefined;
function codeForName(name: string): string | undefined {
  if (!namesToCodes) {
    namesToCodes = new Map([...countryCodes].map((code) => [countryName(code).toLowerCase(), code]));
    for (const [alias, code] of [
      ['usa', 'US'],
      ['u.s.', 'US'],
      ['u.s.a.', 'US'],
      ['united states of america', 'US'],
      ['uk', 'GB'],
      ['great britain', 'GB'],
      ['czech republic', 'CZ'],
      ['korea', 'KR'],
      ['the netherlands', 'NL'],
    ] as const)
      namesToCodes.set(alias, code);
  }
  return namesToCodes.get(name.toLowerCase());
}

/** A code for a value a person may have meant as a country ("Germany", "de"), for hints and filters. */
export function countryFor(value: string): string | undefined {
  const trimmed = value.trim();
  if (isCountryCode(trimmed.toUpperCase()) && trimmed.length === 2) return trimmed.toUpperCase();
  return codeForName(trimmed);
}

/** What a reader typed or picked: a code ("DE", "de"), a name ("Germany") or a region ("EU/EEA", "eea"); null if none. */
export function resolvePlace(value: string): Place | null {
  const trimmed = value.trim();
  const region = REGION_WORDS[trimmed.toLowerCase()];
  if (region) return { kind: 'region', id: region };
  const code = countryFor(trimmed);
  return code ? { kind: 'country', code } : null;
}

/** Whether data processed at `locations` may be processed at `place`: the areas overlap. */
export function covers(locations: Locations, place: Place): boolean {
  if (locations.regions.includes('worldwide')) return true;
  if (place.kind === 'region') {
    if (place.id === 'worldwide') return false;
    return locations.regions.includes('eea') || locations.countries.some((c) => eeaCountries.has(c));
  }
  return locations.countries.includes(place.code) || (locations.regions.includes('eea') && eeaCountries.has(place.code));
}

/**
 * The structured form of a free-text location from before these fields:
 * "United States and European Union (Germany, Ireland)" → US, DE, IE;
 * "Global (edge network)" → worldwide. Words that name no place are
 * dropped; the EU/EEA region goes when an EEA country is named.
 */
export function parseLegacyLocation(text: string): Locations {
  const countries: string[] = [];
  const regions: RegionId[] = [];
  const place = (word: string): boolean => {
    const region = REGION_WORDS[word.toLowerCase()];
    const code = region ? undefined : codeForName(word);
    if (region && !regions.includes(region)) regions.push(region);
    if (code && !countries.includes(code)) countries.push(code);
    return region !== undefined || code !== undefined;
  };
  for (const chunk of text.split(/[,;()/]/)) {
    // "United States and Germany" is two places, "Bosnia and Herzegovina" one: the longest run of parts that names one wins.
    const parts = chunk
      .split(/\s+(?:and|&)\s+/i)
      .map((p) => p.trim().replace(/^the\s+/i, ''))
      .filter((p) => p !== '');
    for (let i = 0; i < parts.length; ) {
      let next = i + 1;
      for (let j = parts.length; j > i; j--) {
        if (place(parts.slice(i, j).join(' & '))) {
          next = j;
          break;
        }
      }
      i = next;
    }
  }
  const named = countries.some((c) => eeaCountries.has(c));
  return { countries, regions: named ? regions.filter((r) => r !== 'eea') : regions };
}

/** The same places, whatever their order: a reordered list is not a change. */
export function sameLocations(a: Locations, b: Locations): boolean {
  const key = (l: Locations) => JSON.stringify([[...l.countries].sort(), [...l.regions].sort()]);
  return key(a) === key(b);
}
