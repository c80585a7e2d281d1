/*
 * The Node.js version check that runs before anything else: `npm install`
 * (preinstall) and, through scripts/launch.cjs, `npm start` and
 * `npm run candor`. It runs on whatever Node.js the machine has, so it is
 * plain CommonJS in syntax that old versions parse (nothing newer than
 * Node 8: no optional chaining, no `node:` specifiers), and it reads the
 * requirement from package.json's `engines` and the recommended version
 * from `.nvmrc`.
 *
 *   node scripts/check-node.cjs   exits 0, or prints one line and exits 1
 */
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');

function readText(file) {
  try {
    return fs.readFileSync(path.join(ROOT, file), 'utf8');
  } catch (_err) {
    return '';
  }
}

/** ">=22.12.0" → [22, 12, 0]: the lowest version package.json's engines.node accepts. */
function requiredVersion() {
  let range = '';
  try {
    range = JSON.parse(readText('package.json')).engines.node || '';
  } catch (_err) {
    range = '';
  }
  const match = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(range);
  if (!match) return [22, 12, 0];
  return [Number(match[1]), Number(match[2] || 0), Number(match[3] || 0)];
}

const parse = (version) =>
  String(version)
    .replace(/^v/, '')
    .split('.')
    .slice(0, 3)
    .map((part) => Number(part) || 0);

function atLeast(actual, wanted) {
  for (let i = 0; i < 3; i++) {
    if ((actual[i] || 0) !== wanted[i]) return (actual[i] || 0) > wanted[i];
  }
  return true;
}

/** The one line to print, or null when this Node.js will do. */
function problem(version) {
  const wanted = requiredVersion();
  if (atLeast(parse(version), wanted)) return null;
  const shown = wanted[2] === 0 ? `${wanted[0]}.${wanted[1]}` : wanted.join('.');
  const nvmrc = readText('.nvmrc').trim();
  const reads = nvmrc ? `reads .nvmrc: Node.js ${nvmrc}` : 'reads .nvmrc';
  return `Candor needs Node.js >= ${shown} (you have ${version}). Install it with nvm: \`nvm install\` (${reads}), or see "The two commands" in README.md.`;
}

/** Ends the process with the one line when the running Node.js is too old. */
function requireSupportedNode() {
  const message = problem(process.version);
  if (message === null) return;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

module.exports = { problem, requireSupportedNode };

if (require.main === module) requireSupportedNode();
