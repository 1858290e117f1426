/**
 * scripts/build_tensorflow.js (postinstall, `npm run build:tensorflow`): it never fails the install.
 * Each case runs a copy of the script in a scratch project that lacks one thing (tfjs-node, the pinned
 * version, pip, a wheel with the pinned sha256) and checks the one line it prints and its exit code 0;
 * then the real checkout: a second run is a no-op (or says why it cannot build).
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/fixtures';

const ROOT = path.join(__dirname, '..', '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'build_tensorflow.js');
const PIN = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> }).optionalDependencies['@tensorflow/tfjs-node'];
const REAL_PKG = path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-node');

const scratches: string[] = [];
after(() => {
  for (const d of scratches) fs.rmSync(d, { recursive: true, force: true });
});

/** A scratch project with the script, a package.json pinning tfjs-node, and `tfjsNode` installed at that version (or none). */
function scratch(tfjsNode: string | null): { dir: string; bin: string; cache: string } {
  const dir = tmpDir('tdr-buildtf-');
  scratches.push(dir);
  fs.mkdirSync(path.join(dir, 'scripts'));
  for (const f of ['build_tensorflow.js', 'node_gyp.js']) fs.copyFileSync(path.join(ROOT, 'scripts', f), path.join(dir, 'scripts', f));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'scratch', optionalDependencies: { '@tensorflow/tfjs-node': PIN } }));
  if (tfjsNode) {
    const pkg = path.join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
    fs.mkdirSync(pkg, { recursive: true });
    // tfjs-node's own package.json (node-pre-gyp reads its binary section), at the version asked for
    const real = fs.existsSync(path.join(REAL_PKG, 'package.json')) ? JSON.parse(fs.readFileSync(path.join(REAL_PKG, 'package.json'), 'utf8')) : { binary: { module_name: 'tfjs_binding', module_path: './lib/napi-v{napi_build_version}', host: 'https://x', napi_versions: [8] } };
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ ...real, name: '@tensorflow/tfjs-node', version: tfjsNode }));
    const preGyp = path.join(ROOT, 'node_modules', '@mapbox');
    if (fs.existsSync(preGyp)) fs.symlinkSync(preGyp, path.join(dir, 'node_modules', '@mapbox'), 'dir');
  }
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  return { dir, bin, cache: path.join(dir, 'cache') };
}

function run(dir: string, env: NodeJS.ProcessEnv): { status: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'build_tensorflow.js')], { cwd: dir, env, encoding: 'utf8', timeout: 5 * 60_000 });
  return { status: r.status, lines: `${r.stdout}${r.stderr}`.split('\n').filter(Boolean) };
}

const base = (bin: string, cache: string): NodeJS.ProcessEnv => ({ HOME: process.env.HOME, PATH: bin, TDR_TF_CACHE: cache });

test('tfjs-node not installed: one line saying so and that tdr uses wasm, exit 0', () => {
  const s = scratch(null);
  const r = run(s.dir, base(s.bin, s.cache));
  assert.equal(r.status, 0);
  assert.equal(r.lines.length, 1, r.lines.join('\n'));
  assert.match(r.lines[0], /^tdr: TensorFlow backend not built \(@tensorflow\/tfjs-node is not installed .*\); tdr uses wasm$/);
});

test('another tfjs-node version than package.json pins: says both, exit 0', () => {
  const s = scratch('4.21.0');
  const r = run(s.dir, base(s.bin, s.cache));
  assert.equal(r.status, 0);
  assert.deepEqual(r.lines, [`tdr: TensorFlow backend not built (@tensorflow/tfjs-node 4.21.0 is installed, package.json pins ${PIN}); tdr uses wasm`]);
});

test('no pip on PATH: says so, leaves the cache empty, exit 0', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'the pinned wheel is for linux x64' : false }, () => {
  const s = scratch(PIN);
  const r = run(s.dir, base(s.bin, s.cache));
  assert.equal(r.status, 0);
  assert.deepEqual(r.lines, ['tdr: TensorFlow backend not built (no pip (python3 -m pip) to fetch the tensorflow-cpu wheel with); tdr uses wasm']);
  assert.deepEqual(fs.existsSync(path.join(s.cache, 'wheels')) ? fs.readdirSync(path.join(s.cache, 'wheels')) : [], []);
});

