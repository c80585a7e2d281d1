/**
 * The job that publishes what staff scheduled for later (a change notice,
 * an announcement): the publication and the job's completion are one
 * transaction, so a restart cannot publish twice; one refused at its time
 * (the server was down past its dates) goes back to draft, and staff are
 * told by the `failed` step. Also what the flows of notices and
 * announcements share: `Refused`, a refusal found after something was
 * written, which rolls the transaction back.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import type { Site } from '../content/schema.ts';
import { completeJob, type JobHandler } from '../jobs/jobs.ts';
import type { NoticeContext } from './notices.ts';

/**
 * A refusal found inside a transaction once it may have written something (a conditional update
 * that changed nothing: another caller got there first): thrown, so the transaction is rolled back,
 * and turned into the flow's `{ ok: false }` by `refusedAs`.
 */
export class Refused extends Error {}

/** The flow's result, or its refusal when the transaction was rolled back by `Refused`. */
export async function refusedAs<T>(running: Promise<T>): Promise<T | { ok: false; message: string }> {
  try {
    return await running;
  } catch (err) {
    if (err instanceof Refused) return { ok: false, message: err.message };
    throw err;
  }
}

export interface ScheduledPublication<T> {
  /** the job payload's field holding the id */
  idField: string;
  /** the item, locked for the rest of the transaction on PostgreSQL */
  load(tx: Tx, id: number): Promise<T | null | undefined>;
  publish(tx: Tx, ctx: NoticeContext, item: T): Promise<{ ok: true } | { ok: false; message: string }>;
  failed(tx: Tx, ctx: NoticeContext, item: T, reason: string): Promise<void>;
}

/** The context of a publication nobody is at the keyboard for. */
function schedulerContext(deps: { database: Database; site: Site; publicUrl: URL }, now: Date): NoticeContext {
  return {
    database: deps.database,
    now,
    site: deps.site,
    publicUrl: deps.publicUrl,
    actor: null,
    ip: null,
    userAgent: 'candor scheduler',
  };
}

export function scheduledPublication<T extends { status: string }>(
  deps: { database: Database; site: Site; publicUrl: URL },
  spec: ScheduledPublication<T>,
): JobHandler {
  return async (job, now) => {
    const id = Number(job.payload[spec.idField]);
    const ctx = schedulerContext(deps, now);
    await ctx.database.transaction(async (tx) => {
      const item = await spec.load(tx, id);
      if (item?.status === 'scheduled') {
        const result = await spec.publish(tx, ctx, item);
        if (!result.ok) await spec.failed(tx, ctx, item, result.message);
      }
      await completeJob(tx, job.id, now);
    });
  };
}
