/**
 * Client side of /search: documents from the static Pagefind index built
 * from the docs, and subprocessors by name, legal entity, purpose, category,
 * data categories or location from /api/v1/subprocessors.json. That list
 * is the published one (a subprocessor is public once its notice is), which
 * a static index built from content/ could not promise. Results are built
 * with DOM APIs; only Pagefind's excerpt, which it escapes and marks up with
 * <mark>, is parsed as HTML.
 */
interface PagefindResult {
  data: () => Promise<{ url: string; excerpt: string; meta: { title?: string } }>;
}
interface Pagefind {
  search: (query: string) => Promise<{ results: PagefindResult[] }>;
}
interface PublishedSubprocessor {
  id: string;
  name: string;
  entity: string;
  category: string;
  purpose: string;
  dataCategories: string[];
  location: string;
}
interface SubprocessorsJson {
  subprocessors: PublishedSubprocessor[];
  coming: { change: string; subprocessor: PublishedSubprocessor }[];
}

const form = document.querySelector<HTMLFormElement>('#search-form');
const input = document.querySelector<HTMLInputElement>('#search-q');
const list = document.querySelector<HTMLOListElement>('#search-results');
const listTitle = document.querySelector<HTMLElement>('#document-results-title');
const found = document.querySelector<HTMLOListElement>('#subprocessor-results');
const foundSection = document.querySelector<HTMLElement>('#subprocessor-section');
const statusLine = document.querySelector<HTMLElement>('#search-status');
const categoryLabels = JSON.parse(found?.dataset.categories ?? '{}') as Record<string, string>;
let pagefind: Promise<Pagefind> | undefined;
let subprocessors: Promise<PublishedSubprocessor[]> | undefined;

function safeExcerpt(excerpt: string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  const parsed = new DOMParser().parseFromString(`<p>${excerpt}</p>`, 'text/html');
  for (const node of Array.from(parsed.body.firstChild?.childNodes ?? [])) {
    if (node.nodeName === 'MARK') {
      const mark = document.createElement('mark');
      mark.textContent = node.textContent;
      fragment.append(mark);
    } else {
      fragment.append(document.createTextNode(node.textContent ?? ''));
    }
  }
  return fragment;
}

/** Lower case without accents, the same length as the text (so offsets carry over for highlighting). */
const fold = (text: string) =>
  Array.from(text, (ch) => {
    const base = ch.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
    return base.length === ch.length ? base : ch;
  }).join('');