test('pip gives a wheel whose sha256 is not the pinned one: refused and not cached, exit 0', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'the pinned wheel is for linux x64' : false }, () => {
  const s = scratch(PIN);
  // a fake python3 whose "pip download" writes a wrong file under the pinned wheel's name
  const fake = `#!/bin/sh
if [ "$2" = "pip" ] && [ "$3" = "--version" ]; then echo "pip 0"; exit 0; fi
if [ "$2" = "pip" ] && [ "$3" = "download" ]; then
  while [ $# -gt 0 ]; do if [ "$1" = "--dest" ]; then dest="$2"; fi; shift; done
  echo "not a wheel" > "$dest/tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl"; exit 0
fi
exit 1
`;
  fs.writeFileSync(path.join(s.bin, 'python3'), fake, { mode: 0o755 });
  fs.symlinkSync('/bin/sh', path.join(s.bin, 'sh'));
  const r = run(s.dir, base(s.bin, s.cache));
  assert.equal(r.status, 0);
  assert.equal(r.lines.length, 1, r.lines.join('\n'));
  assert.match(r.lines[0], /^tdr: TensorFlow backend not built \(tensorflow_cpu-2\.21\.0-cp311-cp311-manylinux_2_27_x86_64\.whl from pip has sha256 [0-9a-f]{64}, expected 2b847d21[0-9a-f]{56}\); tdr uses wasm$/);
  assert.deepEqual(fs.readdirSync(path.join(s.cache, 'wheels')), []);
});

/** This machine's TensorFlow cache (as the script computes it), when it holds the extracted library. */
function realCache(): string | null {
  const cache = process.env.TDR_TF_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? '/', '.cache'), 'tdr');
  const lib = fs.existsSync(cache) ? fs.readdirSync(cache).find((d) => d.startsWith('libtensorflow-') && fs.existsSync(path.join(cache, d, '.complete'))) : undefined;
  return lib ? cache : null;
}

test('the addon does not compile: says why, exit 0', { skip: realCache() ? false : 'no extracted TensorFlow library in the cache (run npm run build:tensorflow once)' }, () => {
  const s = scratch(PIN);
  const pkg = path.join(s.dir, 'node_modules', '@tensorflow', 'tfjs-node');
  fs.mkdirSync(path.join(pkg, 'scripts'));
  fs.copyFileSync(path.join(REAL_PKG, 'scripts', 'deps-constants.js'), path.join(pkg, 'scripts', 'deps-constants.js'));
  fs.writeFileSync(path.join(pkg, 'binding.gyp'), JSON.stringify({ targets: [{ target_name: 'tfjs_binding', sources: ['broken.cc'] }] }));
  fs.writeFileSync(path.join(pkg, 'broken.cc'), '#error this addon is broken on purpose\n');
  const r = run(s.dir, { ...process.env, TDR_TENSORFLOW: undefined, TDR_TF_CACHE: realCache()! }); // even where TDR_TENSORFLOW=0 skips the real build
  assert.equal(r.status, 0);
  const mine = r.lines.filter((l) => l.startsWith('tdr:'));
  assert.equal(mine.length, 1, r.lines.join('\n'));
  assert.match(mine[0], /^tdr: TensorFlow backend not built \(building tfjs_binding\.node failed \(.*broken on purpose.*\)\); tdr uses wasm$/);
  assert.ok(fs.existsSync(path.join(pkg, 'deps', 'lib', 'libtensorflow.so.2.9.1')), 'deps/ laid out before the build');
});

test('TDR_TENSORFLOW=0 skips it, exit 0', () => {
  const r = spawnSync(process.execPath, [SCRIPT], { cwd: ROOT, env: { ...process.env, TDR_TENSORFLOW: '0' }, encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'tdr: TensorFlow backend not built (TDR_TENSORFLOW=0); tdr uses wasm\n');
});

test('the checkout: exit 0 and one line; once built, a second run is a no-op', () => {
  const r = spawnSync(process.execPath, [SCRIPT], { cwd: ROOT, encoding: 'utf8', timeout: 20 * 60_000 });
  assert.equal(r.status, 0);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.stdout);
  assert.match(lines[0], /^tdr: TensorFlow backend (built|already built|not built)/);
  if (/not built/.test(lines[0])) return;
  const again = spawnSync(process.execPath, [SCRIPT], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(again.status, 0);
  assert.match(again.stdout, /^tdr: TensorFlow backend already built: tfjs-node \d+\.\d+\.\d+ on the TensorFlow \d+\.\d+\.\d+ C library\n$/);
});
