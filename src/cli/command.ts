import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type AuditKeyring, auditKeyring } from '../core/audit/key.ts';
import { sealChainUpgradeNow } from '../core/audit/log.ts';
import { type Config, readConfig } from '../core/config/env.ts';
import { type AppContext, createAppContext } from '../runtime/context.ts';

export interface CliCommand {
  /** the words that select it, e.g. ['audit', 'verify'] */
  name: string[];
  usage: string;
  summary: string;
  run: (args: string[]) => Promise<number>;
}

/** A failure the operator can act on: printed as one line, no stack trace. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export const ROOT = join(import.meta.dirname, '../..');

/** The same context the server builds, from the same environment. */
export async function openContext(): Promise<AppContext> {
  const context = await createAppContext(readConfig(process.env, process.cwd()), ROOT);
  // A command that upgraded the database seals the older audit entries at once: no later process may (log.ts).
  await sealChainUpgradeNow(context.database, context.now());
  return context;
}

/**
 * The encryption keyring on PostgreSQL, where keys come from the environment only (a secrets.json in one
 * node's data dir would differ from the next node's): the current key first, then previous ones.
 */
export function postgresKeys(config: Config): Buffer[] {
  if (!config.encryptionKey) {
    throw new CliError(
      "CANDOR_ENCRYPTION_KEY is not set: on PostgreSQL the encryption key comes from the environment (secrets.json is not used); set it to the installation's key",
    );
  }
  return [config.encryptionKey, ...config.previousKeys];
}

/** The audit keys on PostgreSQL: from CANDOR_SECRET (and CANDOR_PREVIOUS_SECRETS) only, as the encryption key. */
export function postgresAuditKeys(config: Config, what: string): AuditKeyring {
  if (!config.secret) {
    throw new CliError(
      `CANDOR_SECRET is not set: on PostgreSQL it comes from the environment (secrets.json is not used), and ${what} verifies the audit chain with it`,
    );
  }
  return auditKeyring(config.secret, config.previousSecrets);
}

export function parseOptions<T extends Record<string, { type: 'string' | 'boolean' }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

/**
 * Ctrl-C or SIGTERM aborts the returned signal instead of killing the
 * process, so a command stops between steps and removes its temporary files.
 */
export function untilSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    },
  };
}
