/**
 * `candor audit verify`: recomputes the audit log's hash chain and names
 * the first entry that does not hold up. Exit 1 when the chain is broken,
 * so a scheduled check can alert on it.
 */
import { verifyAuditChain } from '../core/audit/log.ts';
import { type CliCommand, CliError, openContext } from './command.ts';

export const auditVerify: CliCommand = {
  name: ['audit', 'verify'],
  usage: 'audit verify',
  summary: 'recompute the audit log hash chain; name the first broken entry',
  async run(args) {
    if (args.length > 0) throw new CliError(`audit verify takes no arguments, got: ${args.join(' ')}`, 2);
    const context = openContext();
    try {
      const result = verifyAuditChain(context.db);
      if (result.ok) {
        console.log(`audit log verified: ${result.checked} entries, chain intact`);
        return 0;
      }
      console.log(`audit log BROKEN at entry #${result.firstBrokenId}: ${result.reason} (${result.checked} entries checked before it)`);
      return 1;
    } finally {
      context.db.$client.close();
    }
  },
};
