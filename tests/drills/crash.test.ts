/**
 * The crash drill at CI size (`npm run drills` runs it with 20 kills over 10,000 recipients), on
 * each engine: on SQLite the server is SIGKILLed four times during a fan-out on all four channels
 * and restarted on the same database; on PostgreSQL (when CANDOR_TEST_POSTGRES_URL is set) two
 * servers share the database and the kills fall on either, each restarting while the other goes on.
 */
import { describe, expect, it } from 'vitest';
import { runCrashDrill } from './crash.drill.ts';
import { ciCrash } from './presets.ts';
import { crashReport } from './report.ts';
import { CHANNELS, type DrillChannel, drillEngines } from './world.ts';

/**
 * Channels where a kill may cause no duplicate at all: email by its idempotency key, SMS and Slack by
 * asking Twilio / Slack whether the killed send arrived before sending again (reconcile()); webhooks
 * stay out (no way to ask a receiver; a repeat keeps its webhook-id, so the receiver drops it).
 */
const EXACTLY_ONCE: readonly DrillChannel[] = ['email', 'sms', 'slack'];

describe.each(drillEngines())('crash drill (CI size) on %s', (engine) => {
  it('after SIGKILLs mid-fan-out every delivery is final, each recipient has its message, no email went twice', async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const options = ciCrash(engine, seed, () => {});
    const result = await runCrashDrill(options);
    const report = crashReport(result);
    // the figures (lost, duplicated, reconciled per channel) in the run's log, passed or not
    process.stdout.write(`\n${report}\n`);
    const total = CHANNELS.reduce((n, c) => n + options.recipients[c], 0);

    expect(result.violations, report).toEqual([]);
    expect(result.kills, report).toHaveLength(options.kills);
    expect(result.statuses, report).toEqual({ sent: total });
    for (const channel of CHANNELS) {
      const figures = result.channels[channel];
      expect(figures.missing, `${channel}\n${report}`).toBe(0);
      // beyond the in-flight window nothing may double: the window bounds the duplicates from above
      expect(figures.duplicates, `${channel}\n${report}`).toBeLessThanOrEqual(figures.totalStranded);
    }
    expect(result.channels.email.duplicates, report).toBe(0);
    for (const channel of EXACTLY_ONCE) expect(result.channels[channel].duplicates, `${channel}\n${report}`).toBe(0);
    expect(result.webhookIdChanges, report).toBe(0);
    // the kills did land while deliveries were claimed and unrecorded, or the drill proved little
    expect(
      result.kills.some((k) => CHANNELS.some((c) => k.stranded[c] > 0)),
      report,
    ).toBe(true);
  }, 150_000);
});
