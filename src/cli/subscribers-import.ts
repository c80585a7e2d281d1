/**
 * `candor subscribers import <file> --format statuspage|instatus|candor [--dry-run] [--consent carry-over|confirm]`:
 * the console's import (src/core/subscriptions/import.ts) from the terminal, the file streamed from
 * disk; prints the counts and the refused rows. Audited as the system (`candor cli`).
 */
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { importSubscribers, parseConsent, parseFormat } from '../core/subscriptions/import.ts';
import { type CliCommand, CliError, openContext, parseOptions } from './command.ts';

export const subscribersImport: CliCommand = {
  name: ['subscribers', 'import'],
  usage: 'subscribers import <file> --format statuspage|instatus|candor [--dry-run] [--consent carry-over|confirm]',
  summary: 'import subscribers from a Statuspage, Instatus or Candor export (consent: confirm by default)',
  async run(args) {
    const { values, positionals } = parseOptions(args, {
      format: { type: 'string' },
      consent: { type: 'string' },
      'dry-run': { type: 'boolean' },
    });
    const [file, ...extra] = positionals;
    if (!file || extra.length > 0) throw new CliError(`usage: npm run candor -- ${this.usage}`, 2);
    const format = parseFormat(values.format);
    if (!format) throw new CliError('--format must be statuspage, instatus or candor', 2);
    const consent = parseConsent(values.consent ?? 'confirm');
    if (!consent) throw new CliError('--consent must be carry-over or confirm', 2);
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
    } catch {
      throw new CliError(`cannot read ${file}: no such file`);
    }
    const context = await openContext();
    try {
      const result = await importSubscribers(
        {
          database: context.database,
          keys: context.keys,
          now: () => context.now(),
          publicUrl: context.config.publicUrl,
          organisation: context.content.site.organisation.name,
          components: context.content.components.map((c) => ({ id: c.id, name: c.name })),
          audit: { actor: { type: 'system' }, ip: null, userAgent: 'candor cli' },
          staffId: null,
        },
        createReadStream(file),
        { format, consent, dryRun: values['dry-run'] ?? false, fileName: basename(file) },
      );
      if (!result.ok) throw new CliError(result.message);
      const c = result.counts;
      console.log(
        `${result.dryRun ? 'dry run (nothing written)' : 'imported'}: run #${result.importId}, ${format}, consent ${consent.replace('_', '-')}`,
      );
      console.log(`rows ${c.rows}`);
      console.log(
        `${result.dryRun ? 'would import' : 'imported'} ${c.imported} (consent carried over ${c.carriedOver}, confirmation requested ${c.confirmationRequested})`,
      );
      console.log(`unchanged ${c.unchanged}`);
      console.log(`refused ${c.refused}`);
      for (const r of result.refused) console.log(`  line ${r.line}${r.address ? ` ${r.address}` : ''}: ${r.reason}`);
      if (c.refused > result.refused.length) console.log(`  … and ${c.refused - result.refused.length} more`);
      if (result.stoppedAt) {
        console.error(result.stoppedAt.message);
        return 1;
      }
      return 0;
    } finally {
      await context.database.close();
    }
  },
};
