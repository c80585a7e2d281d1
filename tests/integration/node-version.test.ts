/**
 * First run on a machine whose Node.js is too old: `npm install` (its
 * preinstall script), `npm start` and `npm run candor` stop with one line
 * naming the version needed and how to get it, never a stack trace such as
 * ERR_UNKNOWN_FILE_EXTENSION. Driven through the machine's own older node
 * and npm (Debian ships Node 20); skipped only where no older node exists.
 * On a supported Node the launcher runs the server as before: flags kept,
 * SIGTERM passed on, the exit code kept.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, ROOT, tempDir } from '../helpers/server.ts';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string }; scripts: Record<string, string> };
const required = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(pkg.engines.node);
if (!required) throw new Error(`package.json engines.node is not ">=X.Y.Z": ${pkg.engines.node}`);
const [major, minor] = [Number(required[1]), Number(required[2])];
const recommended = readFileSync(join(ROOT, '.nvmrc'), 'utf8').trim();

const versionOf = (node: string) => execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
const tooOld = (version: string) => {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a < major || (a === major && b < minor);
};

/** The first node binary on the machine older than package.json asks for, with the npm beside it. */
function olderNode(): { bin: string; version: string } | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    const node = join(dir, 'node');
    if (!dir || !existsSync(node)) continue;
    const version = versionOf(node);
    if (tooOld(version) && existsSync(join(dir, 'npm'))) return { bin: dir, version };
  }
  return null;
}

const old = olderNode();
const expectedLine = (version: string) =>
  `Candor needs Node.js >= ${major}.${minor} (you have v${version}). Install it with nvm: \`nvm install\` (reads .nvmrc: Node.js ${recommended}), or see "The two commands" in README.md.`;

/** npm with the old node first on PATH, in the project: its output, npm's own "> script" banner left out. */
function npmOnOldNode(args: string[]): { status: number | null; lines: string[]; output: string } {
  if (!old) throw new Error('no older node');
  const result = spawnSync(join(old.bin, 'npm'), args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${old.bin}${delimiter}${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' },
    timeout: 60_000,
  });
  const output = `${result.stdout}${result.stderr}`;
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('> '));
  return { status: result.status, lines, output };
}

describe.skipIf(!old)(`on Node.js ${old?.version ?? '(none older on this machine)'}`, () => {
  it('`npm install` stops in its preinstall script with one line naming the version and .nvmrc', () => {
    // npm runs the project's preinstall script at the end of `npm install`; this is that script, run by npm.
    expect(pkg.scripts.preinstall, 'package.json scripts.preinstall').toBeDefined();
    const { status, lines, output } = npmOnOldNode(['run', 'preinstall']);
    expect(status).toBe(1);
    expect(lines).toEqual([expectedLine(old?.version ?? '')]);
    expect(output).not.toMatch(/\n\s+at |ERR_/);
  });

  it('`npm start` stops with the same line instead of ERR_UNKNOWN_FILE_EXTENSION', () => {
    const { status, lines, output } = npmOnOldNode(['start']);
    expect(status).toBe(1);
    expect(lines).toEqual([expectedLine(old?.version ?? '')]);
    expect(output).not.toMatch(/\n\s+at |ERR_UNKNOWN_FILE_EXTENSION/);
  });

  it('`npm run candor` stops with the same line', () => {
    const { status, lines, output } = npmOnOldNode(['run', 'candor', '--', 'admin', 'create', '--email', 'owner@example.com']);
    expect(status).toBe(1);
    expect(lines).toEqual([expectedLine(old?.version ?? '')]);
    expect(output).not.toMatch(/\n\s+at |ERR_/);
  });
});

describe(`on Node.js ${process.versions.node}`, () => {
  /** The arguments `npm <script>` gives node: package.json's command without its leading `node`. */
  const argsOf = (script: string) => {
    const command = pkg.scripts[script] ?? '';
    expect(command).toMatch(/^node scripts\/launch\.cjs /);
    return command.split(' ').slice(1);
  };

  it('the preinstall check passes silently', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'scripts/check-node.cjs')], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(`${result.stdout}${result.stderr}`).toBe('');
  });

  it('`npm start` serves with its V8 flags, passes SIGTERM on and exits as the server did', async () => {
    const args = argsOf('start');
    expect(args).toContain('--max-semi-space-size=8');
    const port = await freePort();
    const dataDir = tempDir();
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), CANDOR_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not serving:\n${output}`)), 120_000);
      child.stdout.on('data', () => {
        if (output.includes('serving ')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => reject(new Error(`exited ${code}:\n${output}`)));
    });
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/trust.json`)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('SIGTERM received');
    expect(output).toContain('stopped');
  });

  it('`npm run candor` keeps the command line and the exit code', () => {
    const args = argsOf('candor');
    expect(args).toEqual(expect.arrayContaining(['--max-semi-space-size=4', '--max-old-space-size=1024']));
    const run = (argv: string[]) =>
      spawnSync(process.execPath, [...argv, 'no-such-command'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, CANDOR_DATA_DIR: tempDir() },
      });
    const launched = run(args);
    const direct = run(['src/cli.ts']);
    expect(direct.status).not.toBe(0);
    expect({ status: launched.status, stdout: launched.stdout, stderr: launched.stderr }).toEqual({
      status: direct.status,
      stdout: direct.stdout,
      stderr: direct.stderr,
    });
  });
});
