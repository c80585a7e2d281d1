/**
 * `npm run candor -- <command>`: operator commands. Each command is one
 * module under src/cli/, loaded only when chosen (the worker, a long-lived
 * process, does not carry the admin commands' libraries); they open the
 * same database and configuration as the server.
 */
import { type CliCommand, CliError } from './cli/command.ts';
import { ConfigError } from './core/config/env.ts';
import { ContentError } from './core/content/errors.ts';
import { DatabaseError } from './runtime/context.ts';

const registry: { name: string[]; load: () => Promise<CliCommand> }[] = [
  { name: ['admin', 'create'], load: async () => (await import('./cli/admin-create.ts')).adminCreate },
  { name: ['admin', 'reset'], load: async () => (await import('./cli/admin-reset.ts')).adminReset },
  { name: ['audit', 'verify'], load: async () => (await import('./cli/audit-verify.ts')).auditVerify },
  { name: ['db', 'copy'], load: async () => (await import('./cli/db-copy.ts')).dbCopy },
  { name: ['db', 'migrate'], load: async () => (await import('./cli/db-migrate.ts')).dbMigrate },
  { name: ['evidence', 'export'], load: async () => (await import('./cli/evidence.ts')).evidenceExport },
  { name: ['evidence', 'verify'], load: async () => (await import('./cli/evidence.ts')).evidenceVerify },
  { name: ['changes', 'detect'], load: async () => (await import('./cli/changes-detect.ts')).changesDetect },
  { name: ['backup'], load: async () => (await import('./cli/backup.ts')).backup },
  { name: ['keys', 'rotate'], load: async () => (await import('./cli/keys-rotate.ts')).keysRotate },
  { name: ['subscribers', 'import'], load: async () => (await import('./cli/subscribers-import.ts')).subscribersImport },
  { name: ['restore'], load: async () => (await import('./cli/restore.ts')).restore },
  { name: ['worker'], load: async () => (await import('./cli/worker.ts')).worker },
];

async function usage(): Promise<string> {
  const commands = await Promise.all(registry.map((r) => r.load()));
  const lines = commands.map((c) => `  ${c.usage.padEnd(44)} ${c.summary}`);
  return ['usage: npm run candor -- <command>', '', 'commands:', ...lines].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const entry = registry.find((c) => c.name.every((word, i) => argv[i] === word));
  if (!entry) {
    console.error(argv.length ? `unknown command: ${argv.join(' ')}\n\n${await usage()}` : await usage());
    return 2;
  }
  const command = await entry.load();
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
