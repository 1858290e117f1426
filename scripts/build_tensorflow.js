#!/usr/bin/env node
// postinstall and `npm run build:tensorflow`: make the optional TensorFlow backend
// (@tensorflow/tfjs-node, an optionalDependency) work offline, from a pinned pip wheel.
//
// tfjs-node's own installer downloads libtensorflow 2.9.1 from Google's storage, which fails offline;
// package.json's allowScripts tells npm to skip it (the package then stays installed). This script:
//   1. fetches the pinned tensorflow-cpu wheel (TENSORFLOW below) with `pip download --no-deps` into a
//      cache folder outside the checkout ($TDR_TF_CACHE, else $XDG_CACHE_HOME/tdr, else ~/.cache/tdr)
//      and checks its sha256;
//   2. takes the TensorFlow C library out of it once (libtensorflow_cc.so.2, libtensorflow_framework.so.2
//      and the C-API headers c_api.h pulls in) into that cache, then lays out
//      node_modules/@tensorflow/tfjs-node/deps/{lib,include} from it (hard links where possible) with the
//      names tfjs-node's binding.gyp links (-ltensorflow) and its install.js looks for (*.so.2.9.1);
//   3. builds tfjs_binding.node from source with npm's node-gyp and this Node's local headers;
//   4. loads it in a child process and runs one op.
// It never fails the install: when a step cannot run, it prints one line saying why and that tdr uses
// wasm, and exits 0. A second run is a fast no-op when the addon was built from the same wheel and loads.
// TDR_TENSORFLOW=0 skips it.
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { findNodeGyp, nodedirArgs, whyFailed } = require('./node_gyp');

/**
 * The one pin of the TensorFlow C library. The wheel's C library does not depend on its Python tag;
 * `pip` asks for exactly this file whatever Python runs it. (The tfjs-node version is pinned in
 * package.json's optionalDependencies.)
 */
const TENSORFLOW = {
  requirement: 'tensorflow-cpu==2.21.0',
  version: '2.21.0',
  file: 'tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
  sha256: '2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c',
  pip: ['--platform', 'manylinux_2_27_x86_64', '--python-version', '3.11', '--implementation', 'cp', '--abi', 'cp311'],
  /** wheel members → deps/lib */
  libs: ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'],
  /** wheel members under these prefixes → deps/include (without 'tensorflow/include/') */
  headers: ['tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/core/platform/ctstring', 'tensorflow/include/tsl/platform/ctstring', 'tensorflow/include/xla/tsl/c/'],
};

const ROOT = path.join(__dirname, '..');
const PKG = path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-node');
const DEPS = path.join(PKG, 'deps');
const STAMP = path.join(DEPS, 'tdr-wheel.json');

class Skip extends Error {}
const skip = (why) => {
  throw new Skip(why);
};

function cacheDir() {
  if (process.env.TDR_TF_CACHE) return path.resolve(process.env.TDR_TF_CACHE);
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'tdr');
}

