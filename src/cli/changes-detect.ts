/**
 * `candor changes detect`: compares content/ with what was published and
 * drafts a notice for each difference (the server also does this at start).
 * Running it again on the same content drafts nothing new.
 */
import { detectContentChanges } from '../runtime/changes.ts';
import { type CliCommand, CliError, openContext } from './command.ts';

export const changesDetect: CliCommand = {
  name: ['changes', 'detect'],
  usage: 'changes detect',
  summary: 'draft a notice for each change in content/ since the last publication',
  async run(args) {
    if (args.length > 0) throw new CliError(`changes detect takes no arguments, got: ${args.join(' ')}`, 2);
    const context = await openContext();
    try {
      const { drafted, superseded } = await detectContentChanges(context);
      if (drafted.length === 0) console.log('no new changes');
      for (const line of drafted) console.log(`drafted: ${line}`);
      if (superseded) console.log(`superseded ${superseded} draft(s) whose change is no longer in content/`);
      console.log('review and publish them in the console under Announcements');
      return 0;
    } finally {
      await context.database.close();
    }
  },
};
