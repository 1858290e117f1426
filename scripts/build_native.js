#!/usr/bin/env node
// postinstall: build the optional native kernels (native/, Node-API + Debian's OpenBLAS) with npm's
// own node-gyp. Never fails the install: without a compiler or libopenblas-dev, tdr keeps its wasm
// kernels and says so once. TDR_NATIVE=0 skips the build.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'native');
if (process.env.TDR_NATIVE === '0') {
  console.log('tdr: native kernels not built (TDR_NATIVE=0)');
  process.exit(0);
}
const candidates = [
  process.env.npm_config_node_gyp,
  path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter(Boolean);
const gyp = candidates.find((p) => fs.existsSync(p));
if (!gyp) {
  console.log('tdr: native kernels not built (node-gyp not found); using the wasm kernels');
  process.exit(0);
}
// build against this Node's own headers when they are installed (Debian's nodejs, nvm, …): node-gyp
// would otherwise try to download them, and there may be no network
const args = [gyp, 'rebuild'];
const localRoot = path.resolve(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(localRoot, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${localRoot}`);
const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env: process.env });
if (r.status === 0 && fs.existsSync(path.join(dir, 'build', 'Release', 'tdr_native.node'))) {
  console.log('tdr: native kernels built (native/build/Release/tdr_native.node, OpenBLAS)');
} else {
  const why = `${r.stderr || ''}${r.stdout || ''}`.split('\n').filter((l) => /error|not found|cannot find/i.test(l)).slice(0, 3).join(' | ');
  console.log(`tdr: native kernels not built (${why || `node-gyp exited ${r.status}`}); using the wasm kernels. On Debian/Ubuntu: apt-get install libopenblas-dev g++ make`);
}
