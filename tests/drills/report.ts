/** The drills' results as tables a person reads: one row per channel, the broken promises last. */
import type { CrashDrillResult } from './crash.drill.ts';
import type { OutageDrillResult } from './outage.drill.ts';
import { CHANNELS } from './world.ts';

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const ms = (value: number | null) =>
  value === null ? '-' : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;

function verdict(violations: string[]): string {
  return violations.length === 0
    ? 'every promise kept'
    : `${violations.length} BROKEN PROMISE${violations.length > 1 ? 'S' : ''}:\n${violations.map((v) => `  - ${v}`).join('\n')}`;
}

export function crashReport(r: CrashDrillResult): string {
  const rows = CHANNELS.map((c) => {
    const f = r.channels[c];
    return [
      c,
      r.limits[c],
      `${f.delivered}/${f.recipients}`,
      String(f.messages),
      String(f.duplicates),
      String(f.reconciled),
      `${f.maxStranded} (${f.totalStranded})`,
      String(f.maxInFlightAtProvider),
      `${ms(f.medianRecoverMs)} / ${ms(f.maxRecoverMs)}`,
      c === 'email' ? String(f.idempotentReplays ?? 0) : '-',
    ];
  });
  const several = r.servers > 1;
  const moments = r.kills.map((k) => `${(k.progress * 100).toFixed(0)} %${several ? ` (#${k.node})` : ''}`).join(', ');
  const perNode = Array.from({ length: r.servers }, (_, i) => r.kills.filter((k) => k.node === i).length);
  const allDown = r.kills.filter((k) => k.serving === 1).length;
  return [
    several
      ? `${r.engine}, ${r.servers} servers on one database, each with its dispatcher: ${r.kills.length} SIGKILLs (${perNode.map((n, i) => `#${i} ${n}`).join(', ')}; ${allDown} left none serving) (seed ${r.seed}, lease ${r.leaseSeconds} s), at ${moments} of the fan-out; ${r.seconds.toFixed(1)} s in all`
      : `${r.engine}: ${r.kills.length} SIGKILLs of the server (seed ${r.seed}, lease ${r.leaseSeconds} s), at ${moments} of the fan-out; ${r.seconds.toFixed(1)} s in all`,
    `Slack: ${r.slackThreads ? 'each message a thread root (a root claim left by a kill holds its recipient for 60 s)' : 'plain messages, no threads'}`,
    `restart (kill to serving again): median ${ms(r.restartMs.median)}, max ${ms(r.restartMs.max)}; ` +
      `stranded deliveries sent (kill to the last of them sent): median ${ms(r.strandedDoneMs.median)}, max ${ms(r.strandedDoneMs.max)}`,
    `deliveries: ${Object.entries(r.statuses)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ')}`,
    '',
    table(
      [
        'channel',
        'limit',
        'received',
        'messages',
        'duplicates',
        'reconciled',
        'in-flight window: max (sum)',
        'max at provider',
        'recovery median / max',
        'idempotent replays',
      ],
      rows,
    ),
    '',
    'in-flight window: deliveries a killed server had claimed and not recorded (a duplicate may only come from these);',
    `at provider: requests received and not yet answered at the kill${several ? ' (from any server)' : ''}; recovery: kill to the provider’s next request${several ? ' (from any server)' : ', restart included'}`,
    'reconciled: deliveries recorded sent because the provider, asked after a kill, already had the message (not sent again);',
    `webhook duplicates carry their first delivery’s webhook-id, so a receiver deduplicating by it (Standard Webhooks) drops them; repeats with a changed webhook-id: ${r.webhookIdChanges} (must be 0)`,
    '',
    verdict(r.violations),
  ].join('\n');
}

export function outageReport(r: OutageDrillResult): string {
  const rows = r.phases.map((p) => {
    const others = CHANNELS.filter((c) => c !== p.provider)
      .map((c) => `${c} ${ms(p.channels[c].doneMs)}`)
      .join(', ');
    const own = p.channels[p.provider];
    return [
      p.provider,
      `${own.delivered}/${own.recipients}, ${own.duplicates} dup`,
      String(p.answered5xx),
      String(p.retryAfter.limited),
      p.retryAfter.earliestMarginMs === null ? '-' : `${p.retryAfter.earliestMarginMs >= 0 ? '+' : ''}${p.retryAfter.earliestMarginMs} ms`,
      String(p.retryAfter.raced),
      String(p.retryAfter.early),
      ms(p.firstSuccessAfterFaultMs),
      ms(p.recoverMs),
      `${p.maxAttempts} / ${p.meanAttempts.toFixed(1)}`,
      others,
    ];
  });
  const { outageMs, stormMs, retryAfterSeconds } = r.fault;
  return [
    `${r.engine}, ${r.dispatchers} dispatcher${r.dispatchers > 1 ? 's' : ''} on one database; ` +
      `each provider in turn: 503 for ${outageMs / 1000} s, then 429 with Retry-After ${retryAfterSeconds} s for ${stormMs / 1000} s; ` +
      `retry policy base ${r.retry.baseMs} ms, cap ${r.retry.capMs / 1000} s, ${r.retry.maxAttempts} attempts; ${r.seconds.toFixed(1)} s in all`,
    '',
    table(
      [
        'failing',
        'its recipients',
        '5xx',
        '429',
        'earliest after Retry-After',
        'raced',
        'early',
        'first success after storm',
        'recovered after storm',
        'attempts max / mean',
        'other channels done at',
      ],
      rows,
    ),
    '',
    'earliest after Retry-After: over every 429, the next request to the same limiter key minus the moment Retry-After allowed it (never negative);',
    'raced: requests another dispatcher had decided before a 429 was recorded (allowed: its concurrency per 429); early: any other before Retry-After;',
    'recovered: from the end of the storm to the failing channel’s last delivery sent',
    '',
    verdict(r.violations),
  ].join('\n');
}
