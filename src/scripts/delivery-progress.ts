/**
 * Keeps the delivery counts on the console current while sends are under
 * way, by polling the progress endpoint. Without JavaScript the page shows
 * the counts as of loading.
 */
interface Progress {
  id: number;
  total: number;
  finished: number;
  channels: Record<string, Record<string, number>>;
}

const blocks = [...document.querySelectorAll<HTMLElement>('[data-notification]')];
const ids = blocks.map((b) => b.dataset.notification).filter(Boolean);

function update(p: Progress): void {
  const block = document.querySelector<HTMLElement>(`[data-notification="${p.id}"]`);
  if (!block) return;
  const finished = block.querySelector('[data-field="finished"]');
  if (finished) finished.textContent = String(p.finished);
  const bar = block.querySelector('progress');
  if (bar) bar.value = p.total === 0 ? 1 : p.finished;
  for (const [channel, counts] of Object.entries(p.channels)) {
    for (const [status, n] of Object.entries(counts)) {
      const cell = block.querySelector(`tr[data-channel="${channel}"] td[data-status="${status}"]`);
      if (cell) cell.textContent = String(n);
    }
  }
}

async function poll(): Promise<void> {
  const res = await fetch(`/console/deliveries/progress.json?ids=${ids.join(',')}`, { headers: { accept: 'application/json' } });
  if (!res.ok) return;
  const list = (await res.json()) as Progress[];
  list.forEach(update);
  if (list.some((p) => p.finished < p.total)) setTimeout(() => void poll(), 1500);
}

if (ids.length) setTimeout(() => void poll(), 1500);
