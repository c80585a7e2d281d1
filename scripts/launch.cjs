/*
 * What `npm start` and `npm run candor` run: checks the Node.js version first
 * (scripts/check-node.cjs: one line and exit 1 on a version too old to load
 * TypeScript, instead of ERR_UNKNOWN_FILE_EXTENSION and a stack trace), then
 * runs the rest of its arguments with this same node binary:
 *
 *   node scripts/launch.cjs --max-semi-space-size=8 src/server.ts
 *
 * The child shares the terminal; SIGINT, SIGTERM and SIGHUP sent to the
 * launcher are passed on (the server stops gracefully on them, and ignores
 * a second one), and the launcher exits as the child did. Plain CommonJS in
 * syntax old versions parse: this file must load on the Node.js it refuses.
 */
'use strict';

require('./check-node.cjs').requireSupportedNode();

const { spawn } = require('child_process');

const child = spawn(process.execPath, process.argv.slice(2), { stdio: 'inherit' });
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

for (const signal of SIGNALS) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on('error', (err) => {
  process.stderr.write(`cannot start ${process.execPath}: ${err.message}\n`);
  process.exit(1);
});

child.on('exit', (code, signal) => {
  if (signal) {
    // End as the child did, so whoever started the launcher sees the same signal.
    for (const s of SIGNALS) process.removeAllListeners(s);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
