#!/usr/bin/env node
// postinstall: build the optional native kernels (native/, Node-API + Debian's OpenBLAS) with npm's
// own node-gyp. Never fails the install: without a compiler or libopenblas-dev, tdr keeps its wasm
// kernels and says so once. TDR_NATIVE=0 skips the build.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { findNodeGyp, nodedirArgs, whyFailed } = require('./node_gyp');

const dir = path.join(__dirname, '..', 'native');
if (process.env.TDR_NATIVE === '0') {
  console.log('tdr: native kernels not built (TDR_NATIVE=0)');
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) {
  console.log('tdr: native kernels not built (node-gyp not found); using the wasm kernels');
  process.exit(0);
}
const r = spawnSync(process.execPath, [gyp, 'rebuild', ...nodedirArgs()], { cwd: dir, encoding: 'utf8', env: process.env });
if (r.status === 0 && fs.existsSync(path.join(dir, 'build', 'Release', 'tdr_native.node'))) {
  console.log('tdr: native kernels built (native/build/Release/tdr_native.node, OpenBLAS)');
} else {
  console.log(`tdr: native kernels not built (${whyFailed(r) || `node-gyp exited ${r.status}`}); using the wasm kernels. On Debian/Ubuntu: apt-get install libopenblas-dev g++ make`);
}
