/** Change detection as the server runs it at start and `candor changes detect` runs it on demand. */
import { detectChanges } from '../core/changes/notices.ts';
import type { AppContext } from './context.ts';

export async function detectContentChanges(context: AppContext): Promise<{ drafted: string[]; superseded: number }> {
  const { drafted, superseded } = await detectChanges(
    {
      database: context.database,
      now: context.now(),
      site: context.content.site,
      publicUrl: context.config.publicUrl,
      actor: null,
      ip: null,
      userAgent: 'candor changes detect',
    },
    context.content,
  );
  return { drafted: drafted.map((n) => `${n.diff.subject} ${n.diff.change}: ${n.diff.name}`), superseded };
}