function sha256(file) {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 22);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** A Python that has pip: $TDR_PYTHON, python3 or python. */
function findPython() {
  for (const py of [process.env.TDR_PYTHON, 'python3', 'python'].filter(Boolean)) {
    const r = spawnSync(py, ['-m', 'pip', '--version'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return skip('no pip (python3 -m pip) to fetch the tensorflow-cpu wheel with');
}

/** The pinned wheel in the cache, fetched with pip when missing; its sha256 checked. */
function ensureWheel(cache, python) {
  const dir = path.join(cache, 'wheels');
  const wheel = path.join(dir, TENSORFLOW.file);
  if (fs.existsSync(wheel) && sha256(wheel) === TENSORFLOW.sha256) return wheel;
  const py = python();
  fs.mkdirSync(dir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(dir, '.pip-'));
  try {
    const r = spawnSync(py, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', ...TENSORFLOW.pip, '--dest', tmp, TENSORFLOW.requirement], {
      encoding: 'utf8',
      timeout: 30 * 60_000,
    });
    const got = path.join(tmp, TENSORFLOW.file);
    if (r.status !== 0 || !fs.existsSync(got)) {
      const last = `${r.stderr || ''}`.trim().split('\n').filter(Boolean).pop() || `pip exited ${r.status}`;
      skip(`pip download ${TENSORFLOW.requirement} failed: ${last.trim()}`);
    }
    const sum = sha256(got);
    if (sum !== TENSORFLOW.sha256) skip(`${TENSORFLOW.file} from pip has sha256 ${sum}, expected ${TENSORFLOW.sha256}`);
    fs.renameSync(got, wheel);
    return wheel;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const EXTRACT_PY = `
import os, shutil, sys, zipfile
whl, dest, libs, prefixes = sys.argv[1], sys.argv[2], sys.argv[3].split(','), tuple(sys.argv[4].split(','))
n = 0
with zipfile.ZipFile(whl) as z:
    for i in z.infolist():
        name = i.filename
        if i.is_dir():
            continue
        if name in libs:
            out = os.path.join(dest, 'lib', os.path.basename(name))
        elif name.startswith(prefixes):
            out = os.path.join(dest, 'include', name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(i) as src, open(out, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        n += 1
print(n)
`;

/**
 * The C library and headers, extracted once per wheel into the cache:
 * <cache>/libtensorflow-<version>-<sha8>/{lib,include} (the wheel is fetched only when they are missing).
 */
function ensureLibrary(cache, python) {
  const dir = path.join(cache, `libtensorflow-${TENSORFLOW.version}-${TENSORFLOW.sha256.slice(0, 8)}`);
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done)) return dir;
  const wheel = ensureWheel(cache, python);
  const py = python();
  const tmp = fs.mkdtempSync(path.join(cache, '.extract-'));
  try {
    const r = spawnSync(py, ['-c', EXTRACT_PY, wheel, tmp, TENSORFLOW.libs.join(','), TENSORFLOW.headers.join(',')], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) skip(`extracting ${TENSORFLOW.file} failed: ${`${r.stderr}`.trim().split('\n').pop()}`);
    for (const f of ['lib/libtensorflow_cc.so.2', 'lib/libtensorflow_framework.so.2', 'include/tensorflow/c/c_api.h', 'include/tensorflow/c/eager/c_api.h']) {
      if (!fs.existsSync(path.join(tmp, f))) skip(`${TENSORFLOW.file} has no ${f}`);
    }
    fs.writeFileSync(path.join(tmp, '.complete'), `${TENSORFLOW.file} ${TENSORFLOW.sha256}\n`);
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      if (!fs.existsSync(done)) throw e; // another install finished the same extraction first
    }
    return dir;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Hard link (same file system) or copy every file of `from` into `to`. */
function linkTree(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) linkTree(src, dst);
    else if (e.isFile() && !e.name.startsWith('.')) {
      try {
        fs.linkSync(src, dst);
      } catch {
        fs.copyFileSync(src, dst);
      }
    }
  }
}

/** deps/{lib,include} from the extracted library, with the file names tfjs-node expects. */
function layOutDeps(lib) {
  fs.rmSync(DEPS, { recursive: true, force: true });
  linkTree(lib, DEPS);
  // deps-constants.js names libtensorflow(.so.2.9.1) and libtensorflow_framework(.so.2.9.1): install.js
  // skips its download when the first exists; binding.gyp links -ltensorflow -ltensorflow_framework.
  const { depsLibTensorFlowName, depsLibTensorFlowFrameworkName } = require(path.join(PKG, 'scripts', 'deps-constants.js'));
  const links = {
    'libtensorflow_cc.so.2': ['libtensorflow.so', 'libtensorflow.so.2', depsLibTensorFlowName],
    'libtensorflow_framework.so.2': ['libtensorflow_framework.so', depsLibTensorFlowFrameworkName],
  };
  for (const [target, names] of Object.entries(links)) {
    for (const n of new Set(names)) fs.symlinkSync(target, path.join(DEPS, 'lib', n));
  }
}

/** Where tfjs-node's index.js looks for the addon (node-pre-gyp's choice of N-API version). */
function bindingPath() {
  const preGyp = require(require.resolve('@mapbox/node-pre-gyp', { paths: [PKG] }));
  return preGyp.find(path.join(PKG, 'package.json'));
}

function buildAddon(binding) {
  const gyp = findNodeGyp();
  if (!gyp) skip('node-gyp not found (it comes with npm)');
  const napi = /napi-v(\d+)/.exec(binding);
  if (!napi) skip(`unexpected addon path ${binding}`);
  const args = [gyp, 'rebuild', ...nodedirArgs(), '--module_name=tfjs_binding', `--module_path=${path.dirname(binding)}`, `--napi_build_version=${napi[1]}`];
  const r = spawnSync(process.execPath, args, { cwd: PKG, encoding: 'utf8', env: process.env, maxBuffer: 1 << 26 });
  if (r.status !== 0 || !fs.existsSync(binding)) skip(`building tfjs_binding.node failed (${whyFailed(r) || `node-gyp exited ${r.status}`})`);
}

/** Load tfjs-node in a child process and run one conv2d: the TensorFlow version, or a reason. */
function loadCheck() {
  const code = `const tf = require(${JSON.stringify(PKG)});
    const y = tf.conv2d(tf.ones([1, 3, 3, 1]), tf.ones([2, 2, 1, 1]), 1, 'valid').dataSync();
    if (tf.getBackend() !== 'tensorflow' || y.length !== 4 || y.some((v) => v !== 4)) throw new Error('conv2d gave ' + Array.from(y) + ' on ' + tf.getBackend());
    console.log(tf.backend().binding.TF_Version);`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  if (r.status === 0) return { version: r.stdout.trim().split('\n').pop() };
  const err = `${r.stderr}`.split('\n').find((l) => /Error/.test(l)) || `node exited ${r.status}`;
  return { error: err.trim() };
}

function readStamp() {
  try {
    return JSON.parse(fs.readFileSync(STAMP, 'utf8'));
  } catch {
    return null;
  }
}

function main() {
  if (process.env.TDR_TENSORFLOW === '0') skip('TDR_TENSORFLOW=0');
  if (process.platform !== 'linux' || process.arch !== 'x64') skip(`the pinned ${TENSORFLOW.requirement} wheel is for linux x64, this is ${process.platform} ${process.arch}`);
  if (!fs.existsSync(path.join(PKG, 'package.json'))) {
    skip('@tensorflow/tfjs-node is not installed (npm drops this optional dependency when its own libtensorflow download runs and fails; an npm that honours package.json allowScripts skips that download)');
  }
  const want = require(path.join(ROOT, 'package.json')).optionalDependencies['@tensorflow/tfjs-node'];
  const have = require(path.join(PKG, 'package.json')).version;
  if (have !== want) skip(`@tensorflow/tfjs-node ${have} is installed, package.json pins ${want}`);
  const binding = bindingPath();
  const stamp = readStamp();
  if (stamp && stamp.sha256 === TENSORFLOW.sha256 && fs.existsSync(binding)) {
    const ok = loadCheck();
    if (ok.version) return `already built: tfjs-node ${have} on the TensorFlow ${ok.version} C library`;
  }
  const cache = cacheDir();
  fs.mkdirSync(cache, { recursive: true });
  let py;
  const python = () => (py ??= findPython()); // only when the wheel must be fetched or unpacked
  const lib = ensureLibrary(cache, python);
  layOutDeps(lib);
  buildAddon(binding);
  const ok = loadCheck();
  if (!ok.version) skip(`the built addon does not load: ${ok.error}`);
  fs.writeFileSync(STAMP, JSON.stringify({ wheel: TENSORFLOW.file, sha256: TENSORFLOW.sha256, cache: lib }) + '\n');
  return `built: tfjs-node ${have} on the TensorFlow ${ok.version} C library (${path.relative(ROOT, binding)})`;
}

try {
  console.log(`tdr: TensorFlow backend ${main()}`);
} catch (e) {
  const why = e instanceof Skip ? e.message : `${e && e.message ? e.message.split('\n')[0] : e}`;
  console.log(`tdr: TensorFlow backend not built (${why}); tdr uses wasm`);
}
process.exit(0);
