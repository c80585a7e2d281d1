/**
 * Client side of /search: queries the static Pagefind index built from the
 * docs. Results are built with DOM APIs; only Pagefind's excerpt, which it
 * escapes and marks up with <mark>, is parsed as HTML.
 */
interface PagefindResult {
  data: () => Promise<{ url: string; excerpt: string; meta: { title?: string } }>;
}
interface Pagefind {
  search: (query: string) => Promise<{ results: PagefindResult[] }>;
}

const form = document.querySelector<HTMLFormElement>('#search-form');
const input = document.querySelector<HTMLInputElement>('#search-q');
const list = document.querySelector<HTMLOListElement>('#search-results');
const statusLine = document.querySelector<HTMLElement>('#search-status');
let pagefind: Promise<Pagefind> | undefined;

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

async function run(query: string): Promise<void> {
  if (!list || !statusLine) return;
  list.replaceChildren();
  if (query.trim() === '') {
    statusLine.textContent = 'Type a word to search the documents.';
    return;
  }
  statusLine.textContent = 'Searching…';
  const indexUrl = '/pagefind/pagefind.js';
  pagefind ??= import(/* @vite-ignore */ indexUrl) as Promise<Pagefind>;
  const { results } = await (await pagefind).search(query);
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
  statusLine.textContent =
    top.length === 0
      ? `No document mentions “${query}”.`
      : `${results.length} document${results.length === 1 ? '' : 's'} match “${query}”.`;
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
