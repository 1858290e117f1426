// npm's own node-gyp, run against this Node's local headers: shared by the postinstall builds
// (build_native.js, build_tensorflow.js). Neither may reach the network.
const fs = require('node:fs');
const path = require('node:path');

/** Absolute path of npm's node-gyp.js, or null when there is none. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  return candidates.find((p) => fs.existsSync(p)) ?? null;
}

/**
 * `--nodedir=<prefix>` when this Node's headers are installed beside it (Debian's nodejs, nvm, …) and
 * npm does not name a nodedir already: node-gyp would otherwise try to download them.
 */
function nodedirArgs() {
  const localRoot = path.resolve(path.dirname(process.execPath), '..');
  if (process.env.npm_config_nodedir) return [];
  return fs.existsSync(path.join(localRoot, 'include', 'node', 'node_api.h')) ? [`--nodedir=${localRoot}`] : [];
}

/** The first lines of a failed build's output that say why (or ''). */
function whyFailed(r) {
  return `${r.stderr || ''}${r.stdout || ''}`
    .split('\n')
    .filter((l) => /error|not found|cannot find|no such/i.test(l))
    .slice(0, 3)
    .map((l) => l.trim())
    .join(' | ');
}

module.exports = { findNodeGyp, nodedirArgs, whyFailed };
