/**
 * `npm run candor -- <command>`: operator commands. Each command is one
 * module under src/cli/ registered below; they open the same database and
 * configuration as the server.
 */
import { adminCreate } from './cli/admin-create.ts';
import { adminReset } from './cli/admin-reset.ts';
import { auditVerify } from './cli/audit-verify.ts';
import { type CliCommand, CliError } from './cli/command.ts';
import { keysRotate } from './cli/keys-rotate.ts';
import { worker } from './cli/worker.ts';
import { ConfigError } from './core/config/env.ts';
import { ContentError } from './core/content/errors.ts';
import { DatabaseError } from './runtime/context.ts';

const commands: CliCommand[] = [adminCreate, adminReset, auditVerify, keysRotate, worker];

function usage(): string {
  const lines = commands.map((c) => `  ${c.usage.padEnd(44)} ${c.summary}`);
  return ['usage: npm run candor -- <command>', '', 'commands:', ...lines].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const command = commands.find((c) => c.name.every((word, i) => argv[i] === word));
  if (!command) {
    console.error(argv.length ? `unknown command: ${argv.join(' ')}\n\n${usage()}` : usage());
    return 2;
  }
  try {
    return await command.run(argv.slice(command.name.length));
  } catch (err) {
    if (err instanceof CliError || err instanceof ConfigError || err instanceof DatabaseError || err instanceof ContentError) {
      console.error(`candor: ${err.message}`);
      return err instanceof CliError ? err.exitCode : 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