/** Words and, for "one-time", also its parts: [start, end) offsets. */
function words(text: string): [number, number][] {
  const spans: [number, number][] = [];
  for (const m of text.matchAll(/[\p{L}\p{N}]+(?:[-'’.][\p{L}\p{N}]+)*/gu)) {
    const start = m.index ?? 0;
    spans.push([start, start + m[0].length]);
    if (/[-'’.]/.test(m[0]))
      for (const p of m[0].matchAll(/[\p{L}\p{N}]+/gu)) spans.push([start + (p.index ?? 0), start + (p.index ?? 0) + p[0].length]);
  }
  return spans;
}

const queryWords = (query: string) => fold(query).match(/[\p{L}\p{N}]+(?:[-'’.][\p{L}\p{N}]+)*/gu) ?? [];

/** Where each query word starts a word of the text: highlight spans, or null unless every word is found. */
function prefixSpans(text: string, terms: readonly string[]): [number, number][] {
  const folded = fold(text);
  const spans = words(folded);
  const hits: [number, number][] = [];
  for (const term of terms)
    for (const [s, e] of spans) if (folded.startsWith(term, s) && s + term.length <= e) hits.push([s, s + term.length]);
  return hits;
}

interface SubprocessorHit {
  item: PublishedSubprocessor;
  score: number;
  purposeMarks: [number, number][];
}

function matchSubprocessors(items: readonly PublishedSubprocessor[], query: string): SubprocessorHit[] {
  const terms = queryWords(query);
  if (terms.length === 0) return [];
  const hits: SubprocessorHit[] = [];
  for (const item of items) {
    const fields: [string, number][] = [
      [item.name, 4],
      [item.entity, 3],
      [item.purpose, 1],
      [categoryLabels[item.category] ?? item.category, 2],
      [item.dataCategories.join(', '), 1],
      [item.location, 1],
    ];
    let score = 0;
    const everyTerm = terms.every((term) => {
      const best = Math.max(0, ...fields.map(([text, weight]) => (prefixSpans(text, [term]).length ? weight : 0)));
      score += best;
      return best > 0;
    });
    if (everyTerm) hits.push({ item, score, purposeMarks: prefixSpans(item.purpose, terms) });
  }
  return hits.sort((a, b) => b.score - a.score || a.item.name.localeCompare(b.item.name)).slice(0, 10);
}

function marked(text: string, spans: readonly [number, number][]): DocumentFragment {
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const [s, e] of [...spans].sort((a, b) => a[0] - b[0])) {
    if (s < at) continue;
    fragment.append(document.createTextNode(text.slice(at, s)));
    const mark = document.createElement('mark');
    mark.textContent = text.slice(s, e);
    fragment.append(mark);
    at = e;
  }
  fragment.append(document.createTextNode(text.slice(at)));
  return fragment;
}

async function publishedSubprocessors(): Promise<PublishedSubprocessor[]> {
  try {
    const res = await fetch('/api/v1/subprocessors.json');
    if (!res.ok) return [];
    const body = (await res.json()) as SubprocessorsJson;
    const announced = body.coming.filter((c) => c.change === 'added').map((c) => c.subprocessor);
    return [...body.subprocessors, ...announced.filter((a) => !body.subprocessors.some((s) => s.id === a.id))];
  } catch {
    return [];
  }
}

function showSubprocessors(hits: readonly SubprocessorHit[]): void {
  if (!found || !foundSection) return;
  found.replaceChildren();
  for (const { item, purposeMarks } of hits) {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = `/subprocessors#sp-${encodeURIComponent(item.id)}`;
    link.textContent = item.name;
    const facts = document.createElement('p');
    facts.className = 'meta';
    facts.textContent = [item.entity, categoryLabels[item.category] ?? item.category, item.location].join(' · ');
    const purpose = document.createElement('p');
    purpose.append(marked(item.purpose, purposeMarks));
    li.append(link, facts, purpose);
    found.append(li);
  }
  foundSection.hidden = hits.length === 0;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

async function run(query: string): Promise<void> {
  if (!list || !statusLine) return;
  list.replaceChildren();
  showSubprocessors([]);
  if (listTitle) listTitle.hidden = true;
  if (query.trim() === '') {
    statusLine.textContent = 'Type a word to search the documents and subprocessors.';
    return;
  }
  statusLine.textContent = 'Searching…';
  const indexUrl = '/pagefind/pagefind.js';
  pagefind ??= import(/* @vite-ignore */ indexUrl) as Promise<Pagefind>;
  subprocessors ??= publishedSubprocessors();
  const [{ results }, items] = await Promise.all([(await pagefind).search(query), subprocessors]);
  const hits = matchSubprocessors(items, query);
  showSubprocessors(hits);
  const top = await Promise.all(results.slice(0, 20).map((r) => r.data()));
  for (const result of top) {
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.href = result.url
      .replace(/\/index\.html$/, '')
      .replace(/\.html$/, '')
      .replace(/(.)\/$/, '$1');
    link.textContent = result.meta.title ?? result.url;
    const excerpt = document.createElement('p');
    excerpt.append(safeExcerpt(result.excerpt));
    item.append(link, excerpt);
    list.append(item);
  }
  if (listTitle) listTitle.hidden = top.length === 0 || hits.length === 0;
  const counts = [
    ...(results.length ? [plural(results.length, 'document')] : []),
    ...(hits.length ? [plural(hits.length, 'subprocessor')] : []),
  ];
  statusLine.textContent =
    counts.length === 0
      ? `Nothing matches “${query}”.`
      : `${counts.join(' and ')} ${results.length + hits.length === 1 ? 'matches' : 'match'} “${query}”.`;
}

if (form && input) {
  const initial = new URLSearchParams(location.search).get('q') ?? '';
  input.value = initial;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const url = new URL(location.href);
    url.searchParams.set('q', input.value);
    history.replaceState(null, '', url);
    void run(input.value);
  });
  if (initial) void run(initial);
  document.documentElement.dataset.searchReady = 'true';
}
