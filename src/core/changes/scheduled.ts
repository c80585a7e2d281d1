/**
 * The job that publishes what staff scheduled for later (a change notice,
 * an announcement): the publication and the job's completion are one
 * transaction, so a restart cannot publish twice; one refused at its time
 * (the server was down past its dates) goes back to draft, and staff are
 * told by the `failed` step.
 */
import type { Db } from '../../../db/client.ts';
import type { Site } from '../content/schema.ts';
import type { JobHandler } from '../jobs/jobs.ts';
import { completeJob } from '../jobs/legacy.ts';
import type { NoticeContext } from './notices.ts';

export interface ScheduledPublication<T> {
  /** the job payload's field holding the id */
  idField: string;
  load(db: Db, id: number): T | null | undefined;
  publish(ctx: NoticeContext, item: T): { ok: true } | { ok: false; message: string };
  failed(ctx: NoticeContext, item: T, reason: string): void;
}

/** The context of a publication nobody is at the keyboard for. */
function schedulerContext(deps: { db: Db; site: Site; publicUrl: URL }, now: Date): NoticeContext {
  return { db: deps.db, now, site: deps.site, publicUrl: deps.publicUrl, actor: null, ip: null, userAgent: 'candor scheduler' };
}

export function scheduledPublication<T extends { status: string }>(
  deps: { db: Db; site: Site; publicUrl: URL },
  spec: ScheduledPublication<T>,
): JobHandler {
  return (job, now) => {
    const id = Number(job.payload[spec.idField]);
    const ctx = schedulerContext(deps, now);
    deps.db.$client
      .transaction(() => {
        const item = spec.load(deps.db, id);
        if (item?.status === 'scheduled') {
          const result = spec.publish(ctx, item);
          if (!result.ok) spec.failed(ctx, item, result.message);
        }
        completeJob(deps.db, job.id, now);
      })
      .immediate();
  };
}
