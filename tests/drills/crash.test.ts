/**
 * The crash drill at CI size (`npm run drills` runs it with 20 kills over 10,000 recipients):
 * the server is SIGKILLed four times during a fan-out on all four channels and restarted on
 * the same database.
 */
import { describe, expect, it } from 'vitest';
import { runCrashDrill } from './crash.drill.ts';
import { ciCrash } from './presets.ts';
import { crashReport } from './report.ts';
import { CHANNELS } from './world.ts';

describe('crash drill (CI size)', () => {
  it('after SIGKILLs mid-fan-out every delivery is final, each recipient has its message, no email went twice', async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const result = await runCrashDrill(ciCrash(seed, () => {}));
    const report = crashReport(result);

    expect(result.violations, report).toEqual([]);
    expect(result.kills, report).toHaveLength(4);
    expect(result.statuses, report).toEqual({ sent: 1800 });
    for (const channel of CHANNELS) {
      const figures = result.channels[channel];
      expect(figures.missing, `${channel}\n${report}`).toBe(0);
      // beyond the in-flight window nothing may double: the window bounds the duplicates from above
      expect(figures.duplicates, `${channel}\n${report}`).toBeLessThanOrEqual(figures.totalStranded);
    }
    expect(result.channels.email.duplicates, report).toBe(0);
    // the kills did land while deliveries were claimed and unrecorded, or the drill proved little
    expect(
      result.kills.some((k) => CHANNELS.some((c) => k.stranded[c] > 0)),
      report,
    ).toBe(true);
  }, 120_000);
});
