/**
 * `candor audit verify`: recomputes the audit log's keyed chain and names
 * the first entry that does not hold up (its id, time, action and why).
 * Exit 1 when the chain is broken or cannot be verified, so a scheduled
 * check can alert on it. `--anchor ID:MAC` also checks that an entry kept
 * from an earlier run is still there, unchanged: the one thing the file
 * alone cannot show is entries cut from its end.
 */
import { type AuditKeyring, boundAuditKeys } from '../core/audit/key.ts';
import { type AuditAnchor, type AuditVerification, describeFailure, verifyAuditChain } from '../core/audit/log.ts';
import { type CliCommand, CliError, openContext, parseOptions } from './command.ts';

const ANCHOR = /^(\d{1,15}):([0-9a-fA-F]{16,64})$/;

export const auditVerify: CliCommand = {
  name: ['audit', 'verify'],
  usage: 'audit verify [--anchor ID:MAC]',
  summary: 'recompute the audit log chain; name the first broken entry',
  async run(args) {
    const { values, positionals } = parseOptions(args, { anchor: { type: 'string' } });
    if (positionals.length > 0) throw new CliError(`audit verify takes no arguments, got: ${positionals.join(' ')}`, 2);
    const anchor = values.anchor === undefined ? undefined : parseAnchor(values.anchor);
    const context = await openContext();
    try {
      const keyring = boundAuditKeys(context.database);
      const result = await verifyAuditChain(context.database, keyring, anchor ? { anchor } : {});
      for (const line of verificationReport(result, keyring)) console.log(line);
      return result.ok ? 0 : 1;
    } finally {
      await context.database.close();
    }
  },
};

function parseAnchor(raw: string): AuditAnchor {
  const match = ANCHOR.exec(raw.trim());
  if (!match?.[1] || !match[2]) {
    throw new CliError(`--anchor must be ENTRY:MAC as an earlier audit verify printed it (e.g. 4:5d41402abc4b2a76), got "${raw}"`, 2);
  }
  return { id: Number(match[1]), mac: match[2].toLowerCase() };
}

/** What `audit verify` (and `restore`) print about a verification. */
export function verificationReport(result: AuditVerification, keyring: AuditKeyring): string[] {
  if (!result.ok) {
    const verdict = result.problem === 'unknown-key' ? 'NOT VERIFIABLE' : result.problem === 'unsealed' ? 'NOT SEALED' : 'BROKEN';
    const entries = `${result.checked} ${result.checked === 1 ? 'entry' : 'entries'} checked`;
    // Unsealed plain entries are found after reading them all; any other failure stops at the entry it names.
    return [`audit log ${verdict} at ${describeFailure(result)} (${entries}${result.problem === 'unsealed' ? '' : ' before it'})`];
  }
  const lines = [`audit log verified: ${result.checked} entries, chain intact`];
  const source = (keyId: string) => (keyId === keyring.current.id ? 'CANDOR_SECRET' : 'CANDOR_PREVIOUS_SECRETS');
  for (const { keyId, fromId } of result.keys) {
    lines.push(`sealed with HMAC-SHA256 under audit key ${keyId} (from ${source(keyId)}) from entry #${fromId}`);
  }
  if (result.plain) {
    lines.push(`${result.plain.count} older plain SHA-256 entries before it, sealed by entry #${result.plain.sealedBy}`);
  }
  if (result.head) {
    const { id, at, action, mac } = result.head;
    const anchor = `${id}:${mac.slice(0, 16)}`;
    lines.push(`newest entry: #${id} (${at.toISOString().replace('T', ' ').slice(0, 19)} UTC, ${action}), anchor ${anchor}`);
    lines.push(`to notice entries cut from the end later, keep the anchor outside this server and run: audit verify --anchor ${anchor}`);
  }
  return lines;
}
