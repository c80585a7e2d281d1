/**
 * The outage drill at CI size (`npm run drills` runs it with the production retry policy and
 * longer faults), on each engine (PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, with two
 * dispatchers sharing the database): each provider in turn answers 503, then 429 with
 * Retry-After, during a fan-out on all four channels.
 */
import { describe, expect, it } from 'vitest';
import { runOutageDrill } from './outage.drill.ts';
import { ciOutage } from './presets.ts';
import { outageReport } from './report.ts';
import { CHANNELS, drillEngines } from './world.ts';

describe.each(drillEngines())('outage drill (CI size) on %s', (engine) => {
  it('each provider down, then rate-limiting: everything delivered once after recovery, nothing before Retry-After', async () => {
    const options = ciOutage(engine, () => {});
    const result = await runOutageDrill(options);
    const report = outageReport(result);
    const total = CHANNELS.reduce((n, c) => n + options.recipients[c], 0);

    expect(result.violations, report).toEqual([]);
    expect(result.phases.map((p) => p.provider)).toEqual([...CHANNELS]);
    for (const phase of result.phases) {
      expect(phase.statuses, `${phase.provider}\n${report}`).toEqual({ sent: total });
      expect(phase.answered5xx, `${phase.provider}\n${report}`).toBeGreaterThan(0);
      expect(phase.retryAfter.limited, `${phase.provider}\n${report}`).toBeGreaterThan(0);
      expect(phase.retryAfter.early, `${phase.provider}\n${report}`).toBe(0);
      // one dispatcher: nothing raced a 429; several: at most each other one's concurrency per 429
      expect(phase.retryAfter.raced, `${phase.provider}\n${report}`).toBeLessThanOrEqual(
        phase.retryAfter.limited * (options.dispatchers - 1) * options.limits[phase.provider].concurrency,
      );
      expect(phase.retryAfter.earliestMarginMs, `${phase.provider}\n${report}`).toBeGreaterThanOrEqual(0);
      for (const channel of CHANNELS) {
        expect(phase.channels[channel].missing, `${phase.provider}/${channel}\n${report}`).toBe(0);
        expect(phase.channels[channel].duplicates, `${phase.provider}/${channel}\n${report}`).toBe(0);
      }
    }
  }, 120_000);
});
